"""Accumulator: folding a raster tile by tile equals reducing it directly."""

from __future__ import annotations

import numpy as np
import pytest
from _core_reference import (
    DTYPES,
    METHODS,
    arrays_with_views,
    assert_matches,
    fill_values,
    reference,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from topozarr_core import Accumulator


def fold_in_tiles(acc, a, stride, cuts, order):
    """Folds `a` split at native `cuts` (one sorted list per axis), tiles visited in `order`."""
    bounds = [list(zip([0, *c], [*c, n], strict=True)) for c, n in zip(cuts, a.shape, strict=True)]
    tiles = [()]
    for b in bounds:
        tiles = [(*t, x) for t in tiles for x in b if x[1] > x[0]]
    for i in order(len(tiles)):
        t = tiles[i]
        tile = a[tuple(slice(lo, hi) for lo, hi in t)]
        offset = tuple(lo // s for (lo, _), s in zip(t, stride, strict=True))
        phase = tuple(lo % s for (lo, _), s in zip(t, stride, strict=True))
        acc.fold(tile, offset, stride, phase=phase)


@st.composite
def cases(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    method = draw(st.sampled_from(METHODS))
    nd = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 14 if nd <= 2 else 7)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    a = draw(arrays_with_views(dtype, shape))
    cuts = [sorted(set(draw(st.lists(st.integers(1, max(n - 1, 1)), max_size=3)))) for n in shape]
    cuts = [[c for c in cs if c < n] for cs, n in zip(cuts, shape, strict=True)]
    seed = draw(st.integers(0, 2**16))
    return a, stride, method, draw(fill_values(a)), draw(st.booleans()), cuts, seed


@settings(max_examples=300, deadline=None)
@given(cases())
def test_random_tilings_match_reference(case):
    a, stride, method, fill, skipna, cuts, seed = case
    shape = tuple(n // s for n, s in zip(a.shape, stride, strict=True))
    acc = Accumulator(shape, a.dtype, method, fill_value=fill, skipna=skipna)
    rng = np.random.default_rng(seed)
    fold_in_tiles(acc, a, stride, cuts, rng.permutation)
    want = reference(a, stride, method, fill, skipna, strict=True)
    assert_matches(acc.result(), want)
    if all(shape):
        start = tuple(n // 2 for n in shape)
        region = tuple(slice(s, None) for s in start)
        assert_matches(acc.result(start, shape), want[region])


@pytest.mark.parametrize("method", METHODS)
def test_tiles_of_three_rows_with_stride_four(method):
    rng = np.random.default_rng(7)
    a = rng.integers(-50, 50, (22, 13)).astype("int16")
    acc = Accumulator((5, 3), "int16", method, fill_value=0)
    # 3-row tiles never line up with 4-row windows; phase says where each starts.
    fold_in_tiles(acc, a, (4, 4), [list(range(3, 22, 3)), [5, 10]], lambda n: range(n)[::-1])
    np.testing.assert_array_equal(acc.result(), reference(a, (4, 4), method, 0, strict=True))


def test_window_aligned_tiles_without_phase():
    a = np.arange(64, dtype="float32").reshape(8, 8)
    acc = Accumulator((2, 2), "float32", "mean")
    for r in (0, 4):
        for c in (0, 4):
            acc.fold(a[r : r + 4, c : c + 4], (r // 4, c // 4), (4, 4))
    np.testing.assert_array_equal(acc.result(), reference(a, (4, 4), "mean"))


def test_contributions_beyond_shape_are_trimmed():
    acc = Accumulator((1,), "uint8", "sum")
    acc.fold(np.ones(10, "uint8"), (0,), (4,))
    assert acc.result().tolist() == [4]
    assert acc.result().dtype == np.uint64
    acc.fold(np.ones(3, "uint8"), (5,), (4,))  # entirely outside: ignored
    assert acc.result().tolist() == [4]


def test_unfolded_cells_are_fill():
    acc = Accumulator((2,), "float32", "mean", fill_value=-1.0)
    acc.fold(np.ones(2, "float32"), (0,), (2,))
    assert acc.result().tolist() == [1.0, -1.0]
    assert Accumulator((2,), "int8", "max").result().tolist() == [0, 0]


def test_properties():
    acc = Accumulator((3, 4), np.float32, "mean")
    assert acc.shape == (3, 4)
    assert acc.dtype == "float32"
    assert acc.method == "mean"
    assert acc.nbytes >= 3 * 4 * 12
    assert "Accumulator(" in repr(acc)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: Accumulator((2, 2), "float16", "mean"), TypeError, "float16"),
        (lambda: Accumulator((2, 2), "float32", "median"), ValueError, "median"),
        (lambda: Accumulator((2, 2), "uint8", "mean", fill_value=300), ValueError, "300"),
        (lambda: Accumulator((), "uint8", "mean"), ValueError, "got 0"),
        (lambda: Accumulator((-1,), "uint8", "mean"), ValueError, "negative"),
        (lambda: Accumulator((2**40, 2**40), "uint8", "mean"), MemoryError, "bytes"),
    ],
)
def test_constructor_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_fold_errors():
    acc = Accumulator((2, 2), "float32", "mean")
    a = np.zeros((4, 4), "float32")
    with pytest.raises(TypeError, match="tile dtype float64 does not match"):
        acc.fold(a.astype("float64"), (0, 0), (2, 2))
    with pytest.raises(ValueError, match="offset has 1 entries"):
        acc.fold(a, (0,), (2, 2))
    with pytest.raises(ValueError, match="negative"):
        acc.fold(a, (-1, 0), (2, 2))
    with pytest.raises(ValueError, match="phase"):
        acc.fold(a, (0, 0), (2, 2), phase=(2, 0))
    with pytest.raises(ValueError, match="3 dimensions"):
        acc.fold(np.zeros((1, 4, 4), "float32"), (0, 0), (2, 2))
    with pytest.raises(ValueError, match="not inside"):
        acc.result((0, 0), (3, 2))
    acc.fold(a, (0, 0), (2, 2))
    with pytest.raises(ValueError, match=r"stride \[4, 4\] differs from the stride \[2, 2\]"):
        acc.fold(a, (0, 0), (4, 4))


def test_readme_example():
    dem = np.array([[1.0, 2.0, np.nan, np.nan], [3.0, 4.0, np.nan, 9.0]], dtype="float32")
    acc = Accumulator((1, 1), "float32", "mean")
    acc.fold(dem[:, :3], (0, 0), (2, 4))
    acc.fold(dem[:, 3:], (0, 0), (2, 4), phase=(0, 3))
    np.testing.assert_allclose(acc.result(), [[3.8]], rtol=1e-7)
