"""BufferPool: recycled shard buffers come back filled, bounded, and of the right kind."""

from __future__ import annotations

import numpy as np
import pytest
from topozarr_engine.buffers import BufferPool


def test_take_fills_fresh_and_recycled_buffers():
    pool = BufferPool(np.float32, max_free=2)
    a = pool.take((3, 4), np.nan)
    assert a.shape == (3, 4) and a.dtype == np.float32 and np.isnan(a).all()
    a[:] = 7
    pool.give(a)
    b = pool.take((3, 4), -1.0)
    assert b is a  # recycled, not reallocated
    np.testing.assert_array_equal(b, np.full((3, 4), -1.0, np.float32))


def test_shapes_are_not_mixed():
    pool = BufferPool(np.int16, max_free=4)
    edge = pool.take((2, 5), 0)
    pool.give(edge)
    full = pool.take((4, 5), 3)
    assert full is not edge and full.shape == (4, 5) and (full == 3).all()
    assert pool.take((2, 5), 1) is edge


def test_idle_buffers_are_bounded():
    pool = BufferPool(np.uint8, max_free=2)
    bufs = [pool.take((8,), 0) for _ in range(5)]
    for buf in bufs:
        pool.give(buf)
    assert len(pool) == 2


def test_foreign_buffers_are_not_kept():
    pool = BufferPool(np.float32, max_free=4)
    pool.give(np.zeros(4, np.float64))  # other dtype
    pool.give(np.zeros((4, 4), np.float32)[:, ::2])  # not contiguous
    readonly = np.zeros(4, np.float32)
    readonly.flags.writeable = False
    pool.give(readonly)
    assert len(pool) == 0


def test_negative_bound_is_refused():
    with pytest.raises(ValueError, match="max_free"):
        BufferPool(np.float32, max_free=-1)
