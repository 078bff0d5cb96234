"""pyramid_tile: every level equals reducing the native cells directly (strict trim)."""

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
from topozarr_core import block_reduce, pyramid_tile


@st.composite
def cumulative_strides(draw, ndim):
    """1 to 3 levels, each stride a multiple of the previous one on every axis."""
    first = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    out = [first]
    for _ in range(draw(st.integers(0, 2))):
        out.append(tuple(s * draw(st.integers(1, 3)) for s in out[-1]))
    return out


@st.composite
def cases(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    method = draw(st.sampled_from(METHODS))
    nd = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 12 if nd <= 2 else 6)) for _ in range(nd))
    a = draw(arrays_with_views(dtype, shape))
    return a, draw(cumulative_strides(nd)), method, draw(fill_values(a)), draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(cases())
def test_levels_match_reference(case):
    a, strides, method, fill, skipna = case
    levels = pyramid_tile(a, strides, method, fill_value=fill, skipna=skipna)
    assert len(levels) == len(strides)
    for got, stride in zip(levels, strides, strict=True):
        assert_matches(got, reference(a, stride, method, fill, skipna, strict=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_agrees_with_block_reduce_on_whole_windows(dtype, method):
    rng = np.random.default_rng(3)
    a = rng.integers(0, 100, (2, 37, 45)).astype(dtype)
    strides = [(1, 2, 2), (1, 4, 4), (1, 8, 8), (2, 16, 16)]
    levels = pyramid_tile(a, strides, method, fill_value=5)
    for got, s in zip(levels, strides, strict=True):
        cut = a[tuple(slice(0, n // k * k) for n, k in zip(a.shape, s, strict=True))]
        want = block_reduce(cut, s, method, fill_value=5)
        if a.dtype.kind == "f":
            assert_matches(got, want)
        else:
            np.testing.assert_array_equal(got, want)
            assert got.dtype == want.dtype


def test_integer_mean_rounds_once_from_native_sums():
    # Means of means would drift: level 2 of [[1, 2], ...] must come from the native sum.
    a = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]], dtype="uint8")
    lvl1, lvl2 = pyramid_tile(a, [(2, 2), (4, 4)], "mean")
    assert lvl1.tolist() == [[0, 0], [0, 0]]
    assert lvl2.tolist() == [[0]]
    b = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 2, 2], [1, 1, 1, 2]], dtype="int32")
    lvl1, lvl2 = pyramid_tile(b, [(2, 2), (4, 4)], "mean")
    # level 1: 1, 1, 1, 1.75->2 ; mean of those would be 1.25->1, native 19/16 -> 1
    assert lvl1.tolist() == [[1, 1], [1, 2]]
    assert lvl2.tolist() == [[1]]
    c = np.array([[3, 3, 3, 3], [3, 3, 3, 3], [3, 3, 3, 3], [3, 3, 4, 4]], dtype="int32")
    # level-1 cell [1, 1] = 3.5 -> 4 (half to even); a mean of level 1 would give 3.25 -> 3,
    # the native mean is 50/16 = 3.125 -> 3.
    assert pyramid_tile(c, [(2, 2), (4, 4)], "mean")[1].tolist() == [[3]]


def test_edge_tile_invents_no_window():
    a = np.ones((3, 5), "float32")
    lvl = pyramid_tile(a, [(2, 2), (4, 4)], "mean")
    assert [x.shape for x in lvl] == [(1, 2), (0, 1)]
    assert pyramid_tile(a, [], "mean") == []


@pytest.mark.parametrize(
    ("strides", "match"),
    [
        ([(2, 2), (3, 4)], r"strides\[1\] = \[3, 4\] is not a multiple of strides\[0\] = \[2, 2\]"),
        ([(2, 2), (2,)], r"stride has 1 entries"),
        ([(0, 2)], r"axis 0"),
    ],
)
def test_bad_strides(strides, match):
    with pytest.raises(ValueError, match=match):
        pyramid_tile(np.zeros((8, 8), "float32"), strides, "mean")


@pytest.mark.parametrize("method", ["mean", "max", "nearest", "mode"])
def test_a_tile_kept_on_its_thread_gives_the_split_tiles_levels(method):
    # 1024 x 640 cells: above the size from which the kernel splits a tile over its threads.
    rng = np.random.default_rng(7)
    a = rng.normal(100, 30, (1024, 640)).astype("float32")
    if method == "mode":
        a = rng.integers(0, 5, (1024, 640)).astype("uint8")
    else:
        a[rng.random(a.shape) < 0.3] = np.nan
    strides = [(2, 2), (4, 4), (16, 16)]
    split = pyramid_tile(a, strides, method)
    kept = pyramid_tile(a, strides, method, parallel=False)
    for got, want, stride in zip(kept, split, strides, strict=True):
        np.testing.assert_array_equal(got, want)
        if method in METHODS:
            assert_matches(got, reference(a, stride, method, None, True, strict=True))
        else:  # no numpy reference for mode here (test_mode.py has one): its block_reduce
            assert_matches(got, block_reduce(a, stride, method))
