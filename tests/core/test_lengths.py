"""Padded batches with lengths: every layer keeps a sequence's state past its end and skips
the work there, and the result is that of each sequence run alone."""

from __future__ import annotations

import numpy as np
import pytest

from harness import assert_close
from seqtool.core.errors import InputError
from seqtool.core.rnn import vanilla
from seqtool.core.rnn.lengths import longest_first, step_schedule
from seqtool.core.rnn.tuning import current as current_tuning
from seqtool.core.rnn.cells import cell_names
from seqtool.core.rnn.stack import init_state_dict, stack_backward, stack_forward

CELLS = cell_names()

LENGTHS = [3, 7, 0, 5, 7, 1]  # unsorted, with an empty sequence and a full one


def test_step_schedule_counts_the_running_rows_of_a_longest_first_batch():
    lengths = np.array(LENGTHS)[longest_first(np.array(LENGTHS))]
    assert list(lengths) == [7, 7, 5, 3, 1, 0]
    active, rows = step_schedule(lengths, 7, 6)
    assert active.dtype == np.int64 and list(active) == [5, 4, 4, 3, 3, 2, 2]
    # the real steps (t, b) as rows t·B + b of (T·B, ...): 23 of 42
    expected = [t * 6 + b for t in range(7) for b in range(6) if t < lengths[b]]
    assert list(rows) == expected
    full, no_rows = step_schedule(None, 4, 3)
    assert list(full) == [3, 3, 3, 3] and no_rows is None
    # nearly all real: the products run on every row, no gathering
    assert step_schedule(np.array([10] * 9 + [9]), 10, 10)[1] is None
    assert len(step_schedule(np.array([10] * 8 + [1, 1]), 10, 10)[1]) == 82


@pytest.mark.parametrize("seed", range(6))
def test_step_schedule_matches_its_definition_on_random_batches(seed):
    # the kernel (seqtool.core.rnn.schedule) against active[t] = #{b : ℓ_b > t} and the
    # rows t·B + b of the real steps, empty sequences and full ones included
    rng = np.random.default_rng(seed)
    T, B = int(rng.integers(1, 15)), int(rng.integers(1, 40))
    lengths = np.sort(rng.integers(0, T + 1, B))[::-1]
    lengths[: seed % 3] = T
    active, rows = step_schedule(lengths, T, B)
    assert list(active) == [int((lengths > t).sum()) for t in range(T)]
    if rows is None:
        assert lengths.sum() >= current_tuning().gather_below * T * B
    else:
        assert list(rows) == [t * B + b for t in range(T) for b in range(B) if t < lengths[b]]


def test_schedules_asked_in_turn_come_from_the_cache_and_stay_their_own():
    # an encoder–decoder asks for its source's and its target's schedules in turn
    batches = [(np.array([5, 3, 2]), 5), (np.array([6, 6, 1]), 7), (np.array([2, 2, 2]), 2)]
    first = [step_schedule(lengths, T, 3) for lengths, T in batches]
    for _ in range(2):
        for (lengths, T), made in zip(batches[::-1], first[::-1]):
            again = step_schedule(lengths.copy(), T, 3)
            assert again[0] is made[0]  # not made anew
            expected = [int((lengths > t).sum()) for t in range(T)]
            assert list(again[0]) == expected
    # the same lengths in another batch shape are another schedule
    assert list(step_schedule(np.array([5, 3, 2]), 6, 3)[0]) == [3, 3, 2, 1, 1, 0]


@pytest.mark.parametrize("bad", [np.array([1, 2]), np.array([3.0, 2.0, 1.0]),
                                 np.array([8, 2, 1]), np.array([2, 1, -1]),
                                 np.array([1, 2, 1])])
def test_step_schedule_refuses_lengths_that_do_not_fit(bad):
    with pytest.raises(InputError):
        step_schedule(bad, 7, 3)


def test_truncated_bptt_refuses_lengths():
    rng = np.random.default_rng(0)
    X, W_xh, W_hh = rng.normal(size=(4, 2, 3)), rng.normal(size=(5, 3)), rng.normal(size=(5, 5))
    h = vanilla.rnn_forward(X, W_xh, W_hh, np.zeros(5), lengths=np.array([4, 2]))
    with pytest.raises(InputError):
        vanilla.rnn_backward(X, W_xh, W_hh, h, np.ones((4, 2, 5)), truncate=2,
                             lengths=np.array([4, 2]))


def problem(cell, dtype, T=7, D=3, H=5, L=2, seed=1):
    rng = np.random.default_rng(seed)
    B = len(LENGTHS)
    lstm = cell == "lstm"
    return dict(
        state=init_state_dict(cell, D, H, L, seed=seed, dtype=dtype),
        X=rng.normal(size=(T, B, D)).astype(dtype),
        h0=(rng.normal(size=(L, B, H)) * 0.5).astype(dtype),
        c0=(rng.normal(size=(L, B, H)) * 0.5).astype(dtype) if lstm else None,
        G=rng.normal(size=(T, B, H)).astype(dtype),  # ∂L/∂output at every step, pads too
        A=rng.normal(size=(L, B, H)).astype(dtype),  # ∂L/∂h_n
        C=rng.normal(size=(L, B, H)).astype(dtype) if lstm else None,  # ∂L/∂c_n
    )


def alone(cell, p, b, length):
    """Sequence b run by itself over its own steps: outputs padded with its last state as
    (T, H), h_n, c_n, and every gradient, with the loss terms of the padded steps (which
    read the last state) moved onto the last real step."""
    T, _, D = p["X"].shape
    L, _, H = p["h0"].shape
    one = slice(b, b + 1)
    h0 = p["h0"][:, one]
    c0 = None if p["c0"] is None else p["c0"][:, one]
    A = p["A"][:, one]
    C = None if p["C"] is None else p["C"][:, one]
    if length == 0:  # nothing runs: every output is the top layer's h0
        dh0 = A.copy()
        dh0[-1] += p["G"][:, b].sum(axis=0)
        zeros = {key: np.zeros_like(value) for key, value in p["state"].items()}
        return dict(output=np.repeat(h0[-1], T, axis=0), h_n=h0, c_n=c0,
                    grads={**zeros, "h0": dh0, "c0": C, "x": np.zeros((T, 1, D))})
    f = stack_forward(cell, p["X"][:length, one], p["state"], h0, c0)
    G = p["G"][:length, one].copy()
    G[-1] += p["G"][length:, b].sum(axis=0)
    grads = stack_backward(f, p["state"], G, dh_n=A, dc_n=C)
    grads["x"] = np.concatenate([grads["x"], np.zeros((T - length, 1, D))])
    output = f.output[:, 0]
    output = np.concatenate([output, np.repeat(output[-1:], T - length, axis=0)])
    return dict(output=output, h_n=f.h_n, c_n=f.c_n, grads=grads)


@pytest.mark.parametrize("order", ["as given", "longest first"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", CELLS)
def test_padded_batch_equals_each_sequence_alone(cell, dtype, order):
    p = problem(cell, dtype)
    lengths = np.array(LENGTHS)
    if order == "longest first":
        perm = longest_first(lengths)
        lengths = lengths[perm]
        p = {key: (value if key == "state" or value is None else
                   value[:, perm] if value.ndim == 3 else value) for key, value in p.items()}
    f = stack_forward(cell, p["X"], p["state"], p["h0"], p["c0"], lengths=lengths)
    grads = stack_backward(f, p["state"], p["G"], dh_n=p["A"], dc_n=p["C"])

    refs = [alone(cell, p, b, int(n)) for b, n in enumerate(lengths)]
    assert_close(f.output, np.stack([r["output"] for r in refs], axis=1), what="output")
    assert_close(f.h_n, np.concatenate([r["h_n"] for r in refs], axis=1), what="h_n")
    names = list(p["state"]) + ["h0", "x"]
    if cell == "lstm":
        assert_close(f.c_n, np.concatenate([r["c_n"] for r in refs], axis=1), what="c_n")
        names.append("c0")
    for name in names:
        if name in p["state"]:
            expected = sum(r["grads"][name] for r in refs)  # the batch's loss is the sum
        else:
            expected = np.concatenate([r["grads"][name] for r in refs], axis=1)
        assert grads[name].shape == expected.shape, name
        assert_close(grads[name], expected, what=name)
    # nothing reaches an input past its sequence's end
    for b, n in enumerate(lengths):
        assert not grads["x"][n:, b].any()


@pytest.mark.parametrize("cell", CELLS)
def test_final_state_is_torch_packed_sequences(cell):
    torch = pytest.importorskip("torch")
    p = problem(cell, np.float64, seed=3)
    lengths = np.array(LENGTHS)
    T, B, D = p["X"].shape
    L, _, H = p["h0"].shape
    module = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](
        D, H, num_layers=L).double()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in p["state"].items()})
    running = lengths > 0  # torch packs no empty sequence
    X = torch.from_numpy(p["X"][:, running])
    packed = torch.nn.utils.rnn.pack_padded_sequence(X, torch.from_numpy(lengths[running]),
                                                     enforce_sorted=False)
    h0 = torch.from_numpy(p["h0"][:, running])
    state = (h0, torch.from_numpy(p["c0"][:, running])) if cell == "lstm" else h0
    with torch.no_grad():
        out, final = module(packed, state)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    f = stack_forward(cell, p["X"], p["state"], p["h0"], p["c0"], lengths=lengths)
    h_n = final[0] if cell == "lstm" else final
    assert_close(f.h_n[:, running], h_n.numpy(), what="h_n")
    for b, n in enumerate(lengths[running]):
        assert_close(f.output[:n, np.flatnonzero(running)[b]], out[:n, b].numpy(), what="output")
    if cell == "lstm":
        assert_close(f.c_n[:, running], final[1].numpy(), what="c_n")
