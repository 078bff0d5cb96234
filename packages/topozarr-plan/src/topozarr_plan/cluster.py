"""``Pyramid.write(store, client=client)``: the single-pass writer on a dask.distributed cluster.

The client lays out the store (templates, journal lease, publication) exactly as a local write
does; only the spatial arrays are filled on the workers, in two stages of *block* tasks.

A block is a level-0 region whose edges are multiples of the shard footprint (cumulative
stride x shard shape) of every level the stage writes, so each shard of those levels lies in
exactly one block. A block task runs the engine's single-pass writer on that region alone, as
a small pyramid of its own (its destinations are windows of the store's arrays, offset by the
block origin), so it reads each of its level-0 tiles once and writes every shard of its levels
finished; no two tasks ever write the same shard and no partial state crosses tasks.

1. Stage 1 writes levels ``0..k`` from the source, ``k`` being the deepest level that still
   gives enough blocks to keep every worker thread busy.
2. Stage 2 writes the levels deeper than ``k`` (their shards span several stage-1 blocks), in
   blocks of their own, reading the level 0 that stage 1 stored (the source again when level 0
   is stored with another dtype). Every coarse value is still reduced from native cells: a mean
   of stored means would not be exact with NaN holes or integer rounding.

The store travels to the workers as a path on a shared filesystem or an ``s3://`` URL
(credentials from each worker's environment), the source as the lazy ``xarray.Variable`` it
is in the plan (a lazily opened Zarr, or a dask graph): workers read their own tiles and the
client holds no array data. An in-memory source is refused.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from topozarr_engine import Region, RegionTimer, write_pyramid_arrays
from topozarr_engine import shards as engine_shards
from topozarr_engine.region import coarsened_shape

from topozarr_plan.errors import PlanError
from topozarr_plan.passes import kernel_fill, level0_block, level_strides, source_chunks
from topozarr_plan.stores import is_s3_url

if TYPE_CHECKING:
    import xarray as xr

    from topozarr_plan.pyramid import Pyramid

__all__ = ["check_cluster_write", "run_on_cluster", "store_location"]

#: Blocks per worker thread wanted in stage 1, so that uneven blocks still balance.
BLOCKS_PER_THREAD = 2


def store_location(store: Any) -> str:
    """The store as a path or URL every worker can open (a shared filesystem, or S3).

    Raises
    ------
    PlanError
        A store that only exists in this process (``MemoryStore``, an obstore or icechunk
        object), or a URL scheme other than ``s3://`` / ``file://``.
    """
    if isinstance(store, Path):
        return str(store.resolve())
    if isinstance(store, str):
        if is_s3_url(store):
            return store
        if "://" in store and not store.startswith("file://"):
            raise PlanError(
                f"client= writes to a local path on shared storage or an s3:// URL, got "
                f"{store!r}; pass one of those"
            )
        return str(Path(store.removeprefix("file://")).resolve())
    if isinstance(store, zarr.storage.LocalStore):
        return str(Path(store.root).resolve())
    raise PlanError(
        f"client= needs a store the workers can open themselves, got a {type(store).__name__}; "
        "pass a path on a shared filesystem or an s3:// URL"
    )


def check_cluster_write(
    pyramid: Pyramid, spatial: Sequence[str], options: Mapping[str, Any]
) -> None:
    """Refuse, before any I/O, what the cluster path does not do (yet).

    ``options`` holds the ``write`` options that matter: ``io``, ``levels``, ``resume``,
    ``append_dim``, ``keep_levels_in_memory``.
    """
    if options.get("io") != "python":
        raise PlanError(f"client= writes with io='python' only, got io={options.get('io')!r}")
    for option in ("levels", "append_dim"):
        if options.get(option) is not None:
            raise PlanError(
                f"client= writes every level of a fresh pyramid; {option}="
                f"{options[option]!r} is not supported with it yet: write without client="
            )
    if options.get("resume"):
        raise PlanError("client= cannot resume a write yet: rerun it with mode='w'")
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
    shape: Sequence[int], strides: Sequence[Sequence[int]], shards: Sequence[Sequence[int]]
) -> list[Region]:
    """Level-0 blocks covering ``shape`` so that each shard of every level lies in one block.

    ``strides`` and ``shards`` are given per level written. A last piece of an axis shorter
    than the largest stride joins the block before it: alone it would make windows of its own
    that the whole array trims away.
    """
    edges = []
    for axis, n in enumerate(shape):
        step = math.lcm(*(st[axis] * sh[axis] for st, sh in zip(strides, shards, strict=True)))
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


def _describe(pyramid: Pyramid, name: str) -> _Variable:
    var = pyramid.source[name].variable
    shards = []
    for level in range(len(pyramid.factors)):
        enc = pyramid.encoding[f"/{level}"][name]
        shards.append(tuple(int(n) for n in (enc.get("shards") or enc["chunks"])))
    strides = [level_strides(var.dims, f, pyramid) for f in pyramid.factors]
    return _Variable(tuple(int(n) for n in var.shape), strides, shards)


def split_levels(
    variables: Sequence[_Variable], nlevels: int, threads: int
) -> tuple[list[int], list[int]]:
    """Levels of stage 1 (from the source) and stage 2 (from stored level 0).

    Stage 1 takes the deepest prefix of levels that still gives ``BLOCKS_PER_THREAD`` blocks per
    worker thread (level 0 at least); the same split for every variable keeps stage 2 simple.
    """
    want = BLOCKS_PER_THREAD * max(1, threads)
    for k in range(nlevels - 1, 0, -1):
        levels = range(k + 1)
        count = sum(
            len(plan_blocks(v.shape, [v.strides[i] for i in levels], [v.shards[i] for i in levels]))
            for v in variables
        )
        if count >= want:
            return list(levels), list(range(k + 1, nlevels))
    return [0], list(range(1, nlevels))


# ----------------------------------------------------------------------------- worker side


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


def _write_window(dst: _Window, region: Region, block: np.ndarray) -> None:
    if not dst.store:
        return  # a level computed only to reach the deeper ones the same way
    shifted = Region.from_bounds(
        [a + o for a, o in zip(region.start, dst.offset, strict=True)],
        [b + o for b, o in zip(region.stop, dst.offset, strict=True)],
    )
    engine_shards.write_region(dst.array, shifted, block)


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
    local write adds them only when the same chain of levels leads to it.
    """

    where: str
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


def run_block(job: BlockJob, block: Region) -> list[tuple[int, dict[str, Any]]]:
    """Write the shards of ``job.written`` inside level-0 ``block``; per-level timer counts.

    Without level 0 its reads count for the first level written, as in a local pass.
    """
    from topozarr_plan.stores import resolve_store

    zstore = resolve_store(job.where, check=False)
    arrays = {
        lv: zarr.open_array(zstore, path=f"{lv}/{job.name}", mode="r+") for lv in {0, *job.levels}
    }
    values: Any = job.source
    if 0 not in job.written and arrays[0].dtype == job.source.dtype:
        values = arrays[0]  # stage 2: the stored level 0 holds the source's values
    # a None first destination: level 0 is read as the source but not written (stage 2)
    dsts: list[_Window | None] = [
        _Window(arrays[lv], block, stride, store=lv in job.written)
        for lv, stride in zip(job.levels, job.strides, strict=True)
    ]
    if job.levels[0] != 0:
        dsts.insert(0, None)
    timers = [RegionTimer() for _ in dsts]
    write_pyramid_arrays(
        _BlockSource(values, block),
        dsts,
        strides=[
            (1,) * block.ndim,
            *(s for lv, s in zip(job.levels, job.strides, strict=True) if lv),
        ],
        method=job.method,
        fill_value=job.fill_value,
        source_chunks=job.source_chunks,
        level0_block=job.level0_block,
        max_region_bytes=job.max_region_bytes,
        max_workers=job.threads,
        timers=timers,
        name=job.name,
        write_region=_write_window,
    )
    out = []
    for lv, timer in zip([0, *(lv for lv in job.levels if lv)], timers, strict=True):
        if lv in job.written:
            out.append((lv, timer.as_dict()))
        elif lv == 0:
            out.append((min(job.written), timer.as_dict()))
    return out


# ----------------------------------------------------------------------------- client side


def _merge(timer: RegionTimer | None, counts: Mapping[str, Any]) -> None:
    if timer is None:
        return
    for stage in ("read", "reduce", "write"):
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


def _jobs(
    pyramid: Pyramid,
    where: str,
    name: str,
    written: list[int],
    max_region_bytes: int,
    threads: int,
) -> BlockJob:
    var = pyramid.source[name].variable
    # Stage 2 starts from level 1 again (see BlockJob); stage 1 stops at its last level.
    levels = list(range(0 if 0 in written else 1, max(written) + 1))
    strides = [level_strides(var.dims, pyramid.factors[lv], pyramid) for lv in levels]
    return BlockJob(
        where=where,
        name=name,
        source=var,
        levels=tuple(levels),
        written=frozenset(written),
        strides=tuple(strides),
        method=pyramid.method_for(name),
        fill_value=kernel_fill(pyramid.fill_values.get(name)),
        source_chunks=source_chunks(var),
        level0_block=level0_block(pyramid, name),
        max_region_bytes=max_region_bytes,
        threads=threads,
    )


def _run_stage(
    client: Any,
    pyramid: Pyramid,
    where: str,
    spatial: Sequence[str],
    levels: list[int],
    max_region_bytes: int,
    timers: Mapping[int, RegionTimer],
) -> int:
    """Submit every block of ``levels`` for every variable, wait, merge the counts."""
    threads = max(1, sum(client.nthreads().values()))
    per_variable = []
    for name in spatial:
        v = _describe(pyramid, name)
        st = [v.strides[lv] for lv in levels]
        blocks = plan_blocks(v.shape, st, [v.shards[lv] for lv in levels])
        _check_windows(blocks, v.shape, st)
        per_variable.append((name, blocks))
    nblocks = sum(len(b) for _, b in per_variable)
    # Few blocks (the deep levels): each task gets the threads the others leave idle.
    inner = max(1, min(os.cpu_count() or 1, threads // max(1, nblocks)))
    futures = []
    for name, blocks in per_variable:
        job = _jobs(pyramid, where, name, levels, max_region_bytes, inner)
        [scattered] = client.scatter([job], broadcast=False, hash=False)
        futures += client.map(run_block, [scattered] * len(blocks), blocks, pure=False)
    for result in client.gather(futures):
        for level, counts in result:
            _merge(timers.get(level), counts)
    return nblocks


def run_on_cluster(
    client: Any,
    pyramid: Pyramid,
    where: str,
    spatial: Sequence[str],
    max_region_bytes: int,
    timers: Mapping[int, RegionTimer],
) -> dict[str, int]:
    """Fill every level of every spatial variable on the cluster (stage 1, then stage 2).

    Returns tile counts as ``passes.run_pass`` does (``tiles_run`` counts stage-1 blocks).
    """
    threads = max(1, sum(client.nthreads().values()))
    variables = [_describe(pyramid, name) for name in spatial]
    first, deep = split_levels(variables, len(pyramid.factors), threads)
    ran = _run_stage(client, pyramid, where, spatial, first, max_region_bytes, timers)
    if deep:
        _run_stage(client, pyramid, where, spatial, deep, max_region_bytes, timers)
    return {"tiles_run": ran, "tiles_replayed": 0}


def cluster_pass(client: Any, where: str) -> Any:
    """A stand-in for ``passes.run_pass`` that runs the pass on ``client``'s cluster."""

    def run(
        pyramid: Pyramid,
        arrays: Mapping[str, zarr.Array],
        spatial: list[str],
        levels: list[int],
        pool: Any,
        timers: Mapping[int, RegionTimer],
        progress: Any,
        max_region_bytes: int,
        native: Any = None,
        **_: Any,
    ) -> dict[str, int]:
        # The client only laid the arrays out: the workers open them from ``where``.
        return run_on_cluster(client, pyramid, where, spatial, max_region_bytes, timers)

    return run
