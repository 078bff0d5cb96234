"""The worker side of ``write(client=...)``: one block task, as it runs on a dask worker.

A task gets a :class:`BlockJob` (small, picklable: the store as a
:class:`~topozarr_engine.storage.StorageTarget` that reopens itself, the source as
its lazy ``xarray.Variable``) and one level-0 block. It opens the store itself, runs the
engine's single-pass writer over the block (through zarr-python, or the kernel's native
writer for ``io="rust"``), waits until every shard it wrote is stored, and only then writes
its record into the write journal, so a record never claims a shard that is not there.

A task is idempotent: it rewrites whole shards that no other task touches, so a task that
dask runs again (its worker died, or a resume) gives the same store.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from topozarr_engine import PyramidSpec, Region, RegionTimer, WriteHooks, write_pyramid_arrays
from topozarr_engine.region import coarsened_shape
from topozarr_engine.storage import StorageTarget
from topozarr_engine.storage.sinks import ShardSink, ZarrShardSink

from topozarr_plan.source_reader import native_array, native_reader

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["BlockJob", "block_record", "load_job", "run_block"]


class _Window:
    """The part of a store array over one block, as the engine sees a destination."""

    def __init__(
        self, array: zarr.Array, block: Region, stride: Sequence[int], *, store: bool = True
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
        """``region`` of the window as a region of the whole store array."""
        return Region.from_bounds(
            [a + o for a, o in zip(region.start, self.offset, strict=True)],
            [b + o for b, o in zip(region.stop, self.offset, strict=True)],
        )


class _WindowSink:
    """A block task's sink: its destinations are windows of the store's arrays (offset by the
    block origin), stored through the zarr or the native sink."""

    def __init__(self, sink: ShardSink) -> None:
        self.sink = sink

    def write_region(self, dst: _Window, region: Region, block: np.ndarray) -> None:
        if not dst.store:
            return  # a level computed only to reach the deeper ones the same way
        self.sink.write_region(dst.array, dst.shifted(region), block)

    def flush(self) -> None:
        self.sink.flush()


class _BlockSource:
    """Level-0 values of one block, read lazily from the source or the stored level 0."""

    def __init__(self, values: Any, block: Region) -> None:
        self.values = values
        self.block = block
        self.shape = block.shape
        self.dtype = np.dtype(values.dtype)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        sl = tuple(
            slice(s.start + a, s.stop + a) for s, a in zip(key, self.block.start, strict=True)
        )
        part = self.values[sl]
        if getattr(part, "chunks", None) is not None and hasattr(part, "compute"):
            # A dask graph runs here, in this task: never through the cluster's scheduler.
            part = part.compute(scheduler="synchronous")
        return np.asarray(getattr(part, "values", part))


@dataclass(frozen=True)
class BlockJob:
    """One variable's stage, as it travels to the workers (small and picklable).

    ``levels`` are the levels the engine computes (with their ``strides``), ``written`` those
    it stores. Stage 2 computes the stage-1 levels again without storing them: the kernel
    reduces a tile level by level, so a deep level's float sums are added in the order a
    local write adds them only when the same chain of levels leads to it. For ``max`` and
    ``min`` (exact whatever the order) stage 2 reads the deepest stored stage-1 level
    ``base`` instead, 4**base times fewer cells; ``strides`` are then relative to it.
    ``record`` is the journal prefix of this stage's block records (``None``: no journal).
    """

    target: StorageTarget
    name: str
    source: xr.Variable
    levels: tuple[int, ...]
    written: frozenset[int]
    strides: tuple[tuple[int, ...], ...]
    method: str
    fill_value: float | int | None
    source_chunks: tuple[int, ...] | None
    level0_block: tuple[int, ...]
    max_region_bytes: int
    threads: int
    io: str = "python"
    record: str | None = None
    base: int = 0  # the stored level stage 2 reads (0, or the last stage-1 level for max/min)
    base_stride: tuple[int, ...] = ()  # its cumulative stride


def load_job(payload: bytes) -> BlockJob:
    """The job from its pickled bytes (a task of its own, so a lost worker's copy is rebuilt).

    Pickled by the client rather than passed as is: dask would take the dask-backed source
    inside it for a collection to compute first.
    """
    from distributed.protocol.pickle import loads

    job: BlockJob = loads(payload)
    return job


def block_record(job_record: str, block: Region) -> str:
    """The journal name of one finished block of a stage (its bounds: a different split of a
    resumed write never matches a record of another block)."""
    start = ".".join(str(i) for i in block.start)
    stop = ".".join(str(i) for i in block.stop)
    return f"{job_record}{start}-{stop}"


def run_block(job: BlockJob, block: Region) -> list[tuple[int, dict[str, Any]]]:
    """Write the shards of ``job.written`` inside level-0 ``block``; per-level timer counts.

    Without level 0 its reads count for the first level written, as in a local pass.
    """
    zstore = job.target.store
    arrays = {
        lv: zarr.open_array(zstore, path=f"{lv}/{job.name}", mode="r+")
        for lv in {0, job.base, *job.levels}
    }
    # Opened here, on the worker: a plain local Zarr source is read by the kernel (zarrs) when
    # that gives xarray's values exactly (source_reader.py), else through xarray.
    values: Any = native_reader(job.source) or job.source
    # Stage 2 reads a level stage 1 stored (through zarrs when the store is a local directory).
    if job.base:
        stored = arrays[job.base]
        values, block = native_array(stored) or stored, _base_region(job, arrays, block)
    elif 0 not in job.written and arrays[0].dtype == job.source.dtype:
        values = native_array(arrays[0]) or arrays[0]  # it holds the source's values
    native = job.target.native_writer() if job.io == "rust" else None
    # a None first destination: level 0 is read as the source but not written (stage 2)
    dsts: list[_Window | None] = [
        _Window(arrays[lv], block, stride, store=lv in job.written)
        for lv, stride in zip(job.levels, job.strides, strict=True)
    ]
    if job.levels[0] != 0:
        dsts.insert(0, None)
    timers = [RegionTimer() for _ in dsts]
    base = arrays[job.base]
    spec = PyramidSpec(
        strides=[
            (1,) * block.ndim,
            *(s for lv, s in zip(job.levels, job.strides, strict=True) if lv),
        ],
        method=job.method,
        fill_value=job.fill_value,
        source_chunks=base.chunks if job.base else job.source_chunks,
        level0_block=(base.shards or base.chunks) if job.base else job.level0_block,
        max_region_bytes=job.max_region_bytes,
        max_workers=max(1, min(job.threads, os.cpu_count() or 1)),
        name=job.name,
    )
    hooks = WriteHooks(timers=timers, sink=_WindowSink(native or ZarrShardSink()))
    write_pyramid_arrays(_BlockSource(values, block), dsts, spec, hooks)
    if native is not None:
        native.flush()  # every upload stored (or its error raised) before the record
    if job.record is not None:
        _record(zstore, block_record(job.record, block))
    out = []
    for lv, timer in zip([job.base, *(lv for lv in job.levels if lv)], timers, strict=True):
        if lv in job.written:
            out.append((lv, timer.as_dict()))
        elif lv == job.base:
            out.append((min(job.written), timer.as_dict()))
    return out


def _base_region(job: BlockJob, arrays: Mapping[int, zarr.Array], block: Region) -> Region:
    """The cells of stored level ``job.base`` over level-0 ``block`` (its edges are multiples
    of that level's stride: they are multiples of the stage's shard footprints)."""
    stride = job.base_stride
    full = arrays[job.base].shape
    return Region.from_bounds(
        [a // s for a, s in zip(block.start, stride, strict=True)],
        [min(n, -(-b // s)) for n, b, s in zip(full, block.stop, stride, strict=True)],
    )


def _record(zstore: Any, name: str) -> None:
    from topozarr_plan.journal import JOURNAL_PREFIX
    from topozarr_plan.journal_keys import keys_for

    keys_for(zstore).put(f"{JOURNAL_PREFIX}/{name}", json.dumps({"done": True}).encode())
