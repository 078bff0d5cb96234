"""copy_array: stream a region-indexable array into a zarr array, region by region."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from topozarr_engine.blocks import array_block_shape, materialize
from topozarr_engine.errors import RegionError
from topozarr_engine.pool import run_tasks
from topozarr_engine.region import Region, iter_grid, region_block
from topozarr_engine.resources import DEFAULT_MAX_REGION_BYTES
from topozarr_engine.sink import RegionSink
from topozarr_engine.storage.sinks import shard_sink
from topozarr_engine.timer import RegionTimer

__all__ = ["copy_array"]


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
        Called with ``(region, block)`` after each region is read, before it is written (the
        single-pass pyramid writer uses this to reduce the block into coarser levels).
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
    shape = tuple(int(n) for n in dst.shape)
    vshape = tuple(int(n) for n in getattr(values, "shape", shape))
    if vshape != shape:
        raise ValueError(f"values shape {vshape} does not match destination shape {shape}")
    itemsize = np.dtype(dst.dtype).itemsize
    block = region_block(
        shape,
        itemsize,
        array_block_shape(dst),
        widen_to=source_chunks,
        max_region_bytes=max_region_bytes,
    )
    sink = RegionSink(shard_sink(write_region), dst, dst.fill_value, timer, skip_empty)
    task = _CopyTask(values, sink, on_block, on_region)

    regions = [region for _, region in iter_grid(shape, block)]
    nbytes = max((r.size for r in regions), default=0) * itemsize
    return run_tasks(
        [functools.partial(task.run, r) for r in regions],
        executor=executor,
        max_workers=max_workers,
        region_bytes=nbytes,
    )


@dataclass(frozen=True)
class _CopyTask:
    """Reads one region of the values and puts it in the sink."""

    values: Any
    sink: RegionSink
    on_block: Callable[[Region, np.ndarray], None] | None
    on_region: Callable[[], None] | None

    def run(self, region: Region) -> None:
        stage = "read"
        timer = self.sink.timer
        try:
            t0 = time.perf_counter()
            data = materialize(self.values[region.slices])
            if timer is not None:
                timer.add("read", time.perf_counter() - t0)
                timer.count(bytes_read=data.nbytes)
            if self.on_block is not None:
                stage = "on_block"
                self.on_block(region, data)
            stage = "write"
            self.sink.put(region, data)
        except RegionError:
            raise
        except Exception as exc:
            raise RegionError(region, exc, stage=stage) from exc
        if self.on_region is not None:
            self.on_region()
