"""``Pyramid.write(store, append_dim=...)``: add the plan's slices to a published pyramid.

The store stays published and readable throughout (see :mod:`topozarr_plan.append` for the
order of operations); the write holds the journal's lease and records its tiles, so a killed
append resumes with ``resume=True`` and the same new data.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from topozarr_engine import RegionTimer

from topozarr_plan.append import AppendPlan, append_arrays, extend_store, plan_append
from topozarr_plan.errors import PlanError
from topozarr_plan.fingerprint import describe_plan, differences, digest_of
from topozarr_plan.journal import journal_for
from topozarr_plan.passes import (
    Appending,
    PassJob,
    ProgressTracker,
    progress_total,
    run_pass,
)
from topozarr_plan.publication import consolidate

if TYPE_CHECKING:
    from topozarr_plan.journal import WriteJournal
    from topozarr_plan.write_options import WriteRun

__all__ = ["write_append"]


def write_append(w: WriteRun) -> tuple[dict[Any, Any], AppendPlan]:
    """Append along ``w.options.append_dim``; the per-level timers (plus tile counts), the plan."""
    pyramid, zstore, where = w.pyramid, w.zstore, w.where
    dim, resume = w.options.append_dim, w.options.resume
    assert dim is not None
    levels = list(range(len(pyramid.factors)))
    output = describe_plan(pyramid, w.spatial)
    plan = {**output, "append": dim, "max_region_bytes": w.options.max_region_bytes}
    journal = journal_for(w.target, plan, digest_of(output))
    stored = journal.stored_plan() if resume else None
    old = None
    if stored is not None:
        changed = differences({k: v for k, v in stored.items() if k != "append_from"}, plan)
        if changed:
            raise PlanError(
                f"resume=True but the interrupted write in {where} was of another plan "
                f"(different {', '.join(changed)}); resume with the same new data and options"
            )
        old = int(stored["append_from"])
    append = plan_append(pyramid, zstore, dim, where, old=old)
    journal.plan = {**plan, "append_from": append.old}
    journal.acquire(resume=resume)
    try:
        w.target.remove_partial_shards()  # left by a killed write that streamed shards
        if stored is None:
            journal.forget(keep_levels=False)
            journal.start()
        timers = _write_new_shards(w, journal, append, levels)
        journal.mark("extending")
        extend_store(pyramid, zstore, append, w.spatial)
        consolidate(zstore)
        journal.finish()
    except BaseException:
        with contextlib.suppress(Exception):
            journal.release()
        raise
    return timers, append


def _write_new_shards(
    w: WriteRun, journal: WriteJournal, append: AppendPlan, levels: list[int]
) -> dict[Any, Any]:
    pyramid, spatial = w.pyramid, w.spatial
    arrays, sources, within = append_arrays(pyramid, append, spatial)
    if w.native is not None:
        w.native.check_root(sources[spatial[0]].stored)
    timers: dict[Any, Any] = {level: RegionTimer() for level in levels}
    counts: dict[str, float] = {"tiles_run": 0, "tiles_replayed": 0, "passes_skipped": 0}
    bar = w.make_bar(progress_total(pyramid, spatial, 1)) if w.make_bar else None
    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=w.workers, thread_name_prefix="topozarr") as pool:
            if journal.marked("passes/0"):
                counts["passes_skipped"] += 1
            else:
                job = PassJob(
                    arrays, levels, pool, timers, ProgressTracker(bar), journal,
                    append=Appending(sources=sources, within=within),
                )  # fmt: skip
                ran = run_pass(w, job)
                for key, n in ran.items():
                    counts[key] += n
                journal.mark("passes/0")
    finally:
        if bar is not None:
            bar.close()
    counts["append_s"] = time.perf_counter() - start
    timers["tiles"] = counts
    return timers
