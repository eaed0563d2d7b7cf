"""seqtool.core.buffers.reusable: an array comes back only when nobody else holds it."""

from __future__ import annotations

import threading

import numpy as np

from seqtool.core.buffers import reusable


def test_an_array_nobody_holds_is_handed_out_again():
    first = reusable("test.a", (3, 4), np.float32)
    address = first.ctypes.data
    del first
    again = reusable("test.a", (3, 4), np.float32)
    assert again.ctypes.data == address


def test_an_array_or_a_view_still_held_is_never_handed_out():
    held = reusable("test.b", (3, 4), np.float32)
    other = reusable("test.b", (3, 4), np.float32)
    assert not np.shares_memory(held, other)
    view = other[1:]
    del other
    third = reusable("test.b", (3, 4), np.float32)
    assert not np.shares_memory(third, view) and not np.shares_memory(third, held)


def test_a_new_shape_or_dtype_gets_a_new_array():
    a = reusable("test.c", (3, 4), np.float32)
    del a
    b = reusable("test.c", (4, 3), np.float32)
    assert b.shape == (4, 3)
    del b
    c = reusable("test.c", (4, 3), np.float64)
    assert c.dtype == np.float64 and c.shape == (4, 3)


def test_threads_never_share_an_array():
    got = {}

    def take(name):
        a = reusable("test.d", (8,), np.float64)
        got[name] = a.ctypes.data
        del a

    mine = reusable("test.d", (8,), np.float64)
    address = mine.ctypes.data
    del mine
    thread = threading.Thread(target=take, args=("other",))
    thread.start()
    thread.join()
    assert got["other"] != address  # the other thread had none of its own yet
    assert reusable("test.d", (8,), np.float64).ctypes.data == address
