"""Chunk and shard shapes for every spatial variable of every level.

Rules (documented in the package README):

* **Spatial chunk edges** are powers of two whose product is the largest power of two of
  elements within ``target_chunk_bytes``; the exponent is split with x getting the larger
  half (float32 at 512 KiB -> 256 rows x 512 columns), so a chunk is wider than tall and rows
  stay contiguous. The same edges at every level make each coarse chunk cover exactly 2x2
  finer chunks (per factor 2), so chunk and shard grids nest across levels.
* **Clipping**: an edge longer than the level is clipped to the level size and the unused
  budget goes to the other spatial axis (still a power of two), so thin levels keep
  near-target chunks.
* **Non-spatial dims** (time, band, ...) always get chunk 1: web readers fetch one 2-D slice.
* **Shards** hold ``chunks_per_shard`` chunks per spatial axis, clipped to the number of
  chunks the level has along that axis (so a shard is always a whole number of chunks; a level
  smaller than one chunk gets chunk = shard = level size). The bytes such a shard leaves
  unused out of ``chunks_per_shard**2 * target_chunk_bytes`` widen it along the non-spatial
  dims (innermost first, a power of two; the chunk stays 1), never past 128 inner chunks so
  that the shard index stays about 2 KiB (16 bytes per inner chunk + 4). That length does not
  depend on the dim's current length (a shard may be longer than the array): a store that is
  later appended to along time is laid out exactly like one written at once.
  ``chunks_per_shard=None`` disables sharding (no "shards" key).
* **Variables over one spatial dim** (a profile along x, or ``(time, x)``) are laid out as if
  the missing spatial dim had length 1: the chunk takes the whole element budget along the
  dim they have.
* **Level 0 follows the source's chunk grid** (dask chunks, else the zarr encoding's shards /
  chunks): per spatial axis, when the source chunk ``s`` and our shard ``S`` do not nest, the
  shard becomes a multiple of ``s`` (``s`` a multiple of the chunk) or a divisor of ``s``, and
  the chunk edge is lowered to a divisor of ``s`` (no less than half the target edge) when it
  does not divide ``s``, or set to ``s`` itself when ``s`` is at most twice the target edge.
  Each source chunk then falls in whole shards, so the writer reads it once. Grids that
  cannot be matched this way (e.g. large prime source chunk edges) are left alone; the writer
  still widens its read regions to whole source chunks within its memory budget.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from topozarr_plan.types import MAX_WIDENED_CHUNKS_PER_SHARD

__all__ = ["base_chunk_edges", "source_chunk_sizes", "variable_encoding"]


def _pow2_floor(n: int) -> int:
    return 1 << (max(1, n).bit_length() - 1)


def base_chunk_edges(itemsize: int, target_chunk_bytes: int) -> tuple[int, int]:
    """Unclipped ``(y, x)`` chunk edges: powers of two, ``x >= y``, within the byte target."""
    elements = max(1, target_chunk_bytes // max(1, itemsize))
    p = _pow2_floor(elements).bit_length() - 1
    ey = p // 2
    return 1 << ey, 1 << (p - ey)


def _largest_divisor_at_most(n: int, limit: int) -> int:
    best = 1
    for d in range(1, math.isqrt(n) + 1):
        if n % d == 0:
            for cand in (d, n // d):
                if best < cand <= limit:
                    best = cand
    return best


def _snap_axis(n: int, c: int, shard: int | None, s: int | None) -> tuple[int, int | None]:
    """Align one level-0 spatial axis (size ``n``, chunk ``c``, shard) to source chunk ``s``."""
    if s is None or s <= 0 or s >= n or c >= n:
        return c, shard
    unit = shard if shard is not None else c
    if unit % s == 0 or s % unit == 0:
        return c, shard
    if s % c:
        d = _largest_divisor_at_most(s, c)
        if 2 * d >= c:
            c = d
        elif s <= 2 * c:
            c = s
        else:
            return c, shard  # incommensurate grids: leave it to the writer's region widening
    if shard is None:
        return c, None
    if s < shard:
        new = s * max(1, shard // s)
    else:
        # Largest multiple of c that divides s and stays within the shard budget.
        k = _largest_divisor_at_most(s // c, max(1, shard // c))
        new = c * k
    return c, min(new, c * math.ceil(n / c))


def source_chunk_sizes(var: Any) -> dict[Hashable, int]:
    """Regular source chunk edge per dim of an xarray variable, from dask or zarr encoding.

    For a sharded zarr source the shard is the storage object, so it wins over the inner
    chunk. Dims with irregular dask chunks are omitted (nothing to align to).
    """
    out: dict[Hashable, int] = {}
    chunks = getattr(var, "chunks", None)
    if chunks:
        for dim, sizes in zip(var.dims, chunks, strict=True):
            first = int(sizes[0])
            if all(int(c) == first for c in sizes[:-1]) and int(sizes[-1]) <= first:
                out[dim] = first
        return out
    enc = getattr(var, "encoding", {}) or {}
    for key in ("shards", "chunks"):
        value = enc.get(key)
        if value is not None and len(value) == var.ndim:
            return {dim: int(c) for dim, c in zip(var.dims, value, strict=True)}
    preferred = enc.get("preferred_chunks")
    if isinstance(preferred, Mapping):
        return {dim: int(c) for dim, c in preferred.items() if dim in var.dims}
    return out


def _spatial_chunks(ny: int, nx: int, itemsize: int, target_chunk_bytes: int) -> tuple[int, int]:
    """Chunk edges clipped to the level, the unused element budget handed to the other axis."""
    budget = max(1, target_chunk_bytes // itemsize)
    cy, cx = base_chunk_edges(itemsize, target_chunk_bytes)
    if ny < cy:
        cy = ny
        cx = max(cx, _pow2_floor(budget // ny))
    if nx < cx:
        cx = nx
        if ny > cy:
            cy = max(cy, _pow2_floor(budget // nx))
    return min(cy, ny), min(cx, nx)


def _widen_non_spatial(
    shards: dict[Hashable, int],
    dims: Sequence[Hashable],
    spatial: tuple[Hashable, Hashable],
    spare: int,
) -> None:
    """Give the ``spare`` factor a spatial shard leaves unused (of its byte budget and chunk
    count) to the non-spatial dims, innermost first.

    The widths are powers of two that never look at the dims' lengths, so appending along one
    of them keeps the layout of a store written at once.
    """
    for d in reversed(list(dims)):
        if d in spatial or spare <= 1:
            continue
        width = _pow2_floor(spare)
        shards[d] = width
        spare //= width


@dataclass(frozen=True)
class ChunkLayout:
    """What every variable's chunks and shards follow.

    Attributes
    ----------
    y_dim, x_dim
        The spatial dimensions.
    target_chunk_bytes, chunks_per_shard
        As given to ``create_pyramid``.
    """

    y_dim: Hashable
    x_dim: Hashable
    target_chunk_bytes: int
    chunks_per_shard: int | None


def variable_encoding(
    dims: Sequence[Hashable],
    shape: Sequence[int],
    dtype: np.dtype[Any],
    layout: ChunkLayout,
    source_chunks: Mapping[Hashable, int] | None = None,
) -> dict[str, tuple[int, ...]]:
    """Zarr ``{"chunks": ..., "shards": ...}`` for one variable at one level.

    Parameters
    ----------
    dims, shape
        The variable's dimension names and its shape at this level. At least one of
        the layout's ``y_dim`` / ``x_dim`` must be among ``dims``.
    dtype
        The variable's dtype at this level.
    layout
        The spatial dims and the chunk/shard targets.
    source_chunks
        Source chunk edge per dim (level 0 only), to align the grid with the source.
    """
    y_dim, x_dim = layout.y_dim, layout.x_dim
    target_chunk_bytes, chunks_per_shard = layout.target_chunk_bytes, layout.chunks_per_shard
    sizes = dict(zip(dims, (int(n) for n in shape), strict=True))
    # A variable over one spatial dim is laid out as if the other one had length 1.
    ny, nx = sizes.get(y_dim, 1), sizes.get(x_dim, 1)
    itemsize = np.dtype(dtype).itemsize
    cy, cx = _spatial_chunks(ny, nx, itemsize, target_chunk_bytes)

    sy: int | None = None
    sx: int | None = None
    if chunks_per_shard is not None:
        sy = cy * min(chunks_per_shard, math.ceil(ny / cy))
        sx = cx * min(chunks_per_shard, math.ceil(nx / cx))
    if source_chunks:
        cy, sy = _snap_axis(ny, cy, sy, source_chunks.get(y_dim))
        cx, sx = _snap_axis(nx, cx, sx, source_chunks.get(x_dim))

    spatial = (y_dim, x_dim)
    chunks = {d: 1 for d in dims}
    chunks.update({d: c for d, c in zip(spatial, (cy, cx), strict=True) if d in sizes})
    enc: dict[str, tuple[int, ...]] = {"chunks": tuple(chunks[d] for d in dims)}
    if chunks_per_shard is None:
        return enc
    assert sy is not None and sx is not None
    shards = dict(chunks)
    shards.update({d: s for d, s in zip(spatial, (sy, sx), strict=True) if d in sizes})
    budget_bytes = chunks_per_shard**2 * target_chunk_bytes
    inner = (sy // cy) * (sx // cx)
    spare = min(budget_bytes // max(1, sy * sx * itemsize), MAX_WIDENED_CHUNKS_PER_SHARD // inner)
    _widen_non_spatial(shards, dims, spatial, spare)
    enc["shards"] = tuple(shards[d] for d in dims)
    return enc
