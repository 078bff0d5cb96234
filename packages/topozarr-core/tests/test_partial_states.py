"""Accumulator partial states across processes: pieces folded apart, exported, merged (and
coarsened) equal reducing the whole raster directly (the cluster writer's deep levels)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from _core_reference import DTYPES, METHODS, arrays_with_views, assert_matches, reference
from hypothesis import given, settings
from hypothesis import strategies as st
from topozarr_core import Accumulator


def touched(lo: int, hi: int, s: int) -> tuple[int, int]:
    """Cells of stride ``s`` whose windows native ``[lo, hi)`` touches."""
    return lo // s, -(-hi // s)


def pieces(shape, cuts):
    """Boxes (one ``(lo, hi)`` per axis) that split ``shape`` at ``cuts``."""
    bounds = [list(zip([0, *c], [*c, n], strict=True)) for c, n in zip(cuts, shape, strict=True)]
    boxes = [()]
    for b in bounds:
        boxes = [(*t, x) for t in boxes for x in b if x[1] > x[0]]
    return boxes


def folded(a, box, stride, method, fill, skipna):
    """An accumulator over the cells ``box`` of ``a`` touches, with that piece folded in, and
    its first cell."""
    cells = [touched(lo, hi, s) for (lo, hi), s in zip(box, stride, strict=True)]
    acc = Accumulator([b - a for a, b in cells], a.dtype, method, fill_value=fill, skipna=skipna)
    piece = a[tuple(slice(lo, hi) for lo, hi in box)]
    phase = [lo % s for (lo, _), s in zip(box, stride, strict=True)]
    acc.fold(piece, [0] * a.ndim, stride, phase=phase)
    return acc, [c for c, _ in cells]


@st.composite
def cases(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    method = draw(st.sampled_from(METHODS))
    nd = draw(st.integers(1, 2))
    shape = tuple(draw(st.integers(1, 16)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    factor = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    a = draw(arrays_with_views(dtype, shape))
    cuts = [sorted(set(draw(st.lists(st.integers(1, max(n - 1, 1)), max_size=3)))) for n in shape]
    cuts = [[c for c in cs if c < n] for cs, n in zip(cuts, shape, strict=True)]
    fill = draw(st.sampled_from([None, 0]))
    return a, stride, factor, method, fill, draw(st.booleans()), cuts, draw(st.integers(0, 99))


@settings(max_examples=200, deadline=None)
@given(cases())
def test_pieces_merged_and_coarsened_match_reference(case):
    a, stride, factor, method, fill, skipna, cuts, seed = case
    whole = [touched(0, n, s)[1] for n, s in zip(a.shape, stride, strict=True)]
    merged = Accumulator(whole, a.dtype, method, fill_value=fill, skipna=skipna)
    coarse_stride = tuple(s * f for s, f in zip(stride, factor, strict=True))
    coarse_whole = [touched(0, n, s)[1] for n, s in zip(a.shape, coarse_stride, strict=True)]
    coarse = Accumulator(coarse_whole, a.dtype, method, fill_value=fill, skipna=skipna)
    boxes = pieces(a.shape, cuts)
    for i in np.random.default_rng(seed).permutation(len(boxes)):
        acc, first = folded(a, boxes[i], stride, method, fill, skipna)
        # through bytes, as between processes
        data = pickle.loads(pickle.dumps(acc.export_states()))
        assert len(data) == acc.state_bytes * int(np.prod(acc.shape))
        merged.merge_states(data, acc.shape, first, stride)
        # the piece's states one level coarser, merged into the coarser level
        phase = [c % f for c, f in zip(first, factor, strict=True)]
        up = acc.coarsened(factor, phase=phase)
        offset = [c // f for c, f in zip(first, factor, strict=True)]
        coarse.merge_states(up.export_states(), up.shape, offset, coarse_stride)
    for acc, s in ((merged, stride), (coarse, coarse_stride)):
        want = reference(a, s, method, fill, skipna, strict=True)
        assert_matches(acc.result([0] * a.ndim, want.shape), want)


def test_merging_places_a_block_at_its_offset_and_clips_it():
    a = np.arange(16, dtype="float32").reshape(4, 4)
    part = Accumulator((2, 2), "float32", "sum")
    part.fold(a[:2, :2], (0, 0), (1, 1))
    acc = Accumulator((3, 3), "float32", "sum")
    # offset (-1, 2): only the part's cell (1, 0) lands, on cell (0, 2)
    acc.merge_states(part.export_states(), (2, 2), (-1, 2), (1, 1))
    np.testing.assert_array_equal(acc.result(), [[0, 0, 4], [0, 0, 0], [0, 0, 0]])


def test_state_errors():
    acc = Accumulator((2, 2), "float32", "mean")
    with pytest.raises(ValueError, match="no stride to coarsen"):
        acc.coarsened((2, 2))
    with pytest.raises(ValueError, match=r"5 bytes of states for shape \[1, 1\]: expected 12"):
        acc.merge_states(b"\0" * 5, (1, 1), (0, 0), (2, 2))
    acc.fold(np.zeros((4, 4), "float32"), (0, 0), (2, 2))
    with pytest.raises(ValueError, match="differs from the stride"):
        acc.merge_states(acc.export_states(), (2, 2), (0, 0), (4, 4))
    with pytest.raises(ValueError, match="phase"):
        acc.coarsened((2, 2), phase=(2, 0))
    mode = Accumulator((2, 2), "int16", "mode")
    assert mode.state_bytes == 0
    with pytest.raises(ValueError, match="mode partial states cannot be exported"):
        mode.export_states()
