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
2. Stage 2 writes the levels deeper than ``k`` (their shards span several stage-1 blocks), in
   blocks of their own, reading the level 0 that stage 1 stored. Every coarse value is still
   reduced from native cells: a mean of stored means would not be exact with NaN holes or
   integer rounding. (When level 0 is stored with another dtype than the source's, stage 1
   writes every level, so the source is still read once.)

Resume: each block task, once its shards are stored, records itself in the write journal
(``blocks/p<pass>/v<var>/l<levels>/<start>-<stop>``); ``resume=True`` skips recorded blocks.
Blocks share no shard, so nothing is ever replayed, and a task run twice (its worker died, or
a resume) rewrites the same whole shards.

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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from topozarr_engine import Region, RegionTimer
from topozarr_engine.region import coarsened_shape
from topozarr_engine.storage import StorageTarget

from topozarr_plan.cluster_tasks import BlockJob, block_record, load_job, run_block
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
    """Levels of stage 1 (from the source), of stage 2 (from stored level 0), and whether
    stage 1's blocks are aligned to the source chunks.

    Stage 1 takes the deepest prefix of levels that still gives ``BLOCKS_PER_THREAD`` blocks per
    worker thread (level 0 at least), with blocks aligned to the source chunks when that still
    gives enough of them (then each source chunk is read by one task only); the same split for
    every variable keeps stage 2 simple.
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
    # Stage 2 starts from level 1 again (see BlockJob), or from the last stage-1 level for
    # max/min; stage 1 stops at its last level.
    base = 0 if 0 in written else _stored_base(pyramid, name, min(written) - 1, max(written))
    levels = list(range(base + 1 if base else (0 if 0 in written else 1), max(written) + 1))
    base_stride = level_strides(var.dims, pyramid.factors[base], pyramid)
    strides = [
        tuple(
            s // b
            for s, b in zip(
                level_strides(var.dims, pyramid.factors[lv], pyramid), base_stride, strict=True
            )
        )
        for lv in levels
    ]
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
        base=base,
        base_stride=base_stride,
    )


#: Methods whose value over a window equals that over the stored values of its sub-windows
#: whatever the order: stage 2 may read a stored coarser level instead of level 0.
ORDER_FREE = ("max", "min")


def _stored_base(pyramid: Pyramid, name: str, last: int, deepest: int) -> int:
    """The stored level stage 2 reads: ``last`` (the deepest stage-1 level) when that is exact,
    else 0.

    Exact for ``max``/``min`` when each deep window is the union of whole windows of ``last``:
    on an axis shorter than a deep stride the deep level keeps one partial window over the
    whole axis, which the stored level covers only when its own stride divides the axis (or
    exceeds it).
    """
    var = pyramid.source[name].variable
    if last < 1 or pyramid.method_for(name) not in ORDER_FREE:
        return 0
    stored = level_strides(var.dims, pyramid.factors[last], pyramid)
    deep = level_strides(var.dims, pyramid.factors[deepest], pyramid)
    exact = all(
        n >= d or n % s == 0 or n < s for n, s, d in zip(var.shape, stored, deep, strict=True)
    )
    return last if exact else 0


def _submit_job(client: Any, job: BlockJob) -> Any:
    """The job as a future the block tasks depend on: rebuilt from its task if lost."""
    from distributed.protocol.pickle import dumps

    return client.submit(load_job, dumps(job), pure=False)


def _run_stage(
    run: _Run, spatial: Sequence[str], levels: list[int], *, aligned: bool = False
) -> tuple[int, int]:
    """Submit every unfinished block of ``levels`` for every variable, wait, merge the counts.

    Returns the blocks run and those skipped (finished by an interrupted run).
    """
    client = run.client
    threads = max(1, sum(client.nthreads().values()))
    per_variable = []
    for name in spatial:
        v = _describe(run.pyramid, name)
        blocks = v.blocks(levels, aligned=aligned)
        _check_windows(blocks, v.shape, [v.strides[lv] for lv in levels])
        per_variable.append((name, blocks))
    nblocks = sum(len(b) for _, b in per_variable)
    # Few blocks (the deep levels): each task gets the threads the others leave idle (capped
    # by its worker machine's CPU count there).
    inner = max(1, threads // max(1, nblocks))
    futures: dict[Any, int] = {}
    skipped = 0
    for index, (name, blocks) in enumerate(per_variable):
        job = _job(run, index, name, levels, inner)
        todo = [
            b for b in blocks if job.record is None or block_record(job.record, b) not in run.done
        ]
        skipped += len(blocks) - len(todo)
        if not todo:
            continue
        job_future = _submit_job(client, job)
        itemsize = run.pyramid.source[name].variable.dtype.itemsize
        for fut, b in zip(
            client.map(run_block, [job_future] * len(todo), todo, pure=False), todo, strict=True
        ):
            futures[fut] = math.prod(b.shape) * itemsize
    _gather(run, futures)
    return nblocks - skipped, skipped


def _gather(run: _Run, futures: Mapping[Any, int]) -> None:
    """Merge each block's counts as it finishes, moving the progress bar by its bytes.

    A failed block fails the write only once every other block has finished: a block still
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
            for level, counts in fut.result():
                _merge(run.timers.get(level), counts)
            if run.progress is not None:
                run.progress.add(futures[fut])
    except BaseException:
        run.client.cancel(list(futures))
        raise
    if failed is not None:
        failed.result()  # raises the block's error, with its traceback from the worker


def _level0_differs(pyramid: Pyramid, name: str) -> bool:
    """Level 0 is stored with another dtype than the source's (its values are not the
    source's, so no level may be reduced from them)."""
    stored = pyramid.level_templates[0][name].dtype
    return bool(stored != pyramid.source[name].dtype)


def run_on_cluster(run: _Run, spatial: Sequence[str]) -> dict[str, int]:
    """Fill every level of every spatial variable on the cluster (stage 1, then stage 2).

    Returns tile counts as ``passes.run_pass`` does: ``tiles_run`` counts the blocks run,
    ``tiles_replayed`` stays 0 (no block is ever replayed: blocks share no shard).
    """
    threads = max(1, sum(run.client.nthreads().values()))
    variables = [_describe(run.pyramid, name) for name in spatial]
    nlevels = len(run.pyramid.factors)
    first, deep, aligned = split_levels(variables, nlevels, threads)
    if any(_level0_differs(run.pyramid, name) for name in spatial):
        # Stage 2 could only read the source again: every level in stage 1 (fewer blocks).
        first, deep, aligned = list(range(nlevels)), [], True
    # The bar counts source bytes: stage 2 reads stored level 0, so it gets no share of it.
    ran, _ = _run_stage(run, spatial, first, aligned=aligned)
    if deep:
        ran += _run_stage(replace(run, progress=None), spatial, deep)[0]
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
