"""The options of the engine's writers: :class:`WriteSpec`, which every writer takes, and
:class:`PyramidSpec`, what a pyramid write computes on top of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass

from topozarr_engine.region import Region
from topozarr_engine.resources import DEFAULT_MAX_REGION_BYTES

__all__ = ["PyramidSpec", "WriteSpec"]


@dataclass(frozen=True, kw_only=True)
class WriteSpec:
    """How a writer cuts and runs its work (every option is keyword-only).

    Attributes
    ----------
    source_chunks
        Chunk shape of the values; regions (tiles) cover whole source chunks when the budget
        allows.
    max_region_bytes
        Soft budget of one region or tile (never smaller than one destination shard).
    max_workers
        Threads running the writer's tasks: the size of its own pool (when no executor is
        given), else the given executor's; default from the CPUs and the memory.
    skip_empty
        Do not write regions whose values are all fill (destinations must be fresh arrays).
    name
        Variable name, for error messages.
    """

    source_chunks: Sequence[int] | None = None
    max_region_bytes: int = DEFAULT_MAX_REGION_BYTES
    max_workers: int | None = None
    skip_empty: bool = True
    name: str | None = None


@dataclass(frozen=True)
class PyramidSpec(WriteSpec):
    """What a pyramid write computes (and, as a :class:`WriteSpec`, how it runs).

    Attributes
    ----------
    strides
        Cumulative stride per level and axis; ``strides[0]`` is all ones, each divides the next
        (1 on non-spatial axes such as time or band).
    method, fill_value, skipna
        As for ``kernel.block_reduce``; ``fill_value`` marks missing integer cells.
    level0_block
        Smallest tile when level 0 is not written (tiles are multiples of it), e.g. the
        level-0 shard the pyramid would have. Default: ``source_chunks``, else the first
        written level's shard scaled to level 0. Ignored when level 0 is written (tiles are
        then multiples of its shards).
    within
        Write only the tiles and coarse shards that meet this level-0 region, e.g. the new
        time steps of an append; coarse shards outside it are left as they are. A tile that
        meets it is written whole, and so is a coarse shard that meets it, so the values
        must hold the right values around it too (align ``within`` to every level's shards
        to keep that margin empty).
    split_tiles
        Let the kernel split each tile's reduction over its own threads (rayon). ``None``:
        only when the writer runs fewer tile threads than the CPUs (with a thread per core,
        splitting again oversubscribes them). A cluster's block task, one of several on the
        machine's cores, passes ``False``.
    source_chunks, max_region_bytes, max_workers, skip_empty, name
        As for :class:`WriteSpec`; ``max_region_bytes`` is the budget of one tile.
    """

    strides: Sequence[Sequence[int]]
    method: str
    _: KW_ONLY
    fill_value: float | int | None = None
    skipna: bool = True
    level0_block: Sequence[int] | None = None
    within: Region | None = None
    split_tiles: bool | None = None
