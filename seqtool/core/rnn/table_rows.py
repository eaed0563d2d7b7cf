"""A first layer's input projection read from a table by token, without forming it.

With token inputs the first layer's input projection is a table look-up:

    P[t, b] = x_t W_ihᵀ = E[id_t] W_ihᵀ = (E W_ihᵀ)[ids[t, b]]

(seqtool.core.models.embed_tokens). Gathered, P is a (T, B, G·H) array written once and
read once more by the layer's kernel: 1.7 MB at T = 13, B = 32, H = 256 for an LSTM, a
cache-cold pass each way. :class:`TableRows` hands the layer the (V, G·H) table and the
(T, B) ids instead: the built-in cells read each step's rows from the table inside their
kernels (the LSTM), or gather once with the bias already added to the table's V rows
rather than to P's T·B rows (the GRU and the vanilla RNN), and splitting a batch across
threads picks ids rather than copying P's rows. A cell that does not say it reads table
rows (``Cell.reads_table_rows``) gets the gathered array, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from seqtool.core.errors import InputError


@dataclass(frozen=True, slots=True)
class TableRows:
    """P (T, B, G) with P[t, b] = table[ids[t, b]]; ``table`` (V, G), ``ids`` (T, B) of
    whole numbers in 0..V−1."""

    table: np.ndarray
    ids: np.ndarray

    def __post_init__(self):
        # the kernels index the table by these without bounds checks: refused here
        table, ids = np.asarray(self.table), np.asarray(self.ids)
        if table.ndim != 2 or ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise InputError("ids", f"must be (T, B) whole numbers into a (V, G) table; got "
                             f"ids {ids.shape} {ids.dtype}, table {table.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
            raise InputError("ids", f"must lie in 0..{table.shape[0] - 1} (the table's rows); "
                             f"got {ids.min()}..{ids.max()}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (*self.ids.shape, self.table.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return self.table.dtype

    def take(self, order: np.ndarray, axis: int = 1) -> TableRows:
        """The rows (second axis) in ``order``, as ndarray.take(order, axis=1) gives them."""
        if axis != 1:
            raise ValueError("TableRows reorders its rows (axis 1) only")
        return TableRows(self.table, self.ids.take(order, axis=1))

    def rows(self, index: Any) -> TableRows:
        """The rows ``index`` (a slice: a part of a split batch), with contiguous ids."""
        return TableRows(self.table, np.ascontiguousarray(self.ids[:, index]))

    def gathered(self, dtype: Any = None, bias: np.ndarray | None = None) -> np.ndarray:
        """P itself (T, B, G), in ``dtype`` (default the table's), with ``bias`` (G,) added:
        to the table's V rows, so that each element of P is table + bias rounded once, as
        P + bias would be."""
        return np.take(self.biased_table(dtype, bias), self.ids, axis=0)

    def biased_table(self, dtype: Any = None, bias: np.ndarray | None = None) -> np.ndarray:
        """The table (V, G), C-contiguous, in ``dtype`` (default its own), with ``bias`` (G,)
        added to every row as P += bias would add it: in the wider type, then rounded."""
        table = self.table if dtype is None else self.table.astype(dtype, copy=False)
        if bias is not None:
            table = (table + bias).astype(table.dtype, copy=False)
        return np.ascontiguousarray(table)

    def ids_as_int64(self) -> np.ndarray:
        """The ids as the kernels take them: C-contiguous int64."""
        return np.ascontiguousarray(self.ids, dtype=np.int64)


def as_array(projected: Any) -> Any:
    """``projected`` as an ndarray (gathered if it is TableRows), or as it is."""
    return projected.gathered() if isinstance(projected, TableRows) else projected
