"""copy_array: stream a region-indexable array into a zarr array, region by region (a
:class:`~topozarr_engine.region_writer.RegionWriter` that writes level 0 only)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from topozarr_engine.blocks import array_block_shape
from topozarr_engine.region import Region, iter_grid, region_block
from topozarr_engine.region_writer import (
    Piece,
    RegionWriter,
    Stage,
    WriteHooks,
    each_task,
)
from topozarr_engine.resources import DEFAULT_MAX_REGION_BYTES
from topozarr_engine.specs import WriteSpec
from topozarr_engine.storage.sinks import shard_sink
from topozarr_engine.timer import RegionTimer

__all__ = ["CopyWriter", "copy_array"]


def copy_array(  # noqa: PLR0913  (the documented API: each option is a keyword of its own)
    values: Any,
    dst: Any,
    *,
    source_chunks: tuple[int, ...] | None = None,
    max_region_bytes: int = DEFAULT_MAX_REGION_BYTES,
    max_workers: int | None = None,
    executor: ThreadPoolExecutor | None = None,
    on_region: Callable[[], None] | None = None,
    on_block: Callable[[Region, np.ndarray], None] | None = None,
    timer: RegionTimer | None = None,
    skip_empty: bool = True,
    write_region: Callable[[Region, np.ndarray], None] | None = None,
) -> list[Future[None]]:
    """Write a region-indexable array into ``dst`` region by region.

    ``values`` may be a numpy array or any lazy array supporting tuple-of-slices indexing
    (e.g. an ``xr.Variable`` backed by zarr/icechunk); each region is materialized
    individually, keeping peak memory at ``max_workers x region size``. Regions are aligned to
    ``dst``'s shards (its chunks when unsharded) so no two workers ever write the same shard.

    For in-memory values (``np.ndarray``) the contiguity copy is skipped: slicing returns a
    (possibly strided) view, and both the reduce kernel and zarr's setitem accept strided
    input, so copying would only waste memory.

    Parameters
    ----------
    values
        Source with ``values.shape == dst.shape``, indexable by a tuple of slices.
    dst
        Destination ``zarr.Array``.
    source_chunks
        Chunk shape of ``values``. Regions are widened to a common multiple of it and the
        destination shards when that fits ``max_region_bytes``, so each source chunk is read
        (and decoded) once.
    max_region_bytes
        Soft memory budget of one region; a region is never smaller than one shard.
    max_workers
        Threads of the own pool when ``executor`` is ``None``; default from CPUs and memory.
    executor
        Shared pool. When given, the tasks are submitted and their futures returned at once
        (the caller waits and handles errors); otherwise this call waits, stops the pool on the
        first error and raises it.
    on_region
        Called after every region (written or skipped), e.g. to advance a progress bar.
    on_block
        Called with ``(region, block)`` after each region is read, before it is written (e.g.
        to gather statistics of the values while copying them).
    timer
        Accumulates read / write seconds and region counts.
    skip_empty
        Do not write regions whose values are all ``dst.fill_value`` (NaN counts as equal to a
        NaN fill). Assumes ``dst`` holds nothing there yet (a fresh array): pass ``False`` when
        overwriting existing data.
    write_region
        ``write_region(region, block)`` replaces ``dst[region] = block``.

    Returns
    -------
    list of Future
        One future per region, in submission order (all done unless ``executor`` was given).

    Raises
    ------
    RegionError
        Wrapping the first worker failure (the original is its ``__cause__``).
    """
    spec = WriteSpec(
        source_chunks=source_chunks,
        max_region_bytes=max_region_bytes,
        max_workers=max_workers,
        skip_empty=skip_empty,
    )
    hooks = WriteHooks(
        on_tile=each_task(on_region),
        on_read=on_block,
        timers=[timer],
        sink=shard_sink(write_region),
    )
    return CopyWriter(values, dst, spec, hooks).run(executor)


class CopyWriter(RegionWriter):
    """``copy_array`` as a writer: level 0 only, in regions of whole destination shards,
    widened to whole source chunks within the budget, in grid order."""

    names_levels = False  # one array: a failure names its region, not a level
    read_hook_stage = "on_block"

    def __init__(self, values: Any, dst: Any, spec: WriteSpec, hooks: WriteHooks) -> None:
        """Check the shapes and cut ``dst`` into regions (nothing is read yet)."""
        super().__init__(spec, hooks)
        shape = tuple(int(n) for n in dst.shape)
        vshape = tuple(int(n) for n in getattr(values, "shape", shape))
        if vshape != shape:
            raise ValueError(f"values shape {vshape} does not match destination shape {shape}")
        self.values, self.dst = values, dst
        self.itemsize = np.dtype(dst.dtype).itemsize
        block = region_block(
            shape,
            self.itemsize,
            array_block_shape(dst),
            widen_to=spec.source_chunks,
            max_region_bytes=spec.max_region_bytes,
        )
        self.regions = [region for _, region in iter_grid(shape, block)]

    def plan(self) -> list[Region]:
        """Every region of the destination, in grid order."""
        return self.regions

    def task_region(self, key: Region) -> Region:
        """The region itself."""
        return key

    def task_bytes(self) -> int:
        """The largest region's bytes."""
        return max((r.size for r in self.regions), default=0) * self.itemsize

    def work(self, key: Region, region: Region, stage: Stage) -> None:
        """Read the region and store it."""
        block = self.read(self.values, region, stage)
        stage.at(0, "write")
        self.write(self.dst, Piece(0, region, block, self.dst.fill_value))
