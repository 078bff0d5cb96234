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
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from topozarr_engine import (
    RegionTimer,
)
from topozarr_engine.storage import StorageTarget, resolve_target, store_errors
from topozarr_engine.timer import breakdown

from topozarr_plan.errors import PlanError
from topozarr_plan.fingerprint import describe_plan, differences, digest_of
from topozarr_plan.foreign import check_replaceable
from topozarr_plan.journal import JOURNAL_PREFIX, WriteJournal, journal_for
from topozarr_plan.level_layout import write_templates
from topozarr_plan.passes import (
    PassJob,
    ProgressTracker,
    default_workers,
    per_level_passes,
    progress_total,
    run_pass,
    use_single_pass,
)
from topozarr_plan.publication import is_published, publish, withdraw
from topozarr_plan.write_options import WriteOptions, WriteRun

if TYPE_CHECKING:
    from topozarr_plan.pyramid import Pyramid

__all__ = ["write_pyramid"]


def write_pyramid(
    pyramid: Pyramid, store: Any, options: WriteOptions | None = None
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
    options
        The options of :meth:`~topozarr_plan.pyramid.Pyramid.write`, whose docstring
        describes each (modes, level subsets, ``io``, resume, appends, clusters, stats).

    Returns
    -------
    dict or None
        Per-level stats when ``options.stats``.

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
    options = options or WriteOptions()
    options.check()
    target = resolve_target(store, check=False)  # no request yet
    run = _pass_runner(pyramid, target, options)
    requested = _check_levels(options.levels, len(pyramid.factors))
    make_bar = _progress_factory() if options.progress else None
    target.check_access()
    zstore = target.store
    w = WriteRun(
        pyramid=pyramid,
        target=target,
        options=options,
        spatial=list(pyramid.encoding["/0"]),
        requested=requested,
        native=target.native_writer() if options.io == "rust" else None,
        make_bar=make_bar,
        run=run,
    )
    # obstore errors on this thread (metadata PUT/LIST) become StoreError: bucket and key,
    # never a secret.
    with store_errors(zstore):
        if options.append_dim is not None:
            return _append(w, t_start)
        existing = _open_existing(zstore)
        _check_store(w, existing)  # still without writing anything
        w.workers = _workers(w)
        passes, single_pass = _passes(w)
        output = describe_plan(pyramid, w.spatial)
        plan = {
            **output,
            "levels": requested,
            "passes": passes,
            "max_region_bytes": options.max_region_bytes,
        }
        journal = journal_for(target, plan, digest_of(output))
        state = _resume_state(journal, options.resume, existing, pyramid)
        # resume=True may take over the lease of a killed write even before it stored its plan.
        journal.acquire(resume=options.resume)
        try:
            if state == "published":
                journal.finish()  # only the journal of a finished write was left
                timers, complete = _nothing_written(requested), True
            else:
                timers, complete = _write_under_lease(
                    w, journal, state == "resume", existing, passes
                )
        except BaseException:
            # The write is over (its records stay for resume=True); a kill keeps the lease.
            with contextlib.suppress(Exception):
                journal.release()
            raise
    if not options.stats:
        return None
    path = "single-pass" if single_pass else "level-by-level"
    return _stats(w, timers, time.perf_counter() - t_start, {"path": path, "complete": complete})


def _pass_runner(pyramid: Pyramid, target: StorageTarget, options: WriteOptions) -> Any:
    """``run_pass``, or with ``client=`` the cluster's (after checking what it supports)."""
    if options.client is None:
        return run_pass
    from topozarr_plan.cluster import check_cluster_target, check_cluster_write, cluster_pass

    check_cluster_write(
        pyramid,
        list(pyramid.encoding["/0"]),
        {"levels": options.levels, "append_dim": options.append_dim,
         "keep_levels_in_memory": options.keep_levels_in_memory},
    )  # fmt: skip
    # One pass whatever the memory here: each block task bounds its own memory.
    check_cluster_target(target)
    return cluster_pass(options.client, target, options.io)


def _check_store(w: WriteRun, existing: zarr.Group | None) -> None:
    """What the mode allows over what the store holds (``mode="w"`` never deletes a user's)."""
    mode, resume = w.options.mode, w.options.resume
    subset = w.requested != list(range(len(w.pyramid.factors)))
    if mode in ("w", "w-") and not resume:  # both clear the target: only a Zarr store
        check_replaceable(w.zstore, mode=mode)
    if mode == "w" and subset and not resume and existing is not None and _has_members(existing):
        raise PlanError(
            f"mode='w' with levels={w.requested} would delete the other levels of the existing "
            "store; use mode='a' to write a subset of levels"
        )
    if mode == "w-" and existing is not None:
        raise PlanError("mode='w-' but the store already holds a Zarr group")
    if mode == "r+" and existing is None:
        raise PlanError("mode='r+' but the store holds no Zarr group; use mode='w' or 'a'")


def _workers(w: WriteRun) -> int:
    """The thread count; on a cluster (for the stats) the cluster's threads."""
    if w.options.client is not None:
        return max(1, sum(w.options.client.nthreads().values()))
    if w.options.max_workers is not None:
        return w.options.max_workers
    return default_workers(w.pyramid, w.spatial, w.options.max_region_bytes)


def _passes(w: WriteRun) -> tuple[list[list[int]], bool]:
    """The levels of each pass over the source (one pass when the memory allows), and
    whether that is a single pass."""
    opts = w.options
    single_pass = opts.client is not None or use_single_pass(
        w.pyramid, w.spatial, opts.keep_levels_in_memory, opts.max_region_bytes, w.workers
    )
    passes = [w.requested] if single_pass else per_level_passes(w.requested)
    if opts.resume and opts.keep_levels_in_memory is None:
        # The automatic choice follows the memory available now; a resume keeps the passes
        # of the write it continues.
        passes = _stored_passes(w.target, passes)
        single_pass = len(passes) == 1
    return passes, single_pass


def _stats(
    w: WriteRun, timers: dict[Any, Any], wall: float, extra: dict[str, Any]
) -> dict[str, Any]:
    """Per-level stats: the level's timer, the whole write's wall time and breakdown."""
    counts = timers.pop("tiles")
    levels = [level for level in timers if isinstance(level, int)]
    total = breakdown([timers[level] for level in levels], wall, w.workers)
    return {
        str(level): {
            **timers[level].as_dict(),
            # The documented name for "time to produce the level's blocks": read + reduce.
            "block_s": timers[level].read_s + timers[level].reduce_s,
            "wall_s": wall,
            "workers": w.workers,
            "breakdown": total,  # the whole write's, the same in every level's entry
            **extra,
            **counts,
        }
        for level in levels
    }


def _append(w: WriteRun, t_start: float) -> dict[str, Any] | None:
    from topozarr_plan.append_write import write_append

    w.workers = w.options.max_workers or default_workers(
        w.pyramid, w.spatial, w.options.max_region_bytes
    )
    timers, plan = write_append(w)
    if not w.options.stats:
        return None
    append = {"dim": plan.dim, "from": plan.old, "to": plan.total}
    extra = {"path": "append", "complete": True, "append": append}
    return _stats(w, timers, time.perf_counter() - t_start, extra)


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
        if journal.interrupted_before_start():
            # The store holds what it held before that write: maybe a pyramid of the same
            # layout from other data. Write it all.
            return "fresh"
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


def _stored_passes(target: StorageTarget, passes: list[list[int]]) -> list[list[int]]:
    stored = journal_for(target, {}, "").stored_plan() or {}
    found = stored.get("passes")
    return found if isinstance(found, list) and found else passes


def _nothing_written(requested: list[int]) -> dict[Any, Any]:
    timers: dict[Any, Any] = {level: RegionTimer() for level in requested}
    timers["tiles"] = {"tiles_run": 0, "tiles_replayed": 0, "passes_skipped": 0}
    return timers


def _write_under_lease(
    w: WriteRun,
    journal: WriteJournal,
    resuming: bool,
    existing: zarr.Group | None,
    passes: list[list[int]],
) -> tuple[dict[Any, Any], bool]:
    """Lay out, compute and (when complete) publish; the caller holds the lease."""
    published_before = w.options.mode != "w" and is_published(existing, w.pyramid)
    arrays = _lay_out(w, journal, resuming, existing, published_before)
    # Shards a killed write was streaming (temporary files, never read as chunks).
    w.target.remove_partial_shards()
    timers = _run_passes(w, journal, arrays, passes)
    # And those of a cluster's task whose worker died mid-shard (dask ran the task again).
    w.target.remove_partial_shards()
    for level in w.requested:
        journal.mark_level(level)

    # --- publish last, and only a complete pyramid ---
    done_before = journal.complete_levels()
    complete = published_before or all(
        level in w.requested or level in done_before for level in range(len(w.pyramid.factors))
    )
    if complete:
        publish(w.zstore, w.pyramid)
        journal.finish()
    else:
        journal.release()
    return timers, complete


def _lay_out(
    w: WriteRun,
    journal: WriteJournal,
    resuming: bool,
    existing: zarr.Group | None,
    published_before: bool,
) -> dict[str, zarr.Array]:
    """The level groups and empty arrays (or, resuming, those an earlier run made)."""
    pyramid, zstore, mode = w.pyramid, w.zstore, w.options.mode
    if resuming and journal.marked("templates"):
        arrays = _open_arrays(zstore, w.requested, w.spatial)
        withdraw(zstore, pyramid)
        return arrays
    if not resuming:
        # Before any data is deleted: records of an earlier run must not outlive it.
        journal.forget(keep_levels=mode != "w")
        if published_before:
            # The store is this pyramid, complete. Remember that of the levels kept before
            # withdrawing the metadata that says so: a resume of this write needs it.
            for level in set(range(len(pyramid.factors))) - set(w.requested):
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
    arrays = write_templates(pyramid, w.target, w.requested, w.spatial)
    journal.mark("templates")
    return arrays


def _run_passes(
    w: WriteRun, journal: WriteJournal, arrays: dict[str, zarr.Array], passes: list[list[int]]
) -> dict[Any, Any]:
    """Every pass the journal has not marked done; the timers and the tile counts."""
    timers: dict[Any, Any] = {level: RegionTimer() for level in w.requested}
    counts = {"tiles_run": 0, "tiles_replayed": 0, "passes_skipped": 0}
    bar = w.make_bar(progress_total(w.pyramid, w.spatial, len(passes))) if w.make_bar else None
    try:
        with ThreadPoolExecutor(max_workers=w.workers, thread_name_prefix="topozarr") as pool:
            tracker = ProgressTracker(bar)
            per_pass = progress_total(w.pyramid, w.spatial, 1)
            for done, levels_of_pass in enumerate(passes, start=1):
                if journal.marked(f"passes/{done - 1}"):
                    counts["passes_skipped"] += 1
                else:
                    job = PassJob(arrays, levels_of_pass, pool, timers, tracker, journal, done - 1)
                    ran = w.run(w, job)
                    for key, n in ran.items():
                        counts[key] += n
                    journal.mark(f"passes/{done - 1}")
                tracker.reach(done * per_pass)
    finally:
        if bar is not None:
            bar.close()
    timers["tiles"] = counts
    return timers


def _clear(zstore: Any) -> None:
    """Delete the store's contents except the write journal (whose lease we hold).

    The root's ``zarr.json`` goes first: until it is gone the root still publishes the
    pyramid the store held, and a write killed while deleting its levels must not leave that
    root over missing levels (readers would see holes, and a resume would take the store for
    a finished write). Object stores list keys in lexicographic order, level groups before
    ``zarr.json``.
    """

    async def clear() -> None:
        await zstore.delete("zarr.json")
        names = [name.strip("/") async for name in zstore.list_dir("")]
        for name in names:
            if name not in (JOURNAL_PREFIX, "zarr.json"):
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
