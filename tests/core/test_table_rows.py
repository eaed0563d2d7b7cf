"""The first layer's input projection read from a table by token (TableRows): the same bits
as the gathered array, in every cell, sorted or not, on one thread or split, and the
gathered array for a cell that does not read tables."""

from __future__ import annotations

import numpy as np
import pytest

from seqtool.core import parallel
from seqtool.core.rnn import tuning
from seqtool.core.rnn.cells import cell_names
from seqtool.core.rnn.stack import init_state_dict, stack_backward, stack_forward
from seqtool.core.rnn.table_rows import TableRows, as_array


def _problem(cell, dtype, T=6, B=7, E=3, H=5, V=9, layers=2, seed=0):
    rng = np.random.default_rng(seed)
    state = init_state_dict(cell, E, H, num_layers=layers, seed=seed + 1, dtype=dtype)
    table = (rng.standard_normal((V, E)).astype(dtype) @ state["weight_ih_l0"].T)
    ids = rng.integers(1, V, (T, B))
    lengths = rng.integers(1, T + 1, B)  # not sorted: the stack sorts the ids too
    dout = rng.standard_normal((T, B, H)).astype(dtype)
    return state, TableRows(table, ids), lengths, dout


def _run(cell, state, projected, lengths, dout, threads=1):
    with parallel.threads(threads), tuning.use(split_from=0):
        f = stack_forward(cell, None, state, lengths=lengths, projected=projected)
        g = stack_backward(f, state, dout, input_products=False)
    return f.output, f.h_n, g


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", cell_names())
@pytest.mark.parametrize("threads", [1, 2])
def test_table_rows_give_the_bits_of_the_gathered_projection(cell, dtype, threads):
    state, rows, lengths, dout = _problem(cell, dtype)
    gathered = np.take(rows.table, rows.ids, axis=0)
    expected = _run(cell, state, gathered.copy(), lengths, dout, threads)
    got = _run(cell, state, rows, lengths, dout, threads)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert set(got[2]) == set(expected[2])
    for key in expected[2]:
        np.testing.assert_array_equal(got[2][key], expected[2][key], err_msg=key)
    # and the table is left as it was (the bias goes into a copy of it)
    np.testing.assert_array_equal(rows.table, _problem(cell, dtype)[1].table)


def test_gathered_adds_the_bias_as_the_layers_did_to_p():
    rng = np.random.default_rng(3)
    table = rng.standard_normal((6, 4)).astype(np.float32)
    ids = rng.integers(0, 6, (3, 2))
    for bias in (rng.standard_normal(4).astype(np.float32), rng.standard_normal(4)):
        P = np.take(table, ids, axis=0)
        P += bias  # in place: the wider type, then rounded to float32
        got = TableRows(table, ids).gathered(bias=bias)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, P)
    assert TableRows(table, ids).shape == (3, 2, 4)
    assert TableRows(table, ids).gathered(np.float64).dtype == np.float64
    np.testing.assert_array_equal(TableRows(table, ids).take(np.array([1, 0])).ids,
                                  ids[:, ::-1])
    np.testing.assert_array_equal(as_array(TableRows(table, ids)), table[ids])
    with pytest.raises(ValueError):
        TableRows(table, ids).take(np.array([0, 1, 2]), axis=0)


@pytest.mark.parametrize("ids", [np.array([[0, 6]]), np.array([[-1, 2]]),
                                 np.array([[0.0, 1.0]]), np.array([0, 1])])
def test_ids_outside_the_table_are_refused_before_any_kernel_reads_them(ids):
    from seqtool.core.errors import InputError

    with pytest.raises(InputError, match="ids"):
        TableRows(np.zeros((6, 4), np.float32), ids)
