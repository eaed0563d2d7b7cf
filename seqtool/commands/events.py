"""What a running command reports as it goes (progress, live rows, notices)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Events:
    """What a running command reports as it goes; every callback is optional.

    The CLI fills them (progress bars and live rows on a terminal, records on a jsonl
    stream, notices on stderr); a recipe or a notebook leaves them empty.
    """

    notice: Callable[[str], None] | None = None  # one line for the user (stderr)
    on_start: Callable[[Any], None] | None = None  # the report so far, once the run is set up
    on_step: Callable[..., None] | None = None  # training: (position, loss)
    on_epoch: Callable[..., None] | None = None  # training: (position, record, improved)
    on_learn_step: Callable[[str, int, float], None] | None = None  # (selector, step, loss)
    on_result: Callable[[dict[str, Any]], None] | None = None  # recipes: each run's result
    on_record: Callable[[dict[str, Any]], None] | None = None  # a record of a jsonl stream
    on_progress: Callable[[str, int, int], None] | None = None  # long analyses: what, done, total
    should_stop: Callable[[], bool] | None = None  # polled after each whole step
    # a warm-up that compiles: (cell, dtype) once it has taken ~0.5 s, then its WarmUp
    on_compile: Callable[[str, str], None] | None = None
    on_compiled: Callable[[Any], None] | None = None

    def say(self, text: str) -> None:
        if self.notice is not None:
            self.notice(text)

    def warm_up(self, cell: str, dtype: Any, **options: Any) -> Any:
        """Load or compile ``cell``'s kernels in ``dtype`` now, before the run starts any
        clock (:func:`seqtool.core.rnn.warmup.warm_up`; ``options``: spec, training,
        optimizer, truncated). A compile that takes long is reported through ``on_compile`` and
        ``on_compiled``; a warm cache reports nothing."""
        from seqtool.core.rnn.warmup import warm_up

        return warm_up(cell, dtype, on_slow=self.on_compile, on_done=self.on_compiled,
                       **options)
