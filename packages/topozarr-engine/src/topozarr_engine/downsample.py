"""downsample_level: block-reduce one stored level into the next, region by region."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from topozarr_engine import kernel
from topozarr_engine.blocks import array_block_shape, materialize
from topozarr_engine.errors import RegionError
from topozarr_engine.pool import run_tasks
from topozarr_engine.region import Region, coarsened_shape, iter_grid
from topozarr_engine.sink import RegionSink
from topozarr_engine.storage.sinks import shard_sink
from topozarr_engine.timer import RegionTimer

__all__ = ["downsample_level"]


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
    ``topozarr_core.block_reduce``, reading ``src`` and writing ``dst`` via zarr-python. Matches
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
    src_shape = tuple(int(n) for n in src.shape)
    stride = tuple(int(s) for s in stride)
    _check(src_shape, tuple(int(n) for n in dst.shape), stride, method)
    dtype = np.dtype(dst.dtype)
    sink = RegionSink(shard_sink(write_region), dst, dst.fill_value, timer, skip_empty)
    task = _ReduceTask(
        src, src_shape, stride, Reduction(method, fill_value, skipna), dtype, sink, on_region
    )
    regions = [region for _, region in iter_grid(tuple(dst.shape), array_block_shape(dst))]
    per_region = max((r.size for r in regions), default=0) * int(np.prod(stride)) * dtype.itemsize
    return run_tasks(
        [functools.partial(task.run, r) for r in regions],
        executor=executor,
        max_workers=max_workers,
        region_bytes=per_region,
    )


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


@dataclass(frozen=True)
class Reduction:
    """How ``downsample_level`` reduces (as for ``kernel.block_reduce``)."""

    method: str
    fill_value: float | int | None
    skipna: bool


@dataclass(frozen=True)
class _ReduceTask:
    """Reads the source windows of one output region, reduces them, puts them in the sink."""

    src: Any
    src_shape: tuple[int, ...]
    stride: tuple[int, ...]
    reduction: Reduction
    dtype: np.dtype[Any]
    sink: RegionSink
    on_region: Callable[[], None] | None

    def run(self, region: Region) -> None:
        stage = "read"
        timer, r = self.sink.timer, self.reduction
        try:
            window = region.scaled(self.stride, self.src_shape)
            t0 = time.perf_counter()
            block = materialize(self.src[window.slices])
            t1 = time.perf_counter()
            stage = "reduce"
            out = kernel.block_reduce(
                block, self.stride, r.method, fill_value=r.fill_value, skipna=r.skipna
            )
            out = np.asarray(out).astype(self.dtype, copy=False)
            if timer is not None:
                timer.add("read", t1 - t0)
                timer.add("reduce", time.perf_counter() - t1)
                timer.count(bytes_read=block.nbytes)
            if out.shape != region.shape:
                raise AssertionError(f"kernel returned shape {out.shape}, expected {region.shape}")
            stage = "write"
            self.sink.put(region, out)
        except RegionError:
            raise
        except Exception as exc:
            raise RegionError(region, exc, stage=stage) from exc
        if self.on_region is not None:
            self.on_region()
