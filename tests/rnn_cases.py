"""A fixed set of small forward + backward passes of every cell, for comparing one way of
running the core with another (compiled against NUMBA_DISABLE_JIT=1, tiles against plain
products, small-size paths against large-size ones).

    python tests/rnn_cases.py OUT.npz [--tiny] [--cells rnn,gru]

writes :func:`compute`'s arrays; the tests run it in a subprocess with another
environment and compare against the same function run in-process. Float64 only: one
dtype's compile is enough to cover every path, and a pure-Python run is slow.
"""

from __future__ import annotations

import sys

import numpy as np

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
# (T, B, D, H): one row (matmul_row), rows left over after the tiles and a partial last
# vector (13 = 8 + 4 + 1, H = 21), the tiles of 4 rows (B = 4)
SHAPES = [(5, 1, 3, 4), (4, 13, 17, 21), (3, 4, 20, 40)]
TINY_SHAPES = [(3, 1, 2, 3), (3, 5, 3, 4)]


def problem(cell: str, T: int, B: int, D: int, H: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    G = GATES[cell] * H
    lengths = np.sort(rng.integers(1, T + 1, size=B))[::-1].copy()
    lengths[0] = T
    return dict(
        X=rng.normal(size=(T, B, D)), W_ih=rng.normal(size=(G, D)) * 0.6,
        W_hh=rng.normal(size=(G, H)) * 0.6 / np.sqrt(H), b_ih=rng.normal(size=G) * 0.2,
        b_hh=rng.normal(size=G) * 0.2, h0=rng.normal(size=(B, H)) * 0.4,
        c0=rng.normal(size=(B, H)) * 0.4, dh=rng.normal(size=(T, B, H)),
        dc_n=rng.normal(size=(B, H)), lengths=lengths)


def run_cell(cell: str, p: dict, lengths=None, workspace=None) -> dict[str, np.ndarray]:
    """Every output and gradient of one layer of ``cell`` on problem ``p``, copied."""
    from seqtool.core.rnn import gated, vanilla

    space = {} if workspace is None else {"workspace": workspace}
    if cell == "rnn":
        h = vanilla.rnn_forward(p["X"], p["W_ih"], p["W_hh"], p["b_ih"] + p["b_hh"], p["h0"],
                                lengths=lengths)
        g = vanilla.rnn_backward(p["X"], p["W_ih"], p["W_hh"], h, p["dh"], lengths=lengths)
        return {"h": h, "weight_ih": g.W_xh, "weight_hh": g.W_hh, "bias": g.b_h,
                "h0": g.h0, "x": g.x}
    if cell == "gru":
        r = gated.gru_forward(p["X"], p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], p["h0"],
                              lengths, **space)
        out = {"h": r.h.copy(), "gates": r.gates.copy()}
        g = gated.gru_backward(p["X"], p["W_ih"], p["W_hh"], r, p["dh"], **space)
    else:
        r = gated.lstm_forward(p["X"], p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], p["h0"],
                               p["c0"], lengths, **space)
        out = {"h": r.h.copy(), "c": r.c.copy(), "gates": r.gates.copy()}
        g = gated.lstm_backward(p["X"], p["W_ih"], p["W_hh"], r, p["dh"], p["dc_n"], **space)
        out["c0"] = g.c0.copy()
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0", "x"):
        out[name] = np.array(getattr(g, name))
    return out


def compute(tiny: bool = False, cells=tuple(GATES)) -> dict[str, np.ndarray]:
    """name → array for every cell (of ``cells``), shape, with and without lengths."""
    results = {}
    for cell in cells:
        for shape in TINY_SHAPES if tiny else SHAPES:
            p = problem(cell, *shape, seed=sum(shape))
            for with_lengths in (False, True):
                lengths = p["lengths"] if with_lengths else None
                key = f"{cell}/{'x'.join(map(str, shape))}/{'lengths' if with_lengths else 'full'}"
                for name, value in run_cell(cell, p, lengths).items():
                    results[f"{key}/{name}"] = np.asarray(value)
    return results


if __name__ == "__main__":
    from numba import config

    from seqtool.core.rnn import products

    # how this process ran, for the caller to check: (jit disabled, compiled tuning)
    how = np.array([config.DISABLE_JIT, *products.TUNING.compiled()], dtype=np.int64)
    cells = tuple(GATES)
    if "--cells" in sys.argv:
        cells = tuple(sys.argv[sys.argv.index("--cells") + 1].split(","))
    np.savez(sys.argv[1], **compute(tiny="--tiny" in sys.argv[2:], cells=cells), _how=how)
