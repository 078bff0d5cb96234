"""``Pyramid.write(store, client=client)``: the single-pass writer on a dask.distributed cluster.

The client lays out the store (templates, journal lease, publication) exactly as a local write
does; only the spatial arrays are filled on the workers, in two stages of *block* tasks
(``cluster_tasks.py`` is the worker side).

A block is a level-0 region whose edges are multiples of the shard footprint (cumulative
stride x shard shape) of every level the stage writes, so each shard of those levels lies in
exactly one block. A block task runs the engine's single-pass writer on that region alone, as
a small pyramid of its own (its destinations are windows of the store's arrays, offset by the
block origin), so it reads each of its level-0 tiles once and writes every shard of its levels
finished; no two tasks ever write the same shard and no partial state crosses tasks.

1. Stage 1 writes levels ``0..k`` from the source, ``k`` being the deepest level that still
   gives enough blocks to keep every worker thread busy. Its block edges are also multiples
   of the source's chunks when that still gives enough blocks, so no source chunk is read by
   two tasks.
2. The levels deeper than ``k`` (their shards span several stage-1 blocks) come from the
   blocks' partial states, merged in a tree of one task per deep shard
   (``cluster_partials.py``): nothing is read twice. For ``mode`` (no small state) a stage 2
   writes them in blocks of their own, reading the level 0 that stage 1 stored. Every coarse
   value is reduced from native cells: a mean of stored means would not be exact with NaN
   holes or integer rounding. (When level 0 is stored with another dtype than the source's,
   stage 1 writes every level, so the source is still read once.)

Resume: each block task, once its shards are stored, records itself in the write journal
(``blocks/p<pass>/v<var>/l<levels>/<start>-<stop>``); ``resume=True`` skips recorded blocks.
Blocks share no shard, so nothing is ever replayed, and a task run twice (its worker died, or
a resume) rewrites the same whole shards. The deep levels of a variable are recorded as one
(``blocks/p<pass>/v<var>/deep``) once all their tasks are done; until then a resume refolds
the recorded blocks' partials from the level 0 they stored.

The store travels to the workers as a pickled :class:`~topozarr_engine.storage.StorageTarget`
(a path on a shared filesystem, an ``s3://`` URL or an S3 bucket/prefix; credentials from each
worker's environment), the source as the lazy ``xarray.Variable`` it
is in the plan (a lazily opened Zarr, or a dask graph): workers read their own tiles and the
client holds no array data. An in-memory source is refused.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from topozarr_engine import Region, RegionTimer, kernel
from topozarr_engine.region import coarsened_shape
from topozarr_engine.storage import StorageTarget

from topozarr_plan.cluster_partials import DeepJob, Reduction, plan_deep, run_deep, touched
from topozarr_plan.cluster_tasks import BlockJob, block_record, load_job, run_block, write_record
from topozarr_plan.errors import PlanError
from topozarr_plan.journal import NoJournal
from topozarr_plan.passes import kernel_fill, level0_block, level_strides, source_chunks

if TYPE_CHECKING:
    from topozarr_plan.passes import PassJob
    from topozarr_plan.pyramid import Pyramid
    from topozarr_plan.write_options import WriteRun

__all__ = ["check_cluster_target", "check_cluster_write", "run_on_cluster"]

#: Blocks per worker thread wanted in stage 1, so that uneven blocks still balance.
BLOCKS_PER_THREAD = 2


def check_cluster_target(target: StorageTarget) -> None:
    """Refuse a store the workers cannot open themselves (the target must pickle).

    Raises
    ------
    PlanError
        A store that only exists in this process (``MemoryStore``, an obstore memory store,
        an icechunk session), or a URL scheme other than ``s3://`` / ``file://``.
    """
    if target.kind == "url":
        raise PlanError(
            f"client= writes to a local path on shared storage or an s3:// URL, got "
            f"{target.store!r}; pass one of those"
        )
    if not target.portable:
        raise PlanError(
            f"client= needs a store the workers can open themselves, got a "
            f"{type(target.store).__name__}; pass a path on a shared filesystem or an s3:// URL"
        )


def check_cluster_write(
    pyramid: Pyramid, spatial: Sequence[str], options: Mapping[str, Any]
) -> None:
    """Refuse, before any I/O, what the cluster path does not do (yet).

    ``options`` holds the ``write`` options that matter: ``levels``, ``append_dim``,
    ``keep_levels_in_memory``.
    """
    for option in ("levels", "append_dim"):
        if options.get(option) is not None:
            raise PlanError(
                f"client= writes every level of a fresh pyramid; {option}="
                f"{options[option]!r} is not supported with it yet: write without client="
            )
    if options.get("keep_levels_in_memory") is False:
        raise PlanError(
            "client= bounds memory per block already; keep_levels_in_memory=False is for "
            "local writes only"
        )
    for name in spatial:
        var = pyramid.source[name].variable
        if var.chunks is None and getattr(var, "_in_memory", False):
            raise PlanError(
                f"client= needs a source the workers can read: variable {name!r} is an "
                "in-memory numpy array; open the source lazily from shared storage "
                "(xr.open_zarr(path)) or make it dask-backed (ds.chunk())"
            )


# ----------------------------------------------------------------------------- planning


def plan_blocks(
    shape: Sequence[int],
    strides: Sequence[Sequence[int]],
    shards: Sequence[Sequence[int]],
    *,
    align: Sequence[int] | None = None,
) -> list[Region]:
    """Level-0 blocks covering ``shape`` so that each shard of every level lies in one block.

    ``strides`` and ``shards`` are given per level written; with ``align`` (the source's
    chunks) block edges are also multiples of it, so no source chunk is read by two blocks.
    A last piece of an axis shorter than the largest stride joins the block before it: alone
    it would make windows of its own that the whole array trims away.
    """
    edges = []
    for axis, n in enumerate(shape):
        step = math.lcm(*(st[axis] * sh[axis] for st, sh in zip(strides, shards, strict=True)))
        if align is not None:
            step = math.lcm(step, align[axis])
        cuts = [*range(0, n, step), n]
        if len(cuts) > 2 and n - cuts[-2] < max(st[axis] for st in strides):
            del cuts[-2]
        edges.append(list(itertools.pairwise(cuts)))
    return [
        Region.from_bounds([a for a, _ in bounds], [b for _, b in bounds])
        for bounds in itertools.product(*edges)
    ]


def _check_windows(
    blocks: Sequence[Region], shape: Sequence[int], strides: Sequence[Sequence[int]]
) -> None:
    """Each block's own coarse shapes are the store level's cells in it (else a bug here)."""
    for stride in strides:
        full = coarsened_shape(shape, stride)
        for block in blocks:
            own = coarsened_shape(block.shape, stride)
            cells = tuple(
                min(g, -(-b // s)) - a // s
                for g, a, b, s in zip(full, block.start, block.stop, stride, strict=True)
            )
            if own != cells:
                raise AssertionError(f"block {block} gives {own} cells, the level has {cells}")


@dataclass(frozen=True)
class _Variable:
    """What planning needs of one spatial variable."""

    shape: tuple[int, ...]
    strides: list[tuple[int, ...]]
    shards: list[tuple[int, ...]]
    chunks: tuple[int, ...] | None  # the source's

    def blocks(self, levels: Sequence[int], *, aligned: bool) -> list[Region]:
        """The blocks of a stage writing ``levels`` (aligned to the source chunks or not)."""
        return plan_blocks(
            self.shape,
            [self.strides[lv] for lv in levels],
            [self.shards[lv] for lv in levels],
            align=self.chunks if aligned else None,
        )


def _describe(pyramid: Pyramid, name: str) -> _Variable:
    var = pyramid.source[name].variable
    shards = []
    for level in range(len(pyramid.factors)):
        enc = pyramid.encoding[f"/{level}"][name]
        shards.append(tuple(int(n) for n in (enc.get("shards") or enc["chunks"])))
    strides = [level_strides(var.dims, f, pyramid) for f in pyramid.factors]
    return _Variable(tuple(int(n) for n in var.shape), strides, shards, source_chunks(var))


def split_levels(
    variables: Sequence[_Variable], nlevels: int, threads: int
) -> tuple[list[int], list[int], bool]:
    """Levels of stage 1 (from the source), the deep levels (from the blocks' partials, or for
    ``mode`` a stage 2 from stored level 0), and whether stage 1's blocks are aligned to the
    source chunks.

    Stage 1 takes the deepest prefix of levels that still gives ``BLOCKS_PER_THREAD`` blocks per
    worker thread (level 0 at least), with blocks aligned to the source chunks when that still
    gives enough of them (then each source chunk is read by one task only); the same split for
    every variable keeps the deep levels simple.
    """
    want = BLOCKS_PER_THREAD * max(1, threads)
    for aligned in (True, False):
        for k in range(nlevels - 1, -1, -1):
            if sum(len(v.blocks(range(k + 1), aligned=aligned)) for v in variables) >= want:
                return list(range(k + 1)), list(range(k + 1, nlevels)), aligned
    return [0], list(range(1, nlevels)), False


# ----------------------------------------------------------------------------- client side


def _merge(timer: RegionTimer | None, counts: Mapping[str, Any]) -> None:
    if timer is None:
        return
    for stage in ("read", "reduce", "write", "encode"):
        timer.add(stage, counts[f"{stage}_s"])
    timer.count(
        regions=counts["regions"],
        skipped=counts["skipped"],
        writes=counts["writes"],
        bytes_read=counts["bytes_read"],
        bytes_written=counts["bytes_written"],
    )
    for shape in counts["region_shapes"]:
        timer.count(shape=tuple(shape))


@dataclass(frozen=True)
class _Run:
    """What every stage of one cluster pass shares."""

    client: Any
    pyramid: Pyramid
    target: StorageTarget
    io: str
    max_region_bytes: int
    timers: Mapping[int, RegionTimer]
    progress: Any = None
    record: str | None = None  # journal prefix of this pass's block records
    done: frozenset[str] = frozenset()  # block records of an interrupted run


def _job(run: _Run, index: int, name: str, written: list[int], threads: int) -> BlockJob:
    pyramid = run.pyramid
    var = pyramid.source[name].variable
    # Stage 2 (mode) computes the stage-1 levels again from level 1; stage 1 stops at its last.
    levels = list(range(0 if 0 in written else 1, max(written) + 1))
    strides = [level_strides(var.dims, pyramid.factors[lv], pyramid) for lv in levels]
    record = None
    if run.record is not None:
        record = f"{run.record}v{index}/l{'.'.join(str(lv) for lv in written)}/"
    return BlockJob(
        target=run.target,
        name=name,
        source=var,
        levels=tuple(levels),
        written=frozenset(written),
        strides=tuple(strides),
        method=pyramid.method_for(name),
        fill_value=kernel_fill(pyramid.fill_values.get(name)),
        source_chunks=source_chunks(var),
        level0_block=level0_block(pyramid, name),
        max_region_bytes=run.max_region_bytes,
        threads=threads,
        io=run.io,
        record=record,
    )


def _submit_job(client: Any, job: Any) -> Any:
    """The job as a future the block tasks depend on: rebuilt from its task if lost."""
    from distributed.protocol.pickle import dumps

    return client.submit(load_job, dumps(job), pure=False)


def _counts_only(result: Mapping[str, Any]) -> dict[str, Any]:
    """A task's timer counts without its partial (what the client fetches: no array data)."""
    return {"counts": result["counts"]}


def _decomposable(pyramid: Pyramid, name: str) -> bool:
    """The variable's method has small partial states that merge (all but ``mode``)."""
    return bool(kernel.method_row(pyramid.method_for(name))["decomposable"])


@dataclass
class _Submitted:
    """Futures of one stage: those whose counts the client merges (with the source bytes each
    moves the progress bar by), the journal records to write once all succeed, blocks run."""

    counted: dict[Any, int] = field(default_factory=dict)
    records: list[str] = field(default_factory=list)
    ran: int = 0


def _run_stage(
    run: _Run,
    spatial: Sequence[str],
    levels: list[int],
    *,
    aligned: bool = False,
    deep: Sequence[int] = (),
) -> int:
    """Submit every unfinished block of ``levels`` for every variable and, with ``deep``, the
    tree of deep-level tasks their partials feed (``cluster_partials.py``); wait, merge the
    counts. Returns the blocks run."""
    client = run.client
    threads = max(1, sum(client.nthreads().values()))
    per_variable = []
    for name in spatial:
        v = _describe(run.pyramid, name)
        blocks = v.blocks(levels, aligned=aligned)
        _check_windows(blocks, v.shape, [v.strides[lv] for lv in levels])
        per_variable.append((name, v, blocks))
    nblocks = sum(len(b) for _, _, b in per_variable)
    # Few blocks (the deep levels): each task gets the threads the others leave idle (capped
    # by its worker machine's CPU count there).
    inner = max(1, threads // max(1, nblocks))
    out = _Submitted()
    for index, (name, v, blocks) in enumerate(per_variable):
        job = _job(run, index, name, levels, inner)
        deep_record = None if run.record is None else f"{run.record}v{index}/deep"
        if deep and deep_record not in run.done:
            job = replace(job, partial_stride=v.strides[deep[0]])
            results = _submit_blocks(run, job, blocks, out, refold=True)
            _submit_deep(run, name, deep, list(zip(blocks, results, strict=True)), out)
            if deep_record is not None:
                out.records.append(deep_record)
        else:
            _submit_blocks(run, job, blocks, out, refold=False)
    _gather(run, out.counted)
    for name in out.records:  # every deep task of the variable stored its shards
        write_record(run.target.store, name)
    return out.ran


def _submit_blocks(
    run: _Run, job: BlockJob, blocks: Sequence[Region], out: _Submitted, *, refold: bool
) -> list[Any]:
    """Submit the unfinished blocks of one variable; their result futures, in block order.

    With ``refold`` a block an interrupted run finished is run again without storing
    anything, for its partial (the deep levels were not finished: partials are not kept).
    """
    client = run.client
    itemsize = run.pyramid.source[job.name].variable.dtype.itemsize
    results: list[Any] = []
    job_future = refold_future = None
    for b in blocks:
        if job.record is not None and block_record(job.record, b) in run.done:
            if refold:
                if refold_future is None:
                    again = replace(job, written=frozenset(), record=None)
                    refold_future = _submit_job(client, again)
                results.append(client.submit(run_block, refold_future, b, pure=False))
            continue
        if job_future is None:
            job_future = _submit_job(client, job)
        fut = client.submit(run_block, job_future, b, pure=False)
        results.append(fut)
        if job.partial_stride is not None:
            fut = client.submit(_counts_only, fut, pure=False)
        out.counted[fut] = math.prod(b.shape) * itemsize
        out.ran += 1
    return results


def _submit_deep(
    run: _Run,
    name: str,
    deep: Sequence[int],
    stage1: Sequence[tuple[Region, Any]],
    out: _Submitted,
) -> None:
    """Submit the deep levels' tasks of one variable, level by level, each fed the futures of
    the partials that overlap its cells (for the first deep level, those of the ``stage1``
    blocks: each block with its task's future)."""
    pyramid = run.pyramid
    v = _describe(pyramid, name)
    var = pyramid.source[name].variable
    reduction = Reduction(
        np.dtype(var.dtype).name,
        pyramid.method_for(name),
        kernel_fill(pyramid.fill_values.get(name)),
    )
    job = DeepJob(
        target=run.target,
        name=name,
        reduction=reduction,
        levels=tuple(deep),
        strides=tuple(v.strides[lv] for lv in deep),
        io=run.io,
    )
    first = [touched(b, job.strides[0]) for b, _ in stage1]
    tiers = plan_deep(job, v.shape, [v.shards[lv] for lv in deep], first)
    job_future = _submit_job(run.client, job)
    above = [fut for _, fut in stage1]
    for tier in tiers:
        above = [
            run.client.submit(run_deep, job_future, t, *(above[k] for k in t.inputs), pure=False)
            for t in tier
        ]
        for fut in above:
            out.counted[run.client.submit(_counts_only, fut, pure=False)] = 0


def _gather(run: _Run, futures: Mapping[Any, int]) -> None:
    """Merge each task's counts as it finishes, moving the progress bar by its bytes.

    A failed task fails the write only once every other task has finished: a block still
    running would otherwise go on writing under a resumed write, and finished blocks are
    recorded, so a resume runs only what failed. An interrupt of the client cancels the rest.
    """
    from distributed import as_completed

    failed = None
    try:
        for fut in as_completed(list(futures)):
            if fut.status == "error":
                failed = failed or fut
                continue
            for level, counts in fut.result()["counts"]:
                _merge(run.timers.get(level), counts)
            if run.progress is not None and futures[fut]:
                run.progress.add(futures[fut])
    except BaseException:
        run.client.cancel(list(futures))
        raise
    if failed is not None:
        failed.result()  # raises the task's error, with its traceback from the worker


def _level0_differs(pyramid: Pyramid, name: str) -> bool:
    """Level 0 is stored with another dtype than the source's (its values are not the
    source's, so no level may be reduced from them)."""
    stored = pyramid.level_templates[0][name].dtype
    return bool(stored != pyramid.source[name].dtype)


def run_on_cluster(run: _Run, spatial: Sequence[str]) -> dict[str, int]:
    """Fill every level of every spatial variable on the cluster.

    Stage 1 writes the levels whose shards fit its blocks; the deeper ones come from the
    blocks' partials (``cluster_partials.py``), or for ``mode`` from a stage 2 that reads
    stored level 0. Returns tile counts as ``passes.run_pass`` does: ``tiles_run`` counts the
    blocks run, ``tiles_replayed`` stays 0 (no block is ever replayed: blocks share no shard).
    """
    threads = max(1, sum(run.client.nthreads().values()))
    variables = [_describe(run.pyramid, name) for name in spatial]
    nlevels = len(run.pyramid.factors)
    first, deep, aligned = split_levels(variables, nlevels, threads)
    if any(_level0_differs(run.pyramid, name) for name in spatial):
        # Stage 2 could only read the source again: every level in stage 1 (fewer blocks).
        first, deep, aligned = list(range(nlevels)), [], True
    if not deep or all(_decomposable(run.pyramid, name) for name in spatial):
        return {"tiles_run": _run_stage(run, spatial, first, aligned=aligned, deep=deep),
                "tiles_replayed": 0}  # fmt: skip
    # mode: the bar counts source bytes; stage 2 reads stored level 0, so it gets no share.
    ran = _run_stage(run, spatial, first, aligned=aligned)
    ran += _run_stage(replace(run, progress=None), spatial, deep)
    return {"tiles_run": ran, "tiles_replayed": 0}


def cluster_pass(client: Any, target: StorageTarget, io: str) -> Any:
    """A stand-in for ``passes.run_pass`` that runs the pass on ``client``'s cluster."""

    def run(w: WriteRun, job: PassJob) -> dict[str, int]:
        # The client only laid the arrays out: the workers reopen ``target`` (it pickles).
        record, done = None, frozenset[str]()
        journal = job.journal
        if journal is not None and not isinstance(journal, NoJournal):
            record = f"blocks/p{job.pass_index}/"
            done = frozenset(journal.names(record))
        if w.native is not None:
            w.native.flush()  # nothing is written through the client's own native writer
        state = _Run(
            client, w.pyramid, target, io, w.options.max_region_bytes, job.timers, job.progress,
            record, done,
        )  # fmt: skip
        return run_on_cluster(state, w.spatial)

    return run
