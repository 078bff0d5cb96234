"""One pass of ``Pyramid.write`` over the source, and how many passes and workers to use.

``run_pass`` hands each spatial variable to the engine's single-pass writer on a shared pool
(with the native writer's ``write_region`` for ``io="rust"``); ``use_single_pass`` decides,
from a memory estimate, whether every coarse level is produced in one pass.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Hashable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import xarray as xr
import zarr
from topozarr_engine import (
    PyramidSpec,
    Region,
    RegionError,
    RegionTimer,
    WriteHooks,
    default_max_workers,
    write_pyramid_arrays,
)
from topozarr_engine.accumulate import output_dtype
from topozarr_engine.kernel import method_row
from topozarr_engine.pool import cancel_all, wait_all
from topozarr_engine.resources import available_memory
from topozarr_engine.tiles import plan_tiles

from topozarr_plan.source_reader import native_reader

if TYPE_CHECKING:
    from topozarr_plan.journal import PassLog, WriteJournal
    from topozarr_plan.pyramid import Pyramid
    from topozarr_plan.write_options import WriteRun

__all__ = [
    "Appending",
    "ProgressTracker",
    "default_workers",
    "kernel_fill",
    "per_level_passes",
    "progress_total",
    "run_pass",
    "use_single_pass",
]


@dataclass(frozen=True)
class Appending:
    """An append's level-0 sources and the level-0 regions to write, per variable."""

    sources: Mapping[str, Any]
    within: Mapping[str, Region]


def kernel_fill(value: float | int | None) -> float | int | None:
    """The kernel skips NaN anyway: pass a fill value only when it is a real number."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def level_strides(dims: Sequence[Hashable], factor: int, pyramid: Pyramid) -> tuple[int, ...]:
    return tuple(factor if d in (pyramid.x_dim, pyramid.y_dim) else 1 for d in dims)


def source_chunks(var: xr.Variable) -> tuple[int, ...] | None:
    """Chunk edge per axis of the source (dask chunks or zarr encoding), 1 where unknown."""
    from topozarr_plan.encoding import source_chunk_sizes

    sizes = source_chunk_sizes(var)
    if not sizes:
        return None
    return tuple(int(sizes.get(d, 1)) for d in var.dims)


def default_workers(pyramid: Pyramid, spatial: list[str], max_region_bytes: int) -> int:
    tile = 0
    for name in spatial:
        var = pyramid.source[name].variable
        tile = max(tile, min(max_region_bytes, var.size * var.dtype.itemsize))
    return default_max_workers(tile or None)


def single_pass_bytes(
    pyramid: Pyramid, spatial: list[str], max_region_bytes: int, workers: int
) -> int:
    """Estimated peak memory of the single pass over all variables at once.

    ``workers`` tiles in flight (source block, kernel outputs, encode copy: ~3 tiles each),
    plus about one open shard buffer per coarse level and variable, plus the deep levels'
    accumulators (~17 bytes per cell: sum, count, flag).
    """
    total = 0
    biggest_tile = 0
    for name in spatial:
        var = pyramid.source[name].variable
        enc0 = pyramid.encoding["/0"][name]
        strides = [level_strides(var.dims, f, pyramid) for f in pyramid.factors]
        spec = PyramidSpec(
            strides,
            pyramid.method_for(name),
            source_chunks=source_chunks(var),
            max_region_bytes=max_region_bytes,
        )
        layout = plan_tiles(
            var.shape, var.dtype.itemsize, enc0.get("shards") or enc0["chunks"], spec
        )
        tile = math.prod(min(t, n) for t, n in zip(layout.tile, var.shape, strict=True))
        biggest_tile = max(biggest_tile, tile * var.dtype.itemsize)
        for level in range(1, len(pyramid.factors)):
            enc = pyramid.encoding[f"/{level}"][name]
            shard = math.prod(enc.get("shards") or enc["chunks"])
            itemsize = output_dtype(pyramid.method_for(name), var.dtype).itemsize
            total += 2 * shard * itemsize  # about one open shard buffer per level
            if level in layout.deep:
                # The accumulator's partial state per level cell, from the kernel's table.
                state = method_row(pyramid.method_for(name))["state_bytes"][var.dtype.name]
                total += state * pyramid.level_templates[level][name].size
    return total + 3 * max(1, workers) * biggest_tile


def use_single_pass(
    pyramid: Pyramid,
    spatial: list[str],
    keep: bool | None,
    max_region_bytes: int,
    workers: int,
) -> bool:
    if keep is False:
        return False
    need = single_pass_bytes(pyramid, spatial, max_region_bytes, workers)
    avail = available_memory()
    fits = avail is None or need <= avail // 2
    if keep is True and not fits:
        raise MemoryError(
            f"keep_levels_in_memory=True needs about {need / 2**20:.0f} MiB, more than half of "
            f"the available {avail / 2**20 if avail else 0:.0f} MiB; pass "
            "keep_levels_in_memory=None or False, or lower max_region_bytes"
        )
    return fits


class ProgressTracker:
    """Thread-safe adapter from engine callbacks to a tqdm bar (or nothing)."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.lock = threading.Lock()
        self.done = 0

    def add(self, n: int) -> None:
        if self.bar is not None:
            with self.lock:
                self.done += n
                self.bar.update(n)

    def reach(self, total: int) -> None:
        """Top the bar up to ``total`` (per-region byte counts are estimates)."""
        if self.bar is not None:
            with self.lock:
                if total > self.done:
                    self.bar.update(total - self.done)
                    self.done = total


def progress_total(pyramid: Pyramid, spatial: list[str], npasses: int) -> int:
    """Every pass reads the source once."""
    return int(npasses * sum(pyramid.source[name].nbytes for name in spatial))


def per_level_passes(requested: list[int]) -> list[list[int]]:
    """``keep_levels_in_memory=False``: one coarse level per pass, level 0 with the first."""
    coarse = [level for level in requested if level > 0]
    if not coarse:
        return [[0]]
    passes = [[level] for level in coarse]
    if 0 in requested:
        passes[0].insert(0, 0)
    return passes


def wait_groups(groups: list[tuple[str, int | None, list[Future[None]]]]) -> None:
    """Wait for all futures; on the first failure cancel everything and raise it, in context."""
    futures = [f for _, _, fs in groups for f in fs]
    owner = {id(f): (name, level) for name, level, fs in groups for f in fs}
    try:
        wait_all(futures)
    except RegionError as exc:
        cancel_all(futures)
        failed = next(
            (f for f in futures if f.done() and not f.cancelled() and f.exception() is exc),
            None,
        )
        name, level = owner.get(id(failed), (None, None)) if failed is not None else (None, None)
        raise exc.with_context(variable=name, level=level) from exc.cause
    except BaseException:
        cancel_all(futures)
        raise


@dataclass
class PassJob:
    """One pass over the source: what it writes and with what.

    Attributes
    ----------
    arrays
        The level arrays by path (``"<level>/<name>"``), as the templates made them.
    levels
        The levels the pass writes (level 0 only when listed).
    pool, timers, progress
        The write's thread pool, per-level timers and progress tracker.
    journal, pass_index
        With a journal, each finished tile is recorded and an earlier run's finished tiles
        are skipped or replayed from the stored level 0 (see ``topozarr_engine.tilelog``).
    append
        Each variable's level 0 is read from its append source (stored steps, then the new
        ones) and only the tiles and shards of the appended steps are written.
    """

    arrays: Mapping[str, zarr.Array]
    levels: list[int]
    pool: ThreadPoolExecutor
    timers: Mapping[int, RegionTimer]
    progress: ProgressTracker
    journal: WriteJournal | None = None
    pass_index: int = 0
    append: Appending | None = None


def run_pass(w: WriteRun, job: PassJob) -> dict[str, int]:
    """Run one pass; tile counts ``tiles_run`` (read from the source) and ``tiles_replayed``.

    Each coarse level is reduced from the source's native cells by its cumulative factor.
    With ``w.native`` (``io="rust"``) the shards are encoded and stored by the kernel; the
    pass ends only when its uploads have finished (a storage error is raised here).
    """
    pyramid, spatial, native = w.pyramid, w.spatial, w.native
    arrays, levels, timers, journal, append = (
        job.arrays, job.levels, job.timers, job.journal, job.append
    )  # fmt: skip
    groups: list[tuple[str, int | None, list[Future[None]]]] = []
    logs: list[PassLog] = []
    coarse = [level for level in levels if level > 0]
    for index, name in enumerate(spatial):
        var = pyramid.source[name].variable
        log = journal.pass_log(job.pass_index, index, native) if journal is not None else None
        # A plain local Zarr source is read by the kernel (zarrs) when that gives xarray's
        # values exactly (source_reader.py); an append's sources are left as they are.
        values = append.sources[name] if append is not None else (native_reader(var) or var)

        if log is not None:
            logs.append(log)
        dsts = [arrays[f"0/{name}"] if 0 in levels else None]
        dsts += [arrays[f"{level}/{name}"] for level in coarse]
        spec = PyramidSpec(
            strides=[
                level_strides(var.dims, pyramid.factors[level], pyramid) for level in [0, *coarse]
            ],
            method=pyramid.method_for(name),
            fill_value=kernel_fill(pyramid.fill_values.get(name)),
            source_chunks=source_chunks(var),
            level0_block=level0_block(pyramid, name),
            max_region_bytes=w.options.max_region_bytes,
            # The threads of job.pool that run the tiles: whether the kernel splits a tile
            # over its own threads too depends on them (PyramidWriter._split_tiles).
            max_workers=w.workers,
            name=name,
            within=append.within[name] if append is not None else None,
        )
        hooks = WriteHooks(
            on_tile=job.progress.add,
            # Level 0 not written: its reads count for the first level of the pass.
            timers=[timers.get(levels[0])] + [timers.get(level) for level in coarse],
            sink=native,
            journal=log,
            replay_from=replay_source(arrays, name, var, log),
        )
        futures = write_pyramid_arrays(values, dsts, spec, hooks, job.pool)
        groups.append((name, None, futures))
    try:
        wait_groups(groups)
    except BaseException:
        # Let the uploads and records already queued settle before the error propagates, so a
        # rerun never races them; their own errors would only hide the first one.
        with contextlib.suppress(Exception):
            if native is not None:
                native.flush()
        for log in logs:
            with contextlib.suppress(Exception):
                log.close()
        raise
    if native is not None:
        native.flush()
    for log in logs:
        log.close()
    return {
        "tiles_run": sum(log.ran for log in logs),
        "tiles_replayed": sum(log.read_again for log in logs),
    }


def replay_source(
    arrays: Mapping[str, zarr.Array], name: str, var: xr.Variable, log: PassLog | None
) -> zarr.Array | None:
    """The stored level 0 a resumed pass reads finished tiles back from (not the source).

    Only when this plan wrote level 0 (the pass writes it, or an earlier pass did) with the
    source's own dtype, so the values read back are the source's values.
    """
    level0 = arrays.get(f"0/{name}")
    if log is None or level0 is None or level0.dtype != var.dtype:
        return None
    return level0


def level0_block(pyramid: Pyramid, name: str) -> tuple[int, ...]:
    """The plan's level-0 shard (or chunk), the smallest tile even when level 0 is not written.

    A subset of coarse levels then reads level 0 in tiles as small as a full write's (the
    coarsest levels accumulate across tiles) instead of tiles as big as a coarse shard.
    """
    enc = pyramid.encoding["/0"][name]
    return tuple(int(n) for n in (enc.get("shards") or enc["chunks"]))
