"""seqtool.core.buffers.Workspace: its owner decides how long an array lives. A result kept
by a caller that passed no workspace is never overwritten; with a workspace, the same name
and shape give the same memory; a workspace belongs to one thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from harness import assert_close
from rnn_cases import problem, run_cell
from seqtool.core.buffers import Workspace, take
from seqtool.core.rnn import gated, tuning

RECYCLE_ALL = dict(recycle_from=0)  # every layer size takes its arrays from a workspace


def forward(cell, p, **kwargs):
    """The forward record of one layer on problem p (the states run_cell starts from)."""
    if cell == "lstm":
        return gated.lstm_forward(p["X"], p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"],
                                  p["h0"], p["c0"], **kwargs)
    return gated.gru_forward(p["X"], p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], p["h0"],
                             **kwargs)


def test_the_same_name_and_shape_give_the_same_memory():
    space = Workspace()
    first = space.take("a", (3, 4), np.float32)
    again = space.take("a", (3, 4), np.float32)
    assert again is first


def test_other_names_shapes_and_dtypes_get_other_memory():
    space = Workspace()
    a = space.take("a", (3, 4), np.float32)
    b = space.take("b", (3, 4), np.float32)
    assert not np.shares_memory(a, b)
    c = space.take("a", (4, 3), np.float32)
    assert c.shape == (4, 3) and not np.shares_memory(a, c)
    d = space.take("a", (4, 3), np.float64)
    assert d.dtype == np.float64 and d.shape == (4, 3)
    assert space.take("a", (4, 3), np.float64) is d  # the last one taken is the one kept


def test_scopes_keep_apart_and_share_the_owner():
    space = Workspace()
    layer0, layer1 = space.scope(0), space.scope(1)
    assert space.scope(0) is layer0
    h0, h1 = layer0.take("h", (5,), np.float64), layer1.take("h", (5,), np.float64)
    assert not np.shares_memory(h0, h1)
    assert layer0.take("h", (5,), np.float64) is h0
    assert space.nbytes == 80 and layer0.nbytes == 40
    layer0.release()
    assert layer0.nbytes == 0 and layer1.take("h", (5,), np.float64) is h1
    assert layer0.take("h", (5,), np.float64) is not h0  # released: new memory


def test_release_forgets_a_name():
    space = Workspace()
    a = space.take("a", (2,), np.float64)
    space.release("a")
    assert space.take("a", (2,), np.float64) is not a


def test_without_a_workspace_every_array_is_new():
    a, b = take(None, "a", (3,), np.float64), take(None, "a", (3,), np.float64)
    assert not np.shares_memory(a, b)


def test_a_workspace_belongs_to_the_thread_that_made_it():
    space = Workspace()
    errors = []

    def use_it():
        try:
            space.take("a", (2,), np.float64)
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=use_it)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "thread" in str(errors[0])


def test_threads_with_their_own_workspaces_never_share_memory():
    got = {}

    def run(name):
        space = Workspace()
        got[name] = (space, space.take("a", (64,), np.float64))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    arrays = [a for _, a in got.values()]
    assert all(not np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:])


# ---------------------------------------------------------------------------------------
# Through the layers (thresholds lowered so that these small layers count as large)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_kept_result_is_never_overwritten_without_a_workspace(cell):
    p = problem(cell, 4, 3, 2, 5, seed=1)
    q = problem(cell, 4, 3, 2, 5, seed=2)
    with tuning.use(**RECYCLE_ALL):
        first = run_cell(cell, p)  # (copies) the reference
        kept = forward(cell, p)
        run_cell(cell, q)  # another problem of the same shape, no workspace
    assert_close(kept.h, first["h"], what="h")
    assert_close(kept.gates, first["gates"], what="gates")


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_workspace_lends_the_same_memory_to_the_next_call(cell):
    p = problem(cell, 4, 3, 2, 5, seed=3)
    q = problem(cell, 4, 3, 2, 5, seed=4)
    space = Workspace()
    with tuning.use(**RECYCLE_ALL):
        one = forward(cell, p, workspace=space)
        two = forward(cell, q, workspace=space)
        # the owner opted in: one's arrays now hold two's numbers
        assert two.h is one.h and two.gates is one.gates
        assert_close(two.h, run_cell(cell, q)["h"], what="h")
        other = forward(cell, q, workspace=space.scope("layer 2"))
        assert not np.shares_memory(other.h, two.h)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_results_from_a_workspace_equal_fresh_ones(cell):
    p = problem(cell, 5, 4, 3, 6, seed=5)
    with tuning.use(**RECYCLE_ALL):
        fresh = run_cell(cell, p, p["lengths"])
        space = Workspace()
        run_cell(cell, problem(cell, 5, 4, 3, 6, seed=6), p["lengths"], workspace=space)
        again = run_cell(cell, p, p["lengths"], workspace=space)  # memory with old numbers
    for name, value in fresh.items():
        np.testing.assert_array_equal(again[name], value, err_msg=name)
    assert space.nbytes > 0
