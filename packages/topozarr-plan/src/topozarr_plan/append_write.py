"""``Pyramid.write(store, append_dim=...)``: add the plan's slices to a published pyramid.

The store stays published and readable throughout (see :mod:`topozarr_plan.append` for the
order of operations); the write holds the journal's lease and records its tiles, so a killed
append resumes with ``resume=True`` and the same new data.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from topozarr_engine import RegionTimer

from topozarr_plan.append import AppendPlan, append_arrays, extend_store, plan_append
from topozarr_plan.errors import PlanError
from topozarr_plan.fingerprint import describe_plan, differences, digest_of
from topozarr_plan.journal import journal_for
from topozarr_plan.passes import Appending, ProgressTracker, progress_total, run_pass
from topozarr_plan.publication import consolidate

if TYPE_CHECKING:
    from topozarr_plan.journal import WriteJournal
    from topozarr_plan.pyramid import Pyramid

__all__ = ["write_append"]


def write_append(
    pyramid: Pyramid,
    zstore: Any,
    where: str,
    *,
    dim: str,
    resume: bool,
    workers: int,
    max_region_bytes: int,
    native: Any,
    make_bar: Callable[[int], Any] | None,
) -> tuple[dict[Any, Any], AppendPlan]:
    """Append along ``dim``; returns the per-level timers (plus tile counts) and the plan."""
    spatial = list(pyramid.encoding["/0"])
    levels = list(range(len(pyramid.factors)))
    output = describe_plan(pyramid, spatial)
    plan = {**output, "append": dim, "max_region_bytes": max_region_bytes}
    journal = journal_for(zstore, plan, digest_of(output), where)
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
        if stored is None:
            journal.forget(keep_levels=False)
            journal.start()
        timers = _write_new_shards(
            pyramid, zstore, journal, append, spatial, levels, workers, max_region_bytes,
            native, make_bar,
        )  # fmt: skip
        journal.mark("extending")
        extend_store(pyramid, zstore, append, spatial)
        consolidate(zstore)
        journal.finish()
    except BaseException:
        with contextlib.suppress(Exception):
            journal.release()
        raise
    return timers, append


def _write_new_shards(
    pyramid: Pyramid,
    zstore: Any,
    journal: WriteJournal,
    append: AppendPlan,
    spatial: list[str],
    levels: list[int],
    workers: int,
    max_region_bytes: int,
    native: Any,
    make_bar: Callable[[int], Any] | None,
) -> dict[Any, Any]:
    arrays, sources, within = append_arrays(pyramid, append, spatial)
    if native is not None:
        native.check_root(sources[spatial[0]].stored)
    timers: dict[Any, Any] = {level: RegionTimer() for level in levels}
    counts: dict[str, float] = {"tiles_run": 0, "tiles_replayed": 0, "passes_skipped": 0}
    bar = make_bar(progress_total(pyramid, spatial, 1)) if make_bar else None
    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="topozarr") as pool:
            if journal.marked("passes/0"):
                counts["passes_skipped"] += 1
            else:
                ran = run_pass(
                    pyramid, arrays, spatial, levels, pool, timers, ProgressTracker(bar),
                    max_region_bytes, native, journal=journal,
                    append=Appending(sources=sources, within=within),
                )  # fmt: skip
                for key, n in ran.items():
                    counts[key] += n
                journal.mark("passes/0")
    finally:
        if bar is not None:
            bar.close()
    counts["append_s"] = time.perf_counter() - start
    timers["tiles"] = counts
    return timers
