"""Where the single-pass writer cuts level 0 into tiles, and which level cells and shards a
tile touches."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from topozarr_engine.region import Region, grid_shape, morton_order, region_block

if TYPE_CHECKING:
    from topozarr_engine.specs import PyramidSpec

__all__ = [
    "SPLIT_TILE_BYTES",
    "TILE_PLAN_VERSION",
    "PyramidLayout",
    "level_cells",
    "plan_tiles",
    "shard_region",
    "shards_of",
    "split_tile",
]

#: Version of the rules that cut level 0 into tiles. A write journal records finished tiles by
#: grid index, so a journal of another tile grid must never be resumed (it would skip tiles):
#: the plan's fingerprint includes this number. Bump it whenever the tile grid changes.
#: 2: tiles follow level 0's inner chunks when its shards are assembled chunk by chunk.
TILE_PLAN_VERSION = 2

#: Tiles smaller than this are widened towards level 0's shards when its shards span tiles:
#: small tiles hold less memory, but each tile costs a kernel call and Python bookkeeping.
SPLIT_TILE_BYTES = 4 * 2**20


@dataclass
class PyramidLayout:
    """How the single-pass writer cuts level 0 and which levels it accumulates.

    Attributes
    ----------
    tile
        Tile (level-0 region) shape.
    inner
        Levels computed inside each tile by ``pyramid_tile``.
    deep
        Levels accumulated across tiles.
    order
        Tile grid indices in visiting (Z-) order.
    """

    tile: tuple[int, ...]
    inner: list[int]
    deep: list[int]
    order: list[tuple[int, ...]] = field(repr=False)

    def tile_region(self, index: Sequence[int], shape: Sequence[int]) -> Region:
        """Level-0 region of the tile at grid ``index``."""
        start = [i * t for i, t in zip(index, self.tile, strict=True)]
        stop = [min(a + t, n) for a, t, n in zip(start, self.tile, shape, strict=True)]
        return Region.from_bounds(start, stop)


def plan_tiles(
    shape: Sequence[int],
    itemsize: int,
    shard: Sequence[int],
    spec: PyramidSpec,
) -> PyramidLayout:
    """Choose the tile shape and split the levels into inner and deep ones.

    Parameters
    ----------
    shape, itemsize
        Level-0 shape and bytes per element.
    shard
        Level-0 shard (or chunk) shape: tiles are multiples of it.
    spec
        Its strides, source chunks and tile budget (``max_region_bytes``) decide.
    """
    shape = tuple(int(n) for n in shape)
    strides = [tuple(int(s) for s in st) for st in spec.strides]
    source_chunks, max_region_bytes = spec.source_chunks, spec.max_region_bytes
    tile = region_block(
        shape, itemsize, shard, widen_to=source_chunks, max_region_bytes=max_region_bytes
    )
    # Widen to multiples of the strides, coarsest-first would overshoot the budget at once,
    # so go finest-first and stop at the first level that does not fit.
    for stride in strides[1:]:
        wider = region_block(
            shape, itemsize, tile, widen_to=stride, max_region_bytes=max_region_bytes
        )
        if all(w % s == 0 or w >= n for w, s, n in zip(wider, stride, shape, strict=True)):
            tile = wider
        else:
            break
    inner: list[int] = []
    deep: list[int] = []
    for level, stride in enumerate(strides):
        if level == 0:
            continue
        # A tile covering a whole axis starts at 0 there, so any stride fits it.
        fits = all(
            (t % s == 0 or t >= n) and n >= s for t, s, n in zip(tile, stride, shape, strict=True)
        )
        # Inner levels must be a prefix (pyramid_tile needs each stride to divide the next).
        (inner if fits and len(deep) == 0 else deep).append(level)
    spatial = [a for a in range(len(shape)) if any(s[a] > 1 for s in strides)]
    order = morton_order(
        itertools.product(*(range(g) for g in grid_shape(shape, tile))), axes=spatial or None
    )
    return PyramidLayout(tile=tile, inner=inner, deep=deep, order=order)


def split_tile(
    shape: tuple[int, ...],
    itemsize: int,
    chunk: Sequence[int],
    shard: tuple[int, ...],
    spec: PyramidSpec,
) -> tuple[int, ...]:
    """The smallest tile when level 0's shards may span tiles: whole inner chunks widened to
    whole source chunks (within ``spec.max_region_bytes``, so each is decoded once), then
    towards whole shards while the tile stays under :data:`SPLIT_TILE_BYTES`."""
    tile = region_block(
        shape,
        itemsize,
        chunk,
        widen_to=spec.source_chunks,
        max_region_bytes=spec.max_region_bytes,
    )
    budget = max(
        SPLIT_TILE_BYTES, math.prod(min(t, n) for t, n in zip(tile, shape, strict=True)) * itemsize
    )
    return region_block(shape, itemsize, tile, widen_to=shard, max_region_bytes=budget)


def level_cells(region: Region, stride: Sequence[int], level_shape: Sequence[int]) -> Region:
    """Level cells whose windows intersect a level-0 region (clipped to the level shape)."""
    start = [
        min(a // int(s), int(m)) for a, s, m in zip(region.start, stride, level_shape, strict=True)
    ]
    stop = [
        max(lo, min(-(-b // int(s)), int(m)))
        for lo, b, s, m in zip(start, region.stop, stride, level_shape, strict=True)
    ]
    # Plain ints, start <= stop: no per-slice validation (this runs for every tile and level).
    return Region._checked(start, stop)


def shards_of(cells: Region, shard: Sequence[int]) -> list[tuple[int, ...]]:
    if cells.is_empty():
        return []
    ranges = [
        range(a // s, -(-b // s)) for a, b, s in zip(cells.start, cells.stop, shard, strict=True)
    ]
    return list(itertools.product(*ranges))


def shard_region(index: Sequence[int], shard: Sequence[int], shape: Sequence[int]) -> Region:
    start = [i * s for i, s in zip(index, shard, strict=True)]
    return Region.from_bounds(
        start, [min(a + s, n) for a, s, n in zip(start, shard, shape, strict=True)]
    )
