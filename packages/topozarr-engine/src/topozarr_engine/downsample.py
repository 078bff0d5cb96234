"""downsample_level: block-reduce one stored level into the next, region by region (a
:class:`~topozarr_engine.region_writer.RegionWriter` that reads one level and writes the next)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from topozarr_engine import kernel
from topozarr_engine.blocks import array_block_shape
from topozarr_engine.region import Region, coarsened_shape, iter_grid
from topozarr_engine.region_writer import (
    Piece,
    RegionWriter,
    Stage,
    WriteHooks,
    each_task,
)
from topozarr_engine.specs import PyramidSpec
from topozarr_engine.storage.sinks import shard_sink
from topozarr_engine.timer import RegionTimer

__all__ = ["DownsampleWriter", "downsample_level"]


def downsample_level(  # noqa: PLR0913  (the documented API: each option is a keyword of its own)
    src: Any,
    dst: Any,
    *,
    stride: tuple[int, ...],
    method: str,
    fill_value: float | int | None = None,
    skipna: bool = True,
    max_workers: int | None = None,
    executor: ThreadPoolExecutor | None = None,
    on_region: Callable[[], None] | None = None,
    timer: RegionTimer | None = None,
    skip_empty: bool = True,
    write_region: Callable[[Region, np.ndarray], None] | None = None,
) -> list[Future[None]]:
    """Block-reduce ``src`` into ``dst`` by an integer ``stride`` per axis.

    Streams shard-sized output regions (``dst``'s shards, or chunks when unsharded) through
    ``topozarr_core.block_reduce``: each region reads the ``src`` windows under it and is stored
    as whole shards of ``dst`` (encoded by the kernel, put in ``dst``'s store). Matches
    ``xarray.coarsen(boundary="trim")`` shape and skipna semantics. Arrays are limited to
    ``kernel.MAX_NDIM`` dimensions.

    Parameters
    ----------
    src
        Source array (zarr or numpy), indexable by a tuple of slices.
    dst
        Destination ``zarr.Array`` of shape ``coarsened_shape(src.shape, stride)``.
    stride
        Reduction factor per axis (1 on non-spatial axes).
    method
        One of ``kernel.METHODS``.
    fill_value
        Value marking missing cells of an integer ``src`` (NaN always counts as missing).
    skipna
        Skip missing cells (else a window with any missing cell is missing).
    max_workers, executor, on_region, timer, skip_empty, write_region
        As for :func:`topozarr_engine.copy_array` (``timer`` also gets reduce seconds).

    Returns
    -------
    list of Future
        One future per output region (all done unless ``executor`` was given).

    Raises
    ------
    ValueError
        Bad stride, method or destination shape (before any I/O).
    RegionError
        Wrapping the first worker failure.
    """
    stride = tuple(int(s) for s in stride)
    spec = PyramidSpec(
        [(1,) * len(stride), stride],
        method,
        fill_value=fill_value,
        skipna=skipna,
        max_workers=max_workers,
        skip_empty=skip_empty,
    )
    # Reads count for level 0, the reduction and the writes for level 1: one timer for both.
    hooks = WriteHooks(
        on_tile=each_task(on_region), timers=[timer, timer], sink=shard_sink(write_region)
    )
    return DownsampleWriter(src, dst, spec, hooks).run(executor)


def _check(
    src_shape: tuple[int, ...], dst_shape: tuple[int, ...], stride: tuple[int, ...], method: str
) -> None:
    if len(src_shape) > kernel.MAX_NDIM:
        raise ValueError(
            f"arrays are limited to {kernel.MAX_NDIM} dimensions, got {len(src_shape)}"
        )
    if method not in kernel.METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {sorted(kernel.METHODS)}")
    expected = coarsened_shape(src_shape, stride)
    if dst_shape != expected:
        raise ValueError(
            f"destination shape {dst_shape} does not match source shape {src_shape} "
            f"reduced by stride {stride} (expected {expected})"
        )


class DownsampleWriter(RegionWriter):
    """``downsample_level`` as a writer: one reduced level from a stored one, in regions of
    whole destination shards (level 0, the source, is read and not written).

    ``spec.strides`` is ``[ones, stride]``; each task reads the source windows under one
    destination shard and reduces them with ``kernel.block_reduce``.
    """

    names_levels = False  # one array: a failure names its region, not a level

    def __init__(self, src: Any, dst: Any, spec: PyramidSpec, hooks: WriteHooks) -> None:
        """Check the stride, method and shapes (before any I/O) and cut ``dst`` into shards."""
        super().__init__(spec, hooks)
        self.spec: PyramidSpec = spec
        self.src, self.dst = src, dst
        self.src_shape = tuple(int(n) for n in src.shape)
        self.stride = tuple(int(s) for s in spec.strides[1])
        _check(self.src_shape, tuple(int(n) for n in dst.shape), self.stride, spec.method)
        self.dtype = np.dtype(dst.dtype)
        self.itemsize = self.dtype.itemsize
        self.regions = [r for _, r in iter_grid(tuple(dst.shape), array_block_shape(dst))]

    def plan(self) -> list[Region]:
        """Every shard of the destination, in grid order."""
        return self.regions

    def task_region(self, key: Region) -> Region:
        """The destination region (level-1 coordinates)."""
        return key

    def task_bytes(self) -> int:
        """The source bytes under the largest destination region."""
        largest = max((r.size for r in self.regions), default=0)
        return largest * math.prod(self.stride) * self.itemsize

    def work(self, key: Region, region: Region, stage: Stage) -> None:
        """Read the source windows under ``region``, reduce them, store the result."""
        spec = self.spec
        block = self.read(self.src, region.scaled(self.stride, self.src_shape), stage)
        stage.at(1, "reduce")
        t0 = time.perf_counter()
        out = kernel.block_reduce(
            block, self.stride, spec.method, fill_value=spec.fill_value, skipna=spec.skipna
        )
        out = np.asarray(out).astype(self.dtype, copy=False)
        t = self.timer(1)
        if t is not None:
            t.add("reduce", time.perf_counter() - t0)
        if out.shape != region.shape:
            raise AssertionError(f"kernel returned shape {out.shape}, expected {region.shape}")
        stage.at(1, "write")
        self.write(self.dst, Piece(1, region, out, self.dst.fill_value))
