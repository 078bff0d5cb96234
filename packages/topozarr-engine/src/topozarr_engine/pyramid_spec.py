"""What a single-pass pyramid write computes: :class:`PyramidSpec`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from topozarr_engine.region import Region
from topozarr_engine.resources import DEFAULT_MAX_REGION_BYTES

__all__ = ["PyramidSpec"]


@dataclass(frozen=True)
class PyramidSpec:
    """What a single-pass write computes.

    Attributes
    ----------
    strides
        Cumulative stride per level and axis; ``strides[0]`` is all ones, each divides the next
        (1 on non-spatial axes such as time or band).
    method, fill_value, skipna
        As for ``kernel.block_reduce``; ``fill_value`` marks missing integer cells.
    source_chunks
        Chunk shape of the values; tiles cover whole source chunks when the budget allows.
    level0_block
        Smallest tile when level 0 is not written (tiles are multiples of it), e.g. the
        level-0 shard the pyramid would have. Default: ``source_chunks``, else the first
        written level's shard scaled to level 0. Ignored when level 0 is written (tiles are
        then multiples of its shards).
    max_region_bytes
        Soft budget of one tile (never smaller than one level-0 shard).
    max_workers
        Size of the writer's own pool (when no executor is given).
    skip_empty
        Do not write regions whose values are all fill (destinations must be fresh arrays).
    name
        Variable name, for error messages.
    within
        Write only the tiles and coarse shards that meet this level-0 region, e.g. the new
        time steps of an append; coarse shards outside it are left as they are. A tile that
        meets it is written whole, and so is a coarse shard that meets it, so the values
        must hold the right values around it too (align ``within`` to every level's shards
        to keep that margin empty).
    """

    strides: Sequence[Sequence[int]]
    method: str
    fill_value: float | int | None = None
    skipna: bool = True
    source_chunks: Sequence[int] | None = None
    level0_block: Sequence[int] | None = None
    max_region_bytes: int = DEFAULT_MAX_REGION_BYTES
    max_workers: int | None = None
    skip_empty: bool = True
    name: str | None = None
    within: Region | None = None
