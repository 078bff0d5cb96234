"""What every engine writer shares: the hooks, the task loop over a plan of regions on a pool,
the reads and writes with their timers, and the errors that name the failing region.

:class:`RegionWriter` is the base of ``copy_array``'s and ``downsample_level``'s writers and of
the single-pass :class:`~topozarr_engine.pyramid_writer.PyramidWriter`. A subclass plans its
tasks (regions, or tiles with a replay flag) and says what one task does; the base runs them
and turns a failure into one :class:`~topozarr_engine.errors.RegionError`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from topozarr_engine.blocks import is_all_fill, materialize
from topozarr_engine.errors import RegionError
from topozarr_engine.pool import run_tasks
from topozarr_engine.region import Region
from topozarr_engine.specs import WriteSpec
from topozarr_engine.storage.sinks import ShardSink, ZarrShardSink
from topozarr_engine.tilelog import TileLog
from topozarr_engine.timer import RegionTimer, encode_seconds

__all__ = ["Piece", "RegionWriter", "Stage", "WriteHooks", "each_task"]


@dataclass
class WriteHooks:
    """What a caller plugs into a write; every hook is optional.

    Attributes
    ----------
    on_tile
        Called with the task's level-0 byte count after each task (tile or region) is done.
    on_read
        Called with ``(region, block)`` after each read (before anything is written).
    timers
        One ``RegionTimer`` (or ``None``) per level. Reads count for level 0; the pyramid
        writer's ``pyramid_tile`` call for the first inner level, each fold for its deep level.
    sink
        The :class:`~topozarr_engine.storage.sinks.ShardSink` that stores each region of whole
        shards: default the zarr-python path (``ZarrShardSink``), the ``NativeWriter`` for
        ``io="rust"``. A ``block`` is only valid during the sink's call (shard buffers are
        reused once it returns): a sink copies it to keep it.
    journal
        A :class:`~topozarr_engine.tilelog.TileLog`: the history of earlier runs of the same
        plan (finished tiles are skipped, or replayed when they feed a coarse shard not stored
        yet) and a ``record`` call after each tile task. ``None``: a fresh, unrecorded write.
        Only the pyramid writer keeps a journal.
    replay_from
        Where a replayed tile's level-0 values are read: the level-0 array an earlier run
        stored (same values and dtype as the values). ``None`` reads the values again.
    """

    on_tile: Callable[[int], None] | None = None
    on_read: Callable[[Region, np.ndarray], None] | None = None
    timers: Sequence[RegionTimer | None] | None = None
    sink: ShardSink | None = None
    journal: TileLog | None = None
    replay_from: Any | None = None


@dataclass
class Piece:
    """A region of one level to store: its values, the level's fill, and whether it is known
    to be all fill (``None``: look)."""

    level: int
    region: Region
    block: np.ndarray
    fill: Any
    empty: bool | None = None


class Stage:
    """Where a task is, for the message of a failure."""

    def __init__(self) -> None:
        self.level, self.name = 0, "read"

    def at(self, level: int, name: str) -> None:
        self.level, self.name = level, name


class RegionWriter:
    """A plan of region tasks run on a pool, with the reads, writes and errors they share.

    Subclasses implement :meth:`plan` (one key per task), :meth:`task_region` (the region a
    key's failure is reported for), :meth:`task_bytes` (for the default worker count) and
    :meth:`work` (what the task does, with :meth:`read` and :meth:`write`).

    Attributes
    ----------
    names_levels
        Whether failures name the level (a writer of several levels) or not (one array).
    read_hook_stage
        The stage a failure of ``hooks.on_read`` is reported in.
    """

    names_levels: ClassVar[bool] = True
    read_hook_stage: ClassVar[str] = "read"

    def __init__(self, spec: WriteSpec, hooks: WriteHooks) -> None:
        """``spec``: how to run (workers, empty regions, the name in errors)."""
        self.spec = spec
        self.hooks = hooks
        self.sink = hooks.sink or ZarrShardSink()
        # Bytes per level-0 element, for ``on_tile`` (a subclass sets it).
        self.itemsize = 0

    # What a subclass provides.

    def plan(self) -> Sequence[Hashable]:
        """One key per task, in submission order."""
        raise NotImplementedError

    def task_region(self, key: Any) -> Region:
        """The region a task reports (in its failure, and its size to ``on_tile``)."""
        raise NotImplementedError

    def task_bytes(self) -> int:
        """Memory one task holds, for the default worker count."""
        raise NotImplementedError

    def work(self, key: Any, region: Region, stage: Stage) -> None:
        """Do one task, moving ``stage`` along so that a failure names where it was."""
        raise NotImplementedError

    # The shared loop.

    def run(self, executor: ThreadPoolExecutor | None = None) -> list[Future[None]]:
        """Run every planned task (on ``executor``, or on the writer's own pool)."""
        return run_tasks(
            [functools.partial(self._task, key) for key in self.plan()],
            executor=executor,
            max_workers=self.spec.max_workers,
            region_bytes=self.task_bytes(),
        )

    def _level(self, level: int) -> int | None:
        return level if self.names_levels else None

    def _task(self, key: Any) -> None:
        region = self.task_region(key)
        stage = Stage()
        try:
            self.work(key, region, stage)
        except RegionError as exc:
            raise exc.with_context(variable=self.spec.name) from exc.cause
        except Exception as exc:
            raise RegionError(
                region,
                exc,
                variable=self.spec.name,
                level=self._level(stage.level),
                stage=stage.name,
            ) from exc
        if self.hooks.on_tile is not None:
            self.hooks.on_tile(region.size * self.itemsize)

    def timer(self, level: int) -> RegionTimer | None:
        """The level's timer, if the hooks give one."""
        timers = self.hooks.timers
        return timers[level] if timers is not None and level < len(timers) else None

    def read(self, source: Any, region: Region, stage: Stage) -> np.ndarray:
        """Read ``source[region]`` into memory (timed on level 0), then call ``on_read``."""
        t0 = time.perf_counter()
        block = materialize(source[region.slices])
        t = self.timer(0)
        if t is not None:
            t.add("read", time.perf_counter() - t0)
            t.count(bytes_read=block.nbytes)
        if self.hooks.on_read is not None:
            stage.at(stage.level, self.read_hook_stage)
            self.hooks.on_read(region, block)
        return block

    def write(self, dst: Any, piece: Piece) -> None:
        """Store ``piece`` in ``dst``, or skip it when it is all fill (``skip_empty``)."""
        t = self.timer(piece.level)
        region, block = piece.region, piece.block
        empty = piece.empty
        if self.spec.skip_empty and (is_all_fill(block, piece.fill) if empty is None else empty):
            if t is not None:
                t.count(regions=1, skipped=1, shape=region.shape)
            return
        t0, e0 = time.perf_counter(), encode_seconds()
        try:
            self.sink.write_region(dst, region, block)
        except Exception as exc:
            raise RegionError(
                region, exc, variable=self.spec.name, level=self._level(piece.level), stage="write"
            ) from exc
        if t is not None:
            t.add("write", time.perf_counter() - t0)
            t.add("encode", encode_seconds() - e0)
            t.count(regions=1, writes=1, bytes_written=block.nbytes, shape=region.shape)


def each_task(on_region: Callable[[], None] | None) -> Callable[[int], None] | None:
    """``on_tile`` for a caller whose progress callback takes no argument."""
    if on_region is None:
        return None
    return lambda _nbytes: on_region()
