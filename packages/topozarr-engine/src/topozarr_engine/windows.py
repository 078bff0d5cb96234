"""Windows: the part of a store array over one level-0 block, as a writer's destination.

A cluster's block task (``topozarr_plan.cluster_tasks``) runs the single-pass writer over one
block of the source: its destinations are windows of the store's level arrays, offset by the
block's origin at each level. The writer sees a window as an array of the window's shape
(region ``(0, 0)`` is the window's first cell); :class:`WindowSink` shifts what it stores by
the window's offset.

Blocks are aligned to the shards of every level they write, so a window covers whole shards
(clipped only at the array's edge) and its shard grid is the array's, shifted by
:attr:`ArrayWindow.shard_offset`. Shard assembly (``shard_assembly.chunked_shards``) then
builds a window's shards chunk by chunk and streams them, as for a whole array, through a
:class:`ShiftedBuilder` that names every shard by its index in the array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from topozarr_engine.region import Region, coarsened_shape

__all__ = ["ArrayWindow", "ShiftedBuilder", "WindowSink"]


class ArrayWindow:
    """The cells of ``array`` under level-0 ``block`` at ``stride`` (a destination).

    ``store=False``: the level is computed (to reach deeper levels the same way) but its
    regions are not stored.
    """

    def __init__(
        self, array: Any, block: Region, stride: Sequence[int], *, store: bool = True
    ) -> None:
        self.array = array
        self.store = store
        self.offset = tuple(a // s for a, s in zip(block.start, stride, strict=True))
        self.shape = coarsened_shape(block.shape, stride)
        self.dtype = array.dtype
        self.fill_value = array.fill_value
        self.shards = array.shards
        self.chunks = array.chunks

    def shifted(self, region: Region) -> Region:
        """``region`` of the window as a region of the whole array."""
        return Region.from_bounds(
            [a + o for a, o in zip(region.start, self.offset, strict=True)],
            [b + o for b, o in zip(region.stop, self.offset, strict=True)],
        )

    @property
    def shard_offset(self) -> tuple[int, ...] | None:
        """The array's index of the window's first shard, or ``None`` when the window does
        not start on a shard boundary (its shards are then not the array's)."""
        shard = self.shards or self.chunks
        if any(o % s for o, s in zip(self.offset, shard, strict=True)):
            return None
        return tuple(o // s for o, s in zip(self.offset, shard, strict=True))


class WindowSink:
    """A sink whose destinations are :class:`ArrayWindow` s: stores each region through
    ``sink`` (the zarr or the native sink) at its place in the whole array."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def write_region(self, dst: ArrayWindow, region: Region, block: np.ndarray) -> None:
        if not dst.store:
            return  # a level computed only to reach the deeper ones the same way
        self.sink.write_region(dst.array, dst.shifted(region), block)

    def flush(self) -> None:
        self.sink.flush()


class ShiftedBuilder:
    """A ``topozarr_core.ShardBuilder`` addressed by a window's shard indices: each index is
    shifted by ``offset`` (the window's :attr:`ArrayWindow.shard_offset`) on its way in."""

    def __init__(self, builder: Any, offset: Sequence[int]) -> None:
        self.inner = builder
        self.offset = tuple(offset)
        self.chunk_shape = builder.chunk_shape
        self.shard_shape = builder.shard_shape

    def _at(self, shard: Sequence[int]) -> list[int]:
        return [int(i) + o for i, o in zip(shard, self.offset, strict=True)]

    def key(self, shard: Sequence[int]) -> str:
        return str(self.inner.key(self._at(shard)))

    def encode_chunk(self, raw: np.ndarray) -> Any:
        return self.inner.encode_chunk(raw)

    def append_chunk(self, raw: np.ndarray, file: Any) -> Any:
        return self.inner.append_chunk(raw, file)

    def append_chunks(self, block: np.ndarray, origins: list[list[int]], file: Any) -> Any:
        return self.inner.append_chunks(block, origins, file)

    def put_chunk(self, shard: Sequence[int], position: Sequence[int], raw: np.ndarray) -> None:
        self.inner.put_chunk(self._at(shard), list(position), raw)

    def finish(self, shard: Sequence[int]) -> Any:
        return self.inner.finish(self._at(shard))

    def finish_to(self, shard: Sequence[int], native: Any, group: Any, **kwargs: Any) -> Any:
        return self.inner.finish_to(self._at(shard), native, group, **kwargs)
