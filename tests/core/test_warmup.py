"""The warm-up (seqtool.core.rnn.warmup): it loads or compiles a cell's kernels before a run
starts its clocks, and calls its callbacks only when it compiled and took long.

A cell registered here calls a numba function made fresh for each test, so its first
warm-up really compiles (numba fires its "numba:compile" event) and its second finds it in
memory; the slow/fast decision is made with ``after`` and an injected clock, never by
measuring wall time.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from seqtool.core.errors import InputError
from seqtool.core.rnn.cells import Cell, registered
from seqtool.core.rnn.warmup import DTYPES, WarmUp, check_dtype, warm_up

_names = (f"fresh{i}" for i in itertools.count())


def fresh_cell() -> Cell:
    """A cell whose forward pass calls a numba function no one has compiled yet."""
    import numba

    @numba.njit
    def doubled(a):
        return a * 2.0

    class FreshCell(Cell):
        name = next(_names)
        gates = ("a",)
        seen: list = []

        def forward(self, X, weight_ih, weight_hh, bias_ih, bias_hh, h0=None, c0=None,
                    lengths=None, *, projected=None, activation="tanh"):
            out = doubled(X)
            self.seen.append(("forward", X.dtype, X.shape, np.array_equal(out, X + X)))
            return out

        def backward(self, X, weight_ih, weight_hh, record, dh, dc_n=None, **options):
            self.seen.append(("backward", dh.dtype, dh.shape))
            return None

    return FreshCell()


def test_a_compile_that_takes_long_calls_on_slow_then_on_done():
    calls = []
    with registered(fresh_cell()) as cell:
        result = warm_up(cell.name, "float32", after=0.0,
                         on_slow=lambda c, d: calls.append(("slow", c, d)),
                         on_done=lambda r: calls.append(("done", r)))
        # the cell ran forward and backward on tiny arrays of the asked dtype
        assert cell.seen == [("forward", np.float32, (4, 1, 2), True),
                             ("backward", np.float32, (4, 1, 2))]
    assert result.compiled >= 1 and not result.loaded
    assert calls == [("slow", cell.name, "float32"), ("done", result)]


def test_a_quick_compile_calls_nothing():
    ticks = iter(range(1000))  # a clock that never reaches `after`
    calls = []
    with registered(fresh_cell()) as cell:
        result = warm_up(cell.name, "float64", after=1e6, clock=lambda: next(ticks) * 1e-9,
                         on_slow=lambda *a: calls.append(a), on_done=calls.append)
    assert result.compiled >= 1  # it did compile, but not for long: no notice
    assert calls == []


def test_kernels_already_loaded_call_nothing_even_with_after_0():
    calls = []
    with registered(fresh_cell()) as cell:
        first = warm_up(cell.name, "float64")
        second = warm_up(cell.name, "float64", after=0.0,
                         on_slow=lambda *a: calls.append(a), on_done=calls.append)
    assert first.compiled >= 1
    assert second.compiled == 0 and second.loaded
    assert calls == []


def test_a_cell_without_kernels_never_compiles():
    class NumpyCell(Cell):
        name = next(_names)
        gates = ("a",)

        def forward(self, X, *args, **options):
            return np.tanh(X)

        def backward(self, X, *args, **options):
            return None

    calls = []
    with registered(NumpyCell()) as cell:
        result = warm_up(cell.name, "float64", after=0.0, on_slow=lambda *a: calls.append(a))
    assert result == WarmUp(cell.name, "float64", result.seconds, 0) and calls == []


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_the_builtin_cells_and_their_model_path_are_loaded_once(cell):
    from seqtool.core.models import ModelSpec

    spec = ModelSpec(task="classify", cell=cell, input_size=5, output_size=3)
    warm_up(cell, "float64", spec=spec, optimizer="adam")
    again = warm_up(cell, "float64", spec=spec, optimizer="adam", after=0.0,
                    on_slow=pytest.fail)
    assert again.compiled == 0


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_after_the_warm_up_a_large_layer_compiles_nothing(cell):
    """The warm-up's layers are tiny, and what large layers call (the transposed copy of
    W_hh by the kernels' BLAS, the weight gradients' products) is compiled by it too: a
    first run announces its compile up front, not in the middle of a step."""
    from numba.core import event

    from seqtool.core.models import ModelSpec
    from seqtool.core.rnn.stack import init_state_dict, stack_backward, stack_forward

    spec = ModelSpec(task="classify", cell=cell, input_size=5, output_size=3)
    warm_up(cell, "float64", spec=spec, optimizer="adam")  # as the test above: loaded
    compiled = []

    class Listener(event.Listener):
        def on_start(self, ev):
            compiled.append(ev.data["dispatcher"])

        def on_end(self, ev):
            pass

    state = init_state_dict(cell, 5, 128, 1, seed=[0], dtype=np.float64)
    X = np.random.default_rng(0).standard_normal((3, 2, 5))
    with event.install_listener("numba:compile", Listener()):
        record = stack_forward(cell, X, state)
        stack_backward(record, state, np.ones_like(record.output))
    assert compiled == []


def test_the_warm_up_moves_no_parameter_of_the_run():
    """The model passes run on a tiny model of their own: a run's spec is only read."""
    from seqtool.core.models import ModelSpec, init_params

    spec = ModelSpec(task="lm", cell="gru", input_size=7, output_size=7, hidden=3)
    before = init_params(spec, seed=4)
    warm_up("gru", "float32", spec=spec, optimizer="adam")
    after = init_params(spec, seed=4)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_unknown_cell_and_dtype_are_input_errors():
    with pytest.raises(InputError) as err:
        warm_up("lstn", "float32")
    assert err.value.key == "cell" and "did you mean lstm" in err.value.message
    with pytest.raises(InputError) as err:
        warm_up("lstm", "float16")
    assert err.value.key == "dtype"
    assert [check_dtype(np.float32), check_dtype("Float64")] == list(DTYPES)


def test_the_vanilla_warm_up_covers_the_truncated_backward_kernel_when_asked():
    """bptt --truncate on the rnn cell runs its own kernel: the warm-up loads it too when
    the run truncates (truncated=True), so that it never compiles unannounced inside the
    analysis, and leaves it alone otherwise (a first run compiles only what it uses)."""
    import numpy as np

    from seqtool.core.rnn import vanilla
    from seqtool.core.rnn.warmup import warm_up

    def kinds():
        return {str(sig[0].dtype) for sig in vanilla._rnn_backward_truncated.signatures}

    before = kinds()
    warm_up("rnn", np.float64, training=False)
    assert kinds() == before  # not asked: nothing new compiled or loaded
    warm_up("rnn", np.float32, training=False, truncated=True)
    assert "float32" in kinds()


# -- the helper process ---------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_a_blank_record_has_the_types_of_a_forward_record(cell):
    """The helper compiles the backward kernel from a blank record: it must type exactly as
    the forward pass's record does, or the kernel it caches is not the one a run calls."""
    from seqtool.core.rnn.cells import get_cell

    layer = get_cell(cell)
    params = layer.init_layer(np.random.default_rng(0), 2, 3, np.float64)
    X = np.ones((4, 1, 2))
    record = layer.forward(X, params["weight_ih"], params["weight_hh"], params["bias_ih"],
                           params["bias_hh"])
    blank = layer.blank_record(4, 1, 3, np.float64)
    assert type(blank) is type(record)
    for name in (f.name for f in dataclasses.fields(record)):
        value, other = getattr(record, name), getattr(blank, name)
        if isinstance(value, np.ndarray):
            assert (other.shape, other.dtype, other.flags.c_contiguous) == (
                value.shape, value.dtype, value.flags.c_contiguous), name
            if value.dtype.kind == "f":
                assert not other.any()
        else:
            assert other == value, name


def test_a_helper_that_cannot_help_exits_1(tmp_path):
    """helper_main of an unknown cell: exit 1, and the warm-up compiles in its own process
    (that the helper compiles the backward pass only is checked with an empty cache in
    tests/cli/test_bptt.py::test_first_run_says_it_is_compiling)."""
    import subprocess
    import sys

    env = {**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    assert subprocess.run([sys.executable, "-c", "import sys; from seqtool.core.rnn.warmup "
                           "import helper_main; sys.exit(helper_main(['nocell', 'float64', "
                           "'0']))"], env=env, timeout=120).returncode == 1


class _FakeProcess:
    started: list = []

    def __init__(self, args, **options):
        self.args, self.env = args, options["env"]
        self.waited = False
        _FakeProcess.started.append(self)

    def wait(self, timeout=None):
        self.waited = True
        return 0

    def poll(self):
        return 0


def test_the_helper_starts_at_the_first_compile_and_not_after_the_wait(monkeypatch):
    from seqtool.core.rnn import warmup

    monkeypatch.setattr(warmup.subprocess, "Popen", _FakeProcess)
    monkeypatch.setattr(warmup, "_helper_can_run", lambda: True)
    _FakeProcess.started = []
    helper = warmup._Helper("lstm", "float32", True, enabled=True)
    helper.start()
    helper.start()  # one process, however many compilations
    assert len(_FakeProcess.started) == 1
    process = _FakeProcess.started[0]
    assert process.args[-3:] == ["lstm", "float32", "1"]
    # the helper itself never starts a helper of its own
    assert process.env[warmup.HELPER_VARIABLE] == "0"
    helper.wait()
    assert process.waited
    later = warmup._Helper("gru", "float64", False, enabled=True)
    later.wait()  # waited for before anything compiled: no helper any more
    later.start()
    assert len(_FakeProcess.started) == 1


def test_no_helper_when_told_not_to_or_on_one_core(monkeypatch):
    from seqtool.core.rnn import warmup

    monkeypatch.setenv(warmup.HELPER_VARIABLE, "0")
    assert not warmup._helper_can_run()
    monkeypatch.delenv(warmup.HELPER_VARIABLE)
    monkeypatch.setattr(warmup.os, "sched_getaffinity", lambda pid: {0})
    assert not warmup._helper_can_run()
    monkeypatch.setattr(warmup.os, "sched_getaffinity", lambda pid: {0, 1})
    assert warmup._helper_can_run()
    assert not warmup._Helper("rnn", "float64", False, enabled=False).enabled
