"""``Pyramid.write``: create the level groups and stream every level into a Zarr store.

Order of operations, chosen so that a failed or killed write never leaves a store that claims
levels it does not hold:

1. Validate everything (levels, mode, io, progress dependency) before any I/O; ``mode="w"``
   refuses a target that holds anything but a Zarr store (``foreign.py``).
2. Take the write journal's lease (``journal.py``): a second writer fails here. A fresh write
   forgets earlier records, clears the store (``mode="w"``) or withdraws what this pyramid
   publishes (``mode="a"``: root attrs and consolidated metadata), and stores its plan.
3. Lay out the levels (``level_layout.py``): groups, coordinates, non-spatial variables and
   empty spatial arrays; a resume opens them instead.
4. Spatial variables are filled by the engine from the plan's source (level 0), in one pass
   over it by default. Variables run in parallel on one shared thread pool; the first error
   stops the pool. Each finished tile is recorded in the journal; a resume skips finished
   tiles, or replays them from the stored level 0 when they feed a coarse shard not stored.
5. Only when every level of the layout is complete: root attrs, then consolidated metadata
   (when the store supports it), then the journal is removed.

Every level, whichever path writes it, equals the reduction of the native (level-0) cells by
its cumulative factor, as ``as_datatree`` and xarray ``coarsen(boundary="trim")`` compute it: a
mean is never a mean of means, so NaN / fill holes and integer rounding give the same values on
every path. Stored levels are never read back, except level 0 by a resume.

``keep_levels_in_memory`` under the single-pass design: the coarser levels are never written
and re-read; they are computed from level-0 tiles while those are in memory, and only one
shard buffer per coarse level (plus small accumulators for the deepest levels) stays in memory.
``None`` picks that single pass whenever its estimated memory fits half the available memory,
``True`` forces it (``MemoryError`` when the estimate does not fit), ``False`` keeps only one
coarse level in memory at a time: one pass over the source per coarse level (level 0 is written
with the first), so the source is read once per level. A subset of levels (``levels=[...]``)
is one pass over the source that writes only those levels (level 0 is read, and written only
when requested).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from topozarr_engine import (
    DEFAULT_MAX_REGION_BYTES,
    RegionTimer,
)
from topozarr_engine.timer import breakdown

from topozarr_plan.errors import PlanError
from topozarr_plan.fingerprint import describe_plan, differences, digest_of
from topozarr_plan.foreign import check_replaceable
from topozarr_plan.journal import JOURNAL_PREFIX, WriteJournal, journal_for
from topozarr_plan.level_layout import write_templates
from topozarr_plan.native_target import native_writer
from topozarr_plan.passes import (
    ProgressTracker,
    default_workers,
    per_level_passes,
    progress_total,
    run_pass,
    use_single_pass,
)
from topozarr_plan.publication import is_published, publish, withdraw
from topozarr_plan.stores import resolve_store, store_errors

if TYPE_CHECKING:
    from topozarr_plan.pyramid import Pyramid

__all__ = ["write_pyramid"]

_MODES = ("w", "w-", "a", "r+")


def write_pyramid(
    pyramid: Pyramid,
    store: Any,
    *,
    mode: str = "w",
    max_workers: int | None = None,
    levels: list[int] | None = None,
    max_region_bytes: int = DEFAULT_MAX_REGION_BYTES,
    progress: bool = False,
    stats: bool = False,
    keep_levels_in_memory: bool | None = None,
    io: str = "python",
    resume: bool = False,
    append_dim: str | None = None,
    client: Any = None,
) -> dict[str, Any] | None:
    """Compute and write pyramid levels to a Zarr store (the body of ``Pyramid.write``).

    Parameters
    ----------
    pyramid
        The write plan.
    store
        A local path (``str`` / ``Path``), ``zarr.storage.LocalStore``, ``MemoryStore``,
        ``ObjectStore`` (obstore), an icechunk session store (``session.store``) or an
        icechunk ``Session``.
    mode
        ``"w"`` (default) replaces the store; ``"w-"`` fails if it exists; ``"a"`` / ``"r+"``
        keep the root group and the levels not being written. ``mode="w"`` with a subset of
        levels over a non-empty store raises instead of deleting the other levels.
    max_workers
        Thread pool size; default from the CPU count and available memory.
    levels
        Subset of levels to write (default all), in one pass over the source: each level is
        computed from the source by its cumulative factor, so no other level needs to exist.
    max_region_bytes
        Memory budget of one level-0 read region (tile), never less than one shard.
    progress
        Show a tqdm progress bar (bytes, rate, ETA); needs ``tqdm``.
    stats
        Return per-level timing: ``{"0": {...}, "1": {...}}`` with ``wall_s``, ``read_s``,
        ``reduce_s``, ``block_s`` (read + reduce), ``write_s`` (seconds summed across threads),
        ``regions``, ``skipped``, ``writes``, ``workers``, ``region_shapes`` and ``path``
        (``"single-pass"``, or ``"level-by-level"`` with ``keep_levels_in_memory=False``).
        Every level shares one ``wall_s``; tile reads count for level 0 (or, when level 0 is
        not written, for the first level of the pass) and the in-tile reduction for the
        first coarser level of each pass.
    keep_levels_in_memory
        See the module docstring: ``None`` auto, ``True`` force the single pass, ``False``
        one pass over the source per coarse level (one coarse level in memory at a time).
        Every path gives the same values: each level is reduced from the native cells by its
        cumulative factor.
    io
        ``"python"``: the kernel encodes each whole spatial shard (zarr-python's pipeline
        when the kernel does not know the codec chain) and zarr-python's store stores it.
        ``"rust"``: the kernel encodes each spatial shard with the array's codec chain (from
        its ``zarr.json``) and stores it through object_store, concurrently and with the GIL
        released; metadata, coordinates and non-spatial variables still go through
        zarr-python. Supports a local path, ``LocalStore``, an ``s3://`` URL and an
        obstore-backed ``ObjectStore``; any other store raises ``PlanError`` (a
        ``ValueError``) before anything is written.

    Returns
    -------
    dict or None
        Per-level stats when ``stats=True``.

    Raises
    ------
    PlanError (a ValueError)
        Bad ``mode`` / ``levels`` / ``io`` / ``max_workers``, or ``mode="w"`` with a level
        subset over an existing store (all before any write).
    ImportError
        ``progress=True`` without tqdm.
    MemoryError
        ``keep_levels_in_memory=True`` and the single pass does not fit in memory.
    topozarr_engine.RegionError
        A worker failed; the message names the variable, level and region.
    """
    t_start = time.perf_counter()
    if io not in ("python", "rust"):
        raise PlanError(f"io must be 'python' or 'rust', got {io!r}")
    if mode not in _MODES:
        raise PlanError(f"mode must be one of {_MODES}, got {mode!r}")
    if resume and mode not in ("w", "a"):
        raise PlanError(f"resume=True continues a write and cannot be combined with mode={mode!r}")
    if max_workers is not None and max_workers < 1:
        raise PlanError(f"max_workers must be >= 1, got {max_workers}")
    if max_region_bytes < 1:
        raise PlanError(f"max_region_bytes must be positive, got {max_region_bytes}")
    if append_dim is not None and (levels is not None or mode not in ("w", "a")):
        raise PlanError(
            "append_dim writes the new slices of every level into an existing pyramid: it "
            f"cannot be combined with levels={levels} or mode={mode!r}"
        )
    run = run_pass
    if client is not None:
        from topozarr_plan.cluster import check_cluster_write, cluster_pass, store_location

        check_cluster_write(
            pyramid,
            list(pyramid.encoding["/0"]),
            {"levels": levels, "append_dim": append_dim,
             "keep_levels_in_memory": keep_levels_in_memory},
        )  # fmt: skip
        # One pass whatever the memory here: each block task bounds its own memory.
        run = cluster_pass(client, store_location(store), io)
    nlevels = len(pyramid.factors)
    requested = _check_levels(levels, nlevels)
    subset = requested != list(range(nlevels))
    make_bar = _progress_factory() if progress else None
    spatial = list(pyramid.encoding["/0"])
    zstore = resolve_store(store)
    native = native_writer(zstore) if io == "rust" else None

    # obstore errors on this thread (metadata PUT/LIST) become StoreError: bucket and key,
    # never a secret.
    with store_errors(zstore):
        # --- open the root group and check the store, still without writing anything ---
        if append_dim is not None:
            return _append(
                pyramid, zstore, _where(store), append_dim, resume, max_workers,
                max_region_bytes, native, make_bar, stats, t_start,
            )  # fmt: skip
        existing = _open_existing(zstore)
        if mode in ("w", "w-") and not resume:  # both clear the target: only a Zarr store
            check_replaceable(zstore, mode=mode)
        if (
            mode == "w"
            and subset
            and not resume
            and existing is not None
            and _has_members(existing)
        ):
            raise PlanError(
                f"mode='w' with levels={requested} would delete the other levels of the existing "
                "store; use mode='a' to write a subset of levels"
            )
        if mode == "w-" and existing is not None:
            raise PlanError("mode='w-' but the store already holds a Zarr group")
        if mode == "r+" and existing is None:
            raise PlanError("mode='r+' but the store holds no Zarr group; use mode='w' or 'a'")

        workers = (
            max_workers
            if max_workers is not None
            else default_workers(pyramid, spatial, max_region_bytes)
        )
        if client is not None:  # the stats' "workers": the cluster's threads do the work
            workers = max(1, sum(client.nthreads().values()))
        single_pass = client is not None or use_single_pass(
            pyramid, spatial, keep_levels_in_memory, max_region_bytes, workers
        )
        passes = [requested] if single_pass else per_level_passes(requested)
        output = describe_plan(pyramid, spatial)
        if resume and keep_levels_in_memory is None:
            # The automatic choice follows the memory available now; a resume keeps the
            # passes of the write it continues.
            passes = _stored_passes(zstore, passes)
            single_pass = len(passes) == 1
        plan = {
            **output,
            "levels": requested,
            "passes": passes,
            "max_region_bytes": max_region_bytes,
        }
        journal = journal_for(zstore, plan, digest_of(output), _where(store))
        state = _resume_state(journal, resume, existing, pyramid)
        # resume=True may take over the lease of a killed write even before it stored its plan.
        journal.acquire(resume=resume)
        try:
            if state == "published":
                journal.finish()  # only the journal of a finished write was left
                timers, complete = _nothing_written(requested), True
            else:
                timers, complete = _write_under_lease(
                    pyramid,
                    zstore,
                    journal,
                    state == "resume",
                    mode,
                    existing,
                    requested,
                    spatial,
                    passes,
                    workers,
                    max_region_bytes,
                    native,
                    make_bar,
                    run,
                )
        except BaseException:
            # The write is over (its records stay for resume=True); a kill keeps the lease.
            with contextlib.suppress(Exception):
                journal.release()
            raise
    wall = time.perf_counter() - t_start
    if not stats:
        return None
    counts = timers.pop("tiles")
    total = breakdown([timers[level] for level in requested], wall, workers)
    return {
        str(level): {
            **timers[level].as_dict(),
            # The documented name for "time to produce the level's blocks": read + reduce.
            "block_s": timers[level].read_s + timers[level].reduce_s,
            "wall_s": wall,
            "workers": workers,
            "breakdown": total,  # the whole write's, the same in every level's entry
            "path": "single-pass" if single_pass else "level-by-level",
            "complete": complete,
            **counts,
        }
        for level in requested
    }


def _append(
    pyramid: Pyramid,
    zstore: Any,
    where: str,
    dim: str,
    resume: bool,
    max_workers: int | None,
    max_region_bytes: int,
    native: Any,
    make_bar: Callable[[int], Any] | None,
    stats: bool,
    t_start: float,
) -> dict[str, Any] | None:
    from topozarr_plan.append_write import write_append

    spatial = list(pyramid.encoding["/0"])
    workers = max_workers or default_workers(pyramid, spatial, max_region_bytes)
    timers, plan = write_append(
        pyramid, zstore, where, dim=dim, resume=resume, workers=workers,
        max_region_bytes=max_region_bytes, native=native, make_bar=make_bar,
    )  # fmt: skip
    if not stats:
        return None
    counts = timers.pop("tiles")
    wall = time.perf_counter() - t_start
    total = breakdown(list(timers.values()), wall, workers)
    return {
        str(level): {
            **timer.as_dict(),
            "block_s": timer.read_s + timer.reduce_s,
            "wall_s": wall,
            "workers": workers,
            "breakdown": total,
            "path": "append",
            "complete": True,
            "append": {"dim": dim, "from": plan.old, "to": plan.total},
            **counts,
        }
        for level, timer in timers.items()
    }


def _resume_state(
    journal: WriteJournal, resume: bool, existing: zarr.Group | None, pyramid: Pyramid
) -> str:
    """``"fresh"``, ``"resume"`` (continue an interrupted write) or ``"published"``.

    Checked before the lease is taken.
    """
    if not resume:
        return "fresh"
    stored = journal.stored_plan()
    if stored is None:
        # No plan stored: killed before the first byte (a fresh write), or after publishing
        # while the journal was being removed (complete: only the journal is left to remove).
        if is_published(existing, pyramid):
            return "published"
        if existing is not None and _has_members(existing):
            raise PlanError(
                f"resume=True but {journal.where} holds no interrupted topozarr write (no write "
                "journal); write it again with mode='w', or mode='a' to keep its other levels"
            )
        return "fresh"  # nothing was written yet
    changed = differences(stored, journal.plan)
    if changed:
        raise PlanError(
            f"resume=True but the interrupted write in {journal.where} was of another plan "
            f"(different {', '.join(changed)}); resume with the same source and options, or "
            "start over with mode='w'"
        )
    return "resume"


def _stored_passes(zstore: Any, passes: list[list[int]]) -> list[list[int]]:
    stored = journal_for(zstore, {}, "", "").stored_plan() or {}
    found = stored.get("passes")
    return found if isinstance(found, list) and found else passes


def _nothing_written(requested: list[int]) -> dict[Any, Any]:
    timers: dict[Any, Any] = {level: RegionTimer() for level in requested}
    timers["tiles"] = {"tiles_run": 0, "tiles_replayed": 0, "passes_skipped": 0}
    return timers


def _write_under_lease(
    pyramid: Pyramid,
    zstore: Any,
    journal: WriteJournal,
    resuming: bool,
    mode: str,
    existing: zarr.Group | None,
    requested: list[int],
    spatial: list[str],
    passes: list[list[int]],
    workers: int,
    max_region_bytes: int,
    native: Any,
    make_bar: Callable[[int], Any] | None,
    run: Callable[..., dict[str, int]] = run_pass,
) -> tuple[dict[Any, Any], bool]:
    """Lay out, compute and (when complete) publish; the caller holds the lease.

    ``run`` runs one pass (``passes.run_pass``, or the cluster's stand-in for ``client=``).
    """
    nlevels = len(pyramid.factors)
    published_before = mode != "w" and is_published(existing, pyramid)
    if resuming and journal.marked("templates"):
        arrays = _open_arrays(zstore, requested, spatial)
        withdraw(zstore, pyramid)
    else:
        if not resuming:
            # Before any data is deleted: records of an earlier run must not outlive it.
            journal.forget(keep_levels=mode != "w")
            if published_before:
                # The store is this pyramid, complete. Remember that of the levels kept before
                # withdrawing the metadata that says so: a resume of this write needs it.
                for level in set(range(nlevels)) - set(requested):
                    journal.mark_level(level)
        if (mode in ("a", "r+") and existing is not None) or resuming:
            withdraw(zstore, pyramid)
        else:
            if mode == "w":
                _clear(zstore)
            # "a" on a store without a v3 root group creates one and deletes nothing.
            zarr.open_group(zstore, mode="a", zarr_format=3)
        if not resuming:
            journal.start()
        arrays = write_templates(pyramid, zstore, requested, spatial)
        journal.mark("templates")

    timers: dict[Any, Any] = {level: RegionTimer() for level in requested}
    counts = {"tiles_run": 0, "tiles_replayed": 0, "passes_skipped": 0}
    bar = make_bar(progress_total(pyramid, spatial, len(passes))) if make_bar else None
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="topozarr") as pool:
            tracker = ProgressTracker(bar)
            per_pass = progress_total(pyramid, spatial, 1)
            for done, levels_of_pass in enumerate(passes, start=1):
                if journal.marked(f"passes/{done - 1}"):
                    counts["passes_skipped"] += 1
                else:
                    ran = run(
                        pyramid,
                        arrays,
                        spatial,
                        levels_of_pass,
                        pool,
                        timers,
                        tracker,
                        max_region_bytes,
                        native,
                        journal=journal,
                        pass_index=done - 1,
                    )
                    for key, n in ran.items():
                        counts[key] += n
                    journal.mark(f"passes/{done - 1}")
                tracker.reach(done * per_pass)
    finally:
        if bar is not None:
            bar.close()
    for level in requested:
        journal.mark_level(level)
    timers["tiles"] = counts

    # --- publish last, and only a complete pyramid ---
    done_before = journal.complete_levels()
    complete = published_before or all(
        level in requested or level in done_before for level in range(nlevels)
    )
    if complete:
        publish(zstore, pyramid)
        journal.finish()
    else:
        journal.release()
    return timers, complete


def _clear(zstore: Any) -> None:
    """Delete the store's contents except the write journal (whose lease we hold)."""

    async def clear() -> None:
        names = [name.strip("/") async for name in zstore.list_dir("")]
        for name in names:
            if name != JOURNAL_PREFIX:
                # A name is a key (zarr.json), a "directory" of keys (a level group), or both;
                # LocalStore.delete removes either, object stores need delete_dir for the keys.
                await zstore.delete(name)
                await zstore.delete_dir(name)

    from zarr.core.sync import sync

    sync(clear())


def _open_arrays(zstore: Any, levels: list[int], spatial: list[str]) -> dict[str, zarr.Array]:
    """The level arrays an interrupted run created (a resume must not create them again)."""
    out: dict[str, zarr.Array] = {}
    for level in levels:
        for name in spatial:
            arr = zarr.open_array(zstore, path=f"{level}/{name}", mode="r+")
            out[f"{level}/{name}"] = arr
    return out


def _where(store: Any) -> str:
    """The store as a path or URL for messages (never a secret)."""
    if isinstance(store, str | os.PathLike):
        return str(store)
    root = getattr(store, "root", None)
    if root is not None:
        return str(root)
    return type(store).__name__


# ----------------------------------------------------------------------------- validation


def _check_levels(levels: Sequence[int] | None, nlevels: int) -> list[int]:
    if levels is None:
        return list(range(nlevels))
    out = []
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, int | np.integer):
            raise PlanError(f"levels must be integers, got {level!r}")
        if not 0 <= int(level) < nlevels:
            raise PlanError(f"level {level} is out of range: the plan has levels 0..{nlevels - 1}")
        out.append(int(level))
    if not out:
        raise PlanError("levels is empty; pass None to write every level")
    if len(set(out)) != len(out):
        raise PlanError(f"levels has duplicates: {list(levels)}")
    return sorted(out)


def _progress_factory() -> Callable[[int], Any]:
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError(
            "progress=True needs tqdm: pip install 'topozarr[progress]' (or pip install tqdm)"
        ) from exc

    def make(total: int) -> Any:
        return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="pyramid")

    return make


# ----------------------------------------------------------------------------- stores


def _open_existing(zstore: Any) -> zarr.Group | None:
    try:
        return zarr.open_group(zstore, mode="r", zarr_format=3, use_consolidated=False)
    except (
        FileNotFoundError,
        KeyError,
        zarr.errors.GroupNotFoundError,
        zarr.errors.ContainsArrayError,
    ):
        return None


def _has_members(group: zarr.Group) -> bool:
    return any(True for _ in group.members())
