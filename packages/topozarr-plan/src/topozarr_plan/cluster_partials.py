"""The deep levels of ``write(client=...)`` from partial states: a tree reduction on the workers.

The levels deeper than stage 1's (their shards span several stage-1 blocks) are not read again
from stored level 0. Instead:

1. each stage-1 block task folds every level-0 tile it reads into the kernel's partial states
   (sum and count, running extreme, or first cell) of the first deep level, over the cells its
   block touches, and returns them as bytes (:class:`Partial`);
2. each deep level is written by tasks over groups of its shards (:class:`DeepTask`): a task
   merges the partials that overlap its cells (those of the stage-1 blocks for the first deep
   level, those of the level above's tasks otherwise), writes its shards, and returns the
   states of the next level over its cells (the kernel's ``Accumulator.coarsened``).

Every value is still reduced from native cells (states, never finished values), so a mean
with NaN holes or integer rounding is exact; only the order in which float sums of a window
are added differs from a local write's (which folds tiles in the order threads finish them).
A task holds a few partials of a shard's cells; the client holds none (it only plans which
partials feed which task). ``mode`` has no small state (a histogram per cell) and keeps
stage 2's re-read of level 0 (``cluster.py``).

States cover the cells a region *touches* (partial windows at the array end included, as
``Ax::touched`` in the kernel), so a level whose axis is shorter than its stride still gets
its one partial window; writes keep the level's trimmed shape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import zarr
from topozarr_engine import Region, RegionTimer
from topozarr_engine.blocks import is_all_fill
from topozarr_engine.kernel import Accumulator
from topozarr_engine.storage import StorageTarget
from topozarr_engine.storage.sinks import ZarrShardSink
from topozarr_engine.tiles import shard_region, shards_of
from topozarr_engine.timer import encode_seconds

from topozarr_plan.worker_malloc import tune_worker_allocator

__all__ = ["DeepJob", "DeepTask", "Partial", "TileFold", "plan_deep", "run_deep", "touched"]


def touched(region: Region, stride: Sequence[int]) -> Region:
    """Cells of a level of ``stride`` whose windows ``region`` touches (partial ones too)."""
    return Region.from_bounds(
        [a // s for a, s in zip(region.start, stride, strict=True)],
        [-(-b // s) for b, s in zip(region.stop, stride, strict=True)],
    )


@dataclass(frozen=True)
class Partial:
    """Exported partial states of the level cells ``region`` (``Accumulator.export_states``)."""

    region: Region
    data: bytes


class TileFold:
    """A stage-1 block task's ``on_read`` hook: folds each level-0 tile it reads into the
    partial states of the first deep level (native ``stride``) over the block's cells."""

    def __init__(self, block: Region, stride: Sequence[int], reduction: Reduction) -> None:
        self.block = block
        self.stride = tuple(stride)
        self.cells = touched(block, stride)
        self.acc = reduction.accumulator(self.cells.shape)
        self._lock = threading.Lock()  # the engine reads tiles on several threads

    def __call__(self, region: Region, values: np.ndarray) -> None:
        origin = [a + b for a, b in zip(region.start, self.block.start, strict=True)]
        offset = [o // s - c for o, s, c in zip(origin, self.stride, self.cells.start, strict=True)]
        phase = [o % s for o, s in zip(origin, self.stride, strict=True)]
        with self._lock:
            self.acc.fold(values, offset, self.stride, phase=phase)

    def partial(self) -> Partial:
        return Partial(self.cells, self.acc.export_states())


@dataclass(frozen=True)
class Reduction:
    """How one variable reduces: what a fresh ``Accumulator`` of its states needs."""

    dtype: str  # the source's (states are of native cells)
    method: str
    fill_value: float | int | None
    skipna: bool = True

    def accumulator(self, shape: Sequence[int]) -> Any:
        return Accumulator(
            tuple(shape), self.dtype, self.method, fill_value=self.fill_value, skipna=self.skipna
        )


@dataclass(frozen=True)
class DeepJob:
    """One variable's deep levels, as they travel to the workers (small and picklable).

    ``strides`` are the native strides of ``levels``.
    """

    target: StorageTarget
    name: str
    reduction: Reduction
    levels: tuple[int, ...]
    strides: tuple[tuple[int, ...], ...]
    io: str = "python"

    def ratio(self, i: int) -> tuple[int, ...]:
        """Cells of deep level ``i`` per window of level ``i + 1``, per axis."""
        return tuple(b // a for a, b in zip(self.strides[i], self.strides[i + 1], strict=True))


@dataclass(frozen=True)
class DeepTask:
    """One task of deep level index ``i``: the level cells ``cells`` (whole shards of it).

    A task over a whole level (one shard) also writes the levels below it, through ``last``:
    each would be a single task waiting on the one before, so the chain runs in one task.
    """

    i: int
    cells: Region
    inputs: tuple[int, ...]  # indices of the tasks of the level above whose partials it merges
    last: int = -1  # the deepest level index it writes (-1: only ``i``)

    @property
    def levels(self) -> range:
        return range(self.i, max(self.i, self.last) + 1)

    def output(self, job: DeepJob) -> Region | None:
        """Cells of the next level whose states this task returns (none for the last)."""
        cells = self.cells
        for i in self.levels:
            if i + 1 >= len(job.levels):
                return None
            cells = touched(cells, job.ratio(i))
        return cells


def plan_deep(
    job: DeepJob,
    native_shape: Sequence[int],
    shards: Sequence[Sequence[int]],
    first_inputs: Sequence[Region],
) -> list[list[DeepTask]]:
    """The tasks of every deep level, each over one shard of its level (extended to the cells
    the array touches past the trimmed shape at its end), and which partials feed each:
    ``first_inputs`` are the cells of the stage-1 blocks' partials, in submission order."""
    tiers: list[list[DeepTask]] = []
    above = list(first_inputs)
    for i, (stride, shard) in enumerate(zip(job.strides, shards, strict=True)):
        extent = touched(Region.from_bounds([0] * len(native_shape), native_shape), stride)
        tasks = []
        for index in shards_of(extent, shard):
            cells = shard_region(index, shard, extent.shape)
            inputs = tuple(k for k, r in enumerate(above) if not cells.intersect(r).is_empty())
            tasks.append(DeepTask(i, cells, inputs))
        if len(tasks) == 1:  # the whole level: it writes every deeper one too
            tiers.append([replace(tasks[0], last=len(job.levels) - 1)])
            break
        tiers.append(tasks)
        above = [t.output(job) or t.cells for t in tasks]
    return tiers


def run_deep(job: DeepJob, task: DeepTask, *inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``inputs``' partials over ``task.cells``, write the shards of ``task.levels``
    there, and return the next level's partial with the timer counts of each level."""
    tune_worker_allocator()
    timer = RegionTimer()
    t0 = time.perf_counter()
    acc = job.reduction.accumulator(task.cells.shape)
    for result in inputs:
        part: Partial = result["partial"]
        offset = [a - b for a, b in zip(part.region.start, task.cells.start, strict=True)]
        acc.merge_states(part.data, part.region.shape, offset, job.strides[task.i])
    timer.add("reduce", time.perf_counter() - t0)
    counts = []
    cells = task.cells
    for i in task.levels:
        if i > task.i:  # the level from the one just written, in this task
            timer = RegionTimer()
            t0 = time.perf_counter()
            acc, cells = _coarsen(job, i - 1, acc, cells)
            timer.add("reduce", time.perf_counter() - t0)
        _write(job, job.levels[i], cells, acc, timer)
        counts.append((job.levels[i], timer.as_dict()))
    partial = None
    if task.levels[-1] + 1 < len(job.levels):
        acc, cells = _coarsen(job, task.levels[-1], acc, cells)
        partial = Partial(cells, acc.export_states())
    return {"counts": counts, "partial": partial}


def _coarsen(job: DeepJob, i: int, acc: Any, cells: Region) -> tuple[Any, Region]:
    """The states of deep level ``i + 1`` over the cells that level ``i``'s ``cells`` meet."""
    ratio = job.ratio(i)
    phase = [a % r for a, r in zip(cells.start, ratio, strict=True)]
    return acc.coarsened(ratio, phase=phase), touched(cells, ratio)


def _write(job: DeepJob, level: int, cells: Region, acc: Any, timer: RegionTimer) -> None:
    """Store the finished values of ``cells`` within the level's stored shape, shard by shard
    (an all-fill shard is not stored, as a local write skips it)."""
    array = zarr.open_array(job.target.store, path=f"{level}/{job.name}", mode="r+")
    stored = cells.intersect(Region.from_bounds([0] * cells.ndim, array.shape))
    native = job.target.native_writer() if job.io == "rust" else None
    sink = native or ZarrShardSink()
    shard = array.shards or array.chunks
    for index in shards_of(stored, shard):
        region = shard_region(index, shard, array.shape)
        rel = region.relative_to(cells)
        values = np.asarray(acc.result(rel.start, rel.stop)).astype(array.dtype, copy=False)
        if is_all_fill(values, array.fill_value):
            timer.count(regions=1, skipped=1, shape=region.shape)
            continue
        t0, e0 = time.perf_counter(), encode_seconds()
        sink.write_region(array, region, values)
        timer.add("write", time.perf_counter() - t0)
        timer.add("encode", encode_seconds() - e0)
        timer.count(regions=1, writes=1, bytes_written=values.nbytes, shape=region.shape)
    sink.flush()  # every shard stored (or its error raised) before the task succeeds
