"""The pyramid writer's per-level state (shard buffers, countdowns, accumulator) and the checks
of its destinations."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from topozarr_engine import kernel
from topozarr_engine.blocks import array_block_shape, empty_value
from topozarr_engine.region import Region, coarsened_shape
from topozarr_engine.specs import PyramidSpec
from topozarr_engine.tiles import shards_of

__all__ = [
    "LevelState",
    "check_destinations",
    "level0_shape",
    "read_back",
    "shards_outside",
]


class LevelState:
    """Shard buffers (or chunk-by-chunk shards), countdowns and (for deep levels) the
    accumulator of one level."""

    def __init__(
        self, level: int, dst: Any, stride: tuple[int, ...], spec: PyramidSpec, acc: Any
    ) -> None:
        """``acc``: the level's accumulator when it is deep (its windows span tiles)."""
        self.level = level
        self.dst = dst
        self.stride = stride
        self.shape = tuple(int(n) for n in dst.shape)
        self.shard = array_block_shape(dst)
        self.dtype = np.dtype(dst.dtype)
        self.fill = dst.fill_value
        self.empty = empty_value(spec.method, self.dtype, spec.fill_value)
        self.countdown: dict[tuple[int, ...], int] = {}
        # Shards an earlier run of the same plan stored (resume): never touched again.
        self.closed: frozenset[tuple[int, ...]] = frozenset()
        # The level cells to write (``within``); the rest of an open shard is read back.
        self.within: Region | None = None
        self.buffers: dict[tuple[int, ...], np.ndarray] = {}
        self.lock = threading.Lock()
        self.acc = acc
        # Shards held as encoded inner chunks instead of ``buffers``
        # (:class:`~topozarr_engine.shard_assembly.ChunkedShards`), when the sink allows it.
        self.chunked: Any = None


def read_back(lv: LevelState, region: Region) -> np.ndarray:
    """The stored values of a level region (a shard that reaches past ``within``)."""
    return np.array(lv.dst[region.slices], dtype=lv.dtype)


def shards_outside(lv: LevelState, cells: Region) -> frozenset[tuple[int, ...]]:
    """The level's shards that do not meet ``cells``."""
    every = shards_of(Region.from_bounds([0] * len(lv.shape), list(lv.shape)), lv.shard)
    meets = set(shards_of(cells, lv.shard))
    return frozenset(s for s in every if s not in meets)


def check_destinations(
    dsts: Sequence[Any], strides: list[tuple[int, ...]], shape0: tuple[int, ...], method: str
) -> None:
    if len(strides) != len(dsts):
        raise ValueError(f"got {len(dsts)} destination arrays but {len(strides)} strides")
    if any(s != 1 for s in strides[0]):
        raise ValueError(f"strides[0] must be all ones, got {strides[0]}")
    kernel.method_row(method)  # an unknown method: ValueError naming the valid ones
    if dsts[0] is None and len(dsts) < 2:
        raise ValueError("nothing to write: dsts[0] is None and there is no coarser level")
    for level, (st, dst) in enumerate(zip(strides, dsts, strict=True)):
        if level == 0 and dst is None:
            continue
        if dst is None:
            raise ValueError(f"dsts[{level}] is None; only dsts[0] may be None")
        if level and any(b % a for a, b in zip(strides[level - 1], st, strict=True)):
            raise ValueError(f"stride {st} of level {level} is not a multiple of the previous")
        expected = coarsened_shape(shape0, st)
        if tuple(dst.shape) != expected:
            raise ValueError(
                f"level {level} array has shape {tuple(dst.shape)}, expected {expected}"
            )


def level0_shape(values: Any, dst0: Any) -> tuple[int, ...]:
    vshape = tuple(int(n) for n in values.shape) if hasattr(values, "shape") else None
    shape0 = tuple(int(n) for n in dst0.shape) if dst0 is not None else vshape
    if shape0 is None:
        raise ValueError("values must have a shape when dsts[0] is None")
    if vshape is not None and vshape != shape0:
        raise ValueError(f"values shape {vshape} does not match level 0 shape {shape0}")
    return shape0
