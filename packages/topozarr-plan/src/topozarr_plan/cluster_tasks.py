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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from topozarr_engine import PyramidSpec, Region, RegionTimer, WriteHooks, write_pyramid_arrays
from topozarr_engine.storage import StorageTarget
from topozarr_engine.storage.sinks import ZarrShardSink
from topozarr_engine.windows import ArrayWindow, WindowSink

from topozarr_plan.cluster_partials import Reduction, TileFold
from topozarr_plan.source_reader import native_array, native_reader
from topozarr_plan.worker_malloc import tune_worker_allocator

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["BlockJob", "block_record", "load_job", "run_block", "write_record"]


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
    it stores. Stage 2 (``mode`` only: other methods fold partials, ``cluster_partials.py``)
    computes the stage-1 levels again without storing them: the kernel reduces a tile level
    by level, so a deep level is reduced the way a local write reduces it only when the same
    chain of levels leads to it. ``record`` is the journal prefix of this stage's block
    records (``None``: no journal).
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
    partial_stride: tuple[int, ...] | None = None  # fold tiles into this level's states


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


def run_block(job: BlockJob, block: Region) -> dict[str, Any]:
    """Write the shards of ``job.written`` inside level-0 ``block``.

    Returns ``counts``, the per-level timer counts (without level 0 its reads count for the
    first level written, as in a local pass), and ``partial``: with ``job.partial_stride``, the
    block's partial states of that level (``cluster_partials.py``), else ``None``.
    """
    tune_worker_allocator()
    zstore = job.target.store
    arrays = {
        lv: zarr.open_array(zstore, path=f"{lv}/{job.name}", mode="r+") for lv in {0, *job.levels}
    }
    # Opened here, on the worker: a plain local Zarr source is read by the kernel (zarrs) when
    # that gives xarray's values exactly (source_reader.py), else through xarray.
    values: Any = native_reader(job.source) or job.source
    # Stage 2 reads the level 0 stage 1 stored (through zarrs when the store is a local
    # directory): it holds the source's values.
    if 0 not in job.written and arrays[0].dtype == job.source.dtype:
        values = native_array(arrays[0]) or arrays[0]
    native = job.target.native_writer() if job.io == "rust" else None
    # a None first destination: level 0 is read as the source but not written (stage 2)
    dsts: list[ArrayWindow | None] = [
        ArrayWindow(arrays[lv], block, stride, store=lv in job.written)
        for lv, stride in zip(job.levels, job.strides, strict=True)
    ]
    if job.levels[0] != 0:
        dsts.insert(0, None)
    timers = [RegionTimer() for _ in dsts]
    spec = PyramidSpec(
        strides=[
            (1,) * block.ndim,
            *(s for lv, s in zip(job.levels, job.strides, strict=True) if lv),
        ],
        method=job.method,
        fill_value=job.fill_value,
        source_chunks=job.source_chunks,
        level0_block=job.level0_block,
        max_region_bytes=job.max_region_bytes,
        max_workers=max(1, min(job.threads, os.cpu_count() or 1)),
        name=job.name,
        # A task of one thread shares the machine's cores with the worker's other tasks (and
        # other workers): its tiles stay on its thread.
        split_tiles=None if job.threads > 1 else False,
    )
    fold = None
    if job.partial_stride is not None:
        reduction = Reduction(np.dtype(job.source.dtype).name, job.method, job.fill_value)
        fold = TileFold(block, job.partial_stride, reduction)
    hooks = WriteHooks(timers=timers, sink=WindowSink(native or ZarrShardSink()), on_read=fold)
    write_pyramid_arrays(_BlockSource(values, block), dsts, spec, hooks)
    if native is not None:
        native.flush()  # every upload stored (or its error raised) before the record
    if job.record is not None:
        write_record(zstore, block_record(job.record, block))
    out = []
    for lv, timer in zip([0, *(lv for lv in job.levels if lv)], timers, strict=True):
        if lv in job.written:
            out.append((lv, timer.as_dict()))
        elif lv == 0:
            out.append((min(job.written or {0}), timer.as_dict()))
    return {"counts": out, "partial": fold.partial() if fold is not None else None}


def write_record(zstore: Any, name: str) -> None:
    from topozarr_plan.journal import JOURNAL_PREFIX
    from topozarr_plan.journal_keys import keys_for

    keys_for(zstore).put(f"{JOURNAL_PREFIX}/{name}", json.dumps({"done": True}).encode())
