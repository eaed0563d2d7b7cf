"""Several cores on one batch: the rows of a batch split into parts that run side by side.

The recurrent kernels release the GIL (they are compiled ``nogil``), so threads of one
process run them on as many cores at once. A batch of B rows is split into n parts of
interleaved rows, part i holding rows i, i + n, i + 2n, ...: a batch sorted longest first
(seqtool.core.rnn.lengths) stays sorted in every part, and the parts get as many long and
short sequences as each other, so that they finish together.

Each part runs on a thread of its own, and always the same one: part 0 on the calling
thread, part i on the i-th thread of the caller's :class:`Crew`. A part's Workspace
(seqtool.core.buffers), which belongs to one thread, therefore serves that part again
batch after batch, and its forward records are there for its backward pass.

Determinism: how a batch splits depends only on its shape and the thread count, every part
is computed as a batch of its own, and whatever the parts add up (the weight gradients)
is added in part order. So a run is bit-identical for a given thread count; one thread is
exactly the code path of a single part.

The thread count is a setting of the calling context, ``with threads(n):`` (1 unless set:
the library never starts threads that nobody asked for); the commands set it from
``--threads`` (default: every core this process may run on).
"""

from __future__ import annotations

import contextvars
import ctypes
import os
import queue
import threading
from contextlib import contextmanager
from typing import Any, Callable, Sequence

from seqtool.core.errors import InputError
from seqtool.core.rnn.tuning import current as current_tuning

_threads: contextvars.ContextVar[int] = contextvars.ContextVar("seqtool_threads", default=1)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


THREADS_VARIABLE = "SEQTOOL_THREADS"


def default_threads(environ=None) -> int:
    """The thread count when none is given: SEQTOOL_THREADS if set (a recipe's local
    cluster sets it for each of its worker processes, so that jobs × threads fit the
    cores), else every available core."""
    environ = os.environ if environ is None else environ
    text = (environ.get(THREADS_VARIABLE) or "").strip()
    if not text:
        return available_cores()
    try:
        return check_threads(int(text), THREADS_VARIABLE)
    except ValueError:
        raise InputError(THREADS_VARIABLE, f"is '{text}'; expected a whole number of threads "
                         "from 1 to 256") from None


def current_threads() -> int:
    """The thread count in force in this context (1 unless inside :func:`threads`)."""
    return _threads.get()


def check_threads(value: Any, name: str = "threads") -> int:
    """A whole number of threads from 1 to 256, or InputError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
        raise InputError(name, f"must be a whole number of threads from 1 to 256 "
                         f"(got {value!r})")
    return value


def resolve_threads(n: int | None) -> int:
    """``n`` checked, or :func:`default_threads` for None (InputError for a bad count or a
    bad SEQTOOL_THREADS). The commands call it before anything slow, such as the warm-up's
    compile, so that a bad setting is refused at once."""
    return default_threads() if n is None else check_threads(n)


@contextmanager
def threads(n: int | None):
    """Run a block with up to ``n`` threads per batch (None: :func:`default_threads`)."""
    n = resolve_threads(n)
    token = _threads.set(n)
    try:
        yield n
    finally:
        _threads.reset(token)


def parts_for(rows: int, work: float, n: int | None = None) -> int:
    """How many parts a batch of ``rows`` rows and ``work`` multiply-adds is split into:
    at most the thread count (``n``, or the context's), at most one per row, and few enough
    that each part gets the tuning's ``split_from`` multiply-adds (seqtool.core.rnn.tuning:
    below it the hand-over to another thread costs more than the part saves)."""
    n = current_threads() if n is None else n
    if n <= 1 or rows <= 1:
        return 1
    split_from = current_tuning().split_from
    by_work = int(work // split_from) if split_from > 0 else n
    return max(1, min(n, rows, by_work))


def part_rows(n: int) -> list[slice]:
    """The rows of each of n parts: part i is rows i, i + n, i + 2n, ..."""
    return [slice(i, None, n) for i in range(n)]


# glibc's M_TOP_PAD (malloc.h), and how much it keeps: see keep_heap_padding.
_M_TOP_PAD = -2
HEAP_PADDING = 64 << 20
_padded = False


def keep_heap_padding() -> bool:
    """Ask glibc's malloc to keep HEAP_PADDING bytes spare at the top of each heap (once per
    process; False where the C library is not glibc).

    A part on another thread allocates from a malloc arena of its own, and glibc shrinks
    such an arena's heap as soon as its top is free, then grows it again for the next
    pass's temporaries: every pass faulted its pages in anew (3,264 minor page faults per
    forward + backward pass of a (14, 32, 512) GRU batch split in two, none on one thread;
    with the padding none either), and each shrink makes the kernel flush the TLBs of the
    process's other cores. In a loop of such passes (Zen 4, two cores) two threads took
    0.79× the time of one before and 0.65× with the padding. One thread never needs it: the
    main arena adapts its thresholds by itself."""
    global _padded
    if not _padded:
        try:
            libc = ctypes.CDLL(None)
            _padded = bool(libc.gnu_get_libc_version  # glibc only: others may differ
                           and libc.mallopt(_M_TOP_PAD, HEAP_PADDING))
        except (OSError, AttributeError, TypeError):  # no C library to ask (Windows: TypeError)
            _padded = False
    return _padded


class Crew:
    """``size`` − 1 threads that, with the calling thread, run the parts of a batch: part 0 on
    the caller, part i on thread i, always. Made per calling thread (:func:`crew`), so that
    two callers never share one."""

    def __init__(self, size: int):
        keep_heap_padding()
        self.size = size
        self._inboxes = [queue.SimpleQueue() for _ in range(size - 1)]
        self._owner = threading.get_ident()
        started = [threading.Event() for _ in range(size - 1)]
        self.idents = [self._owner] + [0] * (size - 1)
        for i, inbox in enumerate(self._inboxes):
            thread = threading.Thread(target=self._serve, args=(i + 1, inbox, started[i]),
                                      name=f"seqtool-part-{i + 1}", daemon=True)
            thread.start()
        for event in started:
            event.wait()

    def _serve(self, i: int, inbox: queue.SimpleQueue, started: threading.Event) -> None:
        self.idents[i] = threading.get_ident()
        started.set()
        while True:
            task, box, done = inbox.get()
            try:
                box.append((True, task()))
            except BaseException as error:  # handed to the caller, raised there
                box.append((False, error))
            done.set()

    def run(self, tasks: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run tasks[i] on part i's thread, each in a copy of the caller's context (its
        tuning and thread count), and return their results in order; the first part's
        error, in part order, is raised once every part has ended."""
        if len(tasks) > self.size:
            raise ValueError(f"{len(tasks)} tasks for a crew of {self.size}")
        if threading.get_ident() != self._owner:
            raise RuntimeError("a Crew runs the parts of the thread that made it")
        pending = []
        for i, task in enumerate(tasks[1:], start=1):
            box: list = []
            done = threading.Event()
            self._inboxes[i - 1].put((_in_context(task), box, done))
            pending.append((box, done))
        outcomes = []
        try:
            outcomes.append((True, tasks[0]()))
        except BaseException as error:
            outcomes.append((False, error))
        for box, done in pending:
            done.wait()
            outcomes.append(box[0])
        for ok, value in outcomes:
            if not ok:
                raise value
        return [value for _, value in outcomes]


def _in_context(task: Callable[[], Any]) -> Callable[[], Any]:
    """task, to run in a copy of the current context (made now, in the caller)."""
    context = contextvars.copy_context()
    return lambda: context.run(task)


_crews = threading.local()


def crew(size: int) -> Crew:
    """This thread's crew of at least ``size`` threads (made on first use, then kept)."""
    current = getattr(_crews, "crew", None)
    if current is None or current.size < size:
        current = _crews.crew = Crew(size)
    return current
