"""mode: block_reduce, pyramid_tile and Accumulator against an independent numpy reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from topozarr_core import Accumulator, block_reduce, pyramid_tile

# uint8 classes, int16 with a fill value, float with NaN: the brief's three cases.
KINDS = ("uint8", "int16", "float32")


def mode_reference(a, stride, fill=None, skipna=True, strict=False):
    """Mode of each window, the slow way: np.unique on the window's valid native cells."""
    a = np.asarray(a)
    outs = tuple(
        1 if (not strict and 0 < n < s) else n // s for n, s in zip(a.shape, stride, strict=True)
    )
    empty = fill if fill is not None else (np.nan if a.dtype.kind == "f" else 0)
    out = np.empty(outs, a.dtype)
    for idx in np.ndindex(*outs):
        win = a[tuple(slice(i * s, (i + 1) * s) for i, s in zip(idx, stride, strict=True))]
        v = win.ravel()
        bad = np.isnan(v) if v.dtype.kind == "f" else np.zeros(v.shape, bool)
        if fill is not None and not (isinstance(fill, float) and np.isnan(fill)):
            bad |= v == fill
        valid = v[~bad]
        if valid.size == 0 or (bad.any() and not skipna):
            out[idx] = empty
            continue
        values, counts = np.unique(valid, return_counts=True)  # sorted: argmax = smallest tie
        out[idx] = values[np.argmax(counts)]
    return out


@st.composite
def rasters(draw, max_side=24):
    kind = draw(st.sampled_from(KINDS))
    shape = (draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    classes = draw(st.integers(1, 6))
    fill = None
    if kind == "uint8":
        a = rng.integers(0, classes, shape).astype("uint8")
    elif kind == "int16":
        a = rng.integers(-3, classes - 3, shape).astype("int16") * 1000
        fill = -9999
        a[rng.random(shape) < 0.3] = fill
    else:
        a = (rng.integers(0, classes, shape) * 0.5).astype("float32")
        a[rng.random(shape) < 0.3] = np.nan
    if draw(st.booleans()):
        a = np.ascontiguousarray(a.T).T  # column-major: strided rows
    return a, fill


def assert_same(got, want):
    np.testing.assert_array_equal(np.asarray(got), want)
    assert np.asarray(got).dtype == want.dtype


@settings(max_examples=200, deadline=None)
@given(rasters(), st.tuples(st.integers(1, 6), st.integers(1, 6)), st.booleans())
def test_block_reduce(case, stride, skipna):
    a, fill = case
    got = block_reduce(a, stride, "mode", fill_value=fill, skipna=skipna)
    assert_same(got, mode_reference(a, stride, fill, skipna))


@settings(max_examples=100, deadline=None)
@given(rasters(max_side=40), st.sampled_from([[(2, 2), (4, 4), (8, 8)], [(1, 3), (3, 9)]]))
def test_pyramid_tile_every_level_from_native_cells(case, strides):
    a, fill = case
    levels = pyramid_tile(a, strides, "mode", fill_value=fill)
    for got, s in zip(levels, strides, strict=True):
        assert_same(got, mode_reference(a, s, fill, strict=True))


@settings(max_examples=100, deadline=None)
@given(
    rasters(max_side=30),
    st.sampled_from([(4, 4), (3, 5), (8, 2)]),
    st.lists(st.integers(1, 29), max_size=3),
    st.lists(st.integers(1, 29), max_size=3),
    st.integers(0, 2**16),
)
def test_accumulator_in_random_tiles(case, stride, rcuts, ccuts, seed):
    a, fill = case
    shape = tuple(n // s for n, s in zip(a.shape, stride, strict=True))
    acc = Accumulator(shape, a.dtype, "mode", fill_value=fill)
    rows = sorted({0, *[c for c in rcuts if c < a.shape[0]], a.shape[0]})
    cols = sorted({0, *[c for c in ccuts if c < a.shape[1]], a.shape[1]})
    tiles = [(r, c) for r in itertools.pairwise(rows) for c in itertools.pairwise(cols)]
    for i in np.random.default_rng(seed).permutation(len(tiles)):
        (r0, r1), (c0, c1) = tiles[i]
        acc.fold(
            a[r0:r1, c0:c1],
            (r0 // stride[0], c0 // stride[1]),
            stride,
            phase=(r0 % stride[0], c0 % stride[1]),
        )
    assert_same(acc.result(), mode_reference(a, stride, fill, strict=True))
    assert acc.nbytes >= 0


def test_ties_go_to_the_smallest_value():
    a = np.array([[3, 1], [1, 3]], "uint8")
    assert block_reduce(a, (2, 2), "mode")[0, 0] == 1
    b = np.array([[7, 7, 2, 2, 9, 5]], "int16")
    assert block_reduce(b, (1, 6), "mode")[0, 0] == 2


def test_all_missing_window_gives_fill_or_nan():
    a = np.array([[5, 5, 1, 1]], "uint8")
    np.testing.assert_array_equal(block_reduce(a, (1, 2), "mode", fill_value=5), [[5, 1]])
    f = np.array([[np.nan, np.nan, 2.5, np.nan]], "float64")
    got = block_reduce(f, (1, 2), "mode")
    assert np.isnan(got[0, 0]) and got[0, 1] == 2.5


@pytest.mark.parametrize(
    "dtype",
    [
        "uint8",
        "int8",
        "uint16",
        "int16",
        "uint32",
        "int32",
        "uint64",
        "int64",
        "float32",
        "float64",
    ],
)
def test_every_dtype(dtype):
    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, (16, 20)).astype(dtype)
    for stride in [(2, 2), (4, 5), (16, 20)]:
        assert_same(block_reduce(a, stride, "mode"), mode_reference(a, stride))


def test_high_cardinality_float_mode_is_smallest_value():
    # All values distinct: every count is 1, so the tie rule picks the minimum.
    a = np.random.default_rng(1).standard_normal((8, 8)).astype("float64")
    np.testing.assert_array_equal(
        block_reduce(a, (4, 4), "mode"), a.reshape(2, 4, 2, 4).min(axis=(1, 3))
    )


def blocky_class_map(shape, classes, dtype, seed, block=6, noise=0.35):
    """Blocks of one class with re-drawn noise cells: what the SIMD kernels' shortcuts meet."""
    rng = np.random.default_rng(seed)
    h, w = shape
    base = rng.integers(0, classes, (h // block + 1, w // block + 1))
    a = base.repeat(block, 0).repeat(block, 1)[:h, :w]
    cells = rng.random(shape) < noise
    a = np.where(cells, rng.integers(0, classes, shape), a)
    info = np.iinfo(dtype)
    return (a % (int(info.max) - int(info.min) + 1) + int(info.min)).astype(dtype)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
@pytest.mark.parametrize("classes", [3, 40, 65536])
@pytest.mark.parametrize("side", [4, 8, 16, 32])
def test_square_windows_of_16_to_1024_cells(dtype, classes, side):
    """4x4 / 8x8 (SIMD pairwise counts), 16x16 / 32x32 (SIMD bound with the counting table
    behind it): fill value as a class, skipna both ways, widths leaving partial vectors."""
    a = blocky_class_map((3 * side + 1, 13 * side + 3), classes, dtype, seed=side + classes)
    fill = int(a.flat[5])
    for f, skipna in ((None, True), (fill, True), (fill, False)):
        got = block_reduce(a, (side, side), "mode", fill_value=f, skipna=skipna)
        assert_same(got, mode_reference(a, (side, side), f, skipna))


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_pyramid_tile_square_levels(dtype):
    a = blocky_class_map((64, 96 + 16), 300, dtype, seed=3, block=8, noise=0.3)
    strides = [(2, 2), (4, 4), (8, 8), (16, 16), (32, 32)]
    for got, s in zip(pyramid_tile(a, strides, "mode", fill_value=7), strides, strict=True):
        assert_same(got, mode_reference(a, s, 7, strict=True))


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
@pytest.mark.parametrize("classes", [8, 256, 65536])
@pytest.mark.parametrize("side", [16, 32])
def test_large_windows_over_wide_rows(dtype, classes, side):
    """16x16 / 32x32 over rows wider than the kernel's chunk of 512 bytes (several chunks and a
    partial one): 8x8 blocks, so windows mix 4 or 16 block classes plus noise."""
    a = blocky_class_map(
        (2 * side, 61 * side + 5), classes, dtype, seed=classes, block=8, noise=0.3
    )
    fill = int(a.flat[9])
    for f, skipna in ((None, True), (fill, True), (fill, False)):
        got = block_reduce(a, (side, side), "mode", fill_value=f, skipna=skipna)
        assert_same(got, mode_reference(a, (side, side), f, skipna))


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
@pytest.mark.parametrize("side", [16, 32])
def test_large_windows_majority_ties_and_hidden_modes(dtype, side):
    """Windows the first candidates decide (one class holds a majority), exact ties between two
    candidates (smallest wins), uniform noise over many values, and a value that is no 4x4
    sub-window's mode yet is the window's mode (the bound cannot decide: exact table)."""
    rng = np.random.default_rng(side)
    top = 250 if dtype == "uint8" else 60000
    n = 40
    a = rng.integers(0, top, (side, n * side)).astype(dtype)
    wins = [a[:, i * side : (i + 1) * side] for i in range(n)]
    for i, w in enumerate(wins[:10]):  # majority: 60% one class
        w[rng.random(w.shape) < 0.6] = 7 + i
    for i, w in enumerate(wins[10:20]):  # tie: two halves of two values, larger one first
        w[:] = 30 + i
        w[: side // 2] = 20 + i
        w[0, :3] = w[-1, :3] = 99  # as many cells off each half
    for w in wins[20:30]:  # hidden mode: 5 of each 4x4 sub-window's own value, 4 cells of 3
        for r in range(0, side, 4):
            for c in range(0, side, 4):
                sub = rng.choice(np.arange(100, top), 16, replace=False)
                sub[:5] = sub[5]
                sub[5:9] = 3
                w[r : r + 4, c : c + 4] = sub.reshape(4, 4)
    # wins[30:]: uniform noise over many values (mostly undecided; ties to the minimum).
    for f, skipna in ((None, True), (int(a[0, 0]), True), (int(a[0, 0]), False)):
        got = block_reduce(a, (side, side), "mode", fill_value=f, skipna=skipna)
        assert_same(got, mode_reference(a, (side, side), f, skipna))
    got = block_reduce(a, (side, side), "mode")
    assert list(got[0, 20:30]) == [3] * 10
    assert list(got[0, :10]) == list(range(7, 17))


def test_all_missing_large_windows_give_fill():
    a = np.full((32, 640), 9, "uint16")
    a[:, 320:] = 4
    a[5, 400] = 9
    got = block_reduce(a, (16, 16), "mode", fill_value=9)
    assert list(got[0]) == [9] * 20 + [4] * 20
    got = block_reduce(a, (16, 16), "mode", fill_value=9, skipna=False)
    assert got[0, 25] == 9 and got[0, 24] == 4 and got[1, 25] == 4
