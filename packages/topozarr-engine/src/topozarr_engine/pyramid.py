"""The single-pass pyramid writer: read level 0 once, write every level, read nothing back.

Algorithm (docs/design.md, "Engine (`topozarr-engine`) and `Pyramid.write`"):

1. Level 0 is read in tiles aligned to its shards, widened to whole source chunks (each source
   chunk decoded once) and to multiples of the pyramid strides when that fits
   ``max_region_bytes``. Each tile is written to level 0 as soon as it is read.
2. "Inner" levels, whose cumulative stride divides the tile edge, get their final values for the
   cells the tile covers from one ``pyramid_tile`` kernel call (exact: every level is computed
   from native cells). "Deep" levels, whose windows span several tiles, fold the tile into a
   whole-level accumulator (sum + count, running max/min, top-left cell).
3. Inner-level values go into an in-memory buffer of the level shard they belong to; a shard is
   written as soon as its last contributing tile is in (a countdown per shard). Deep-level
   shards are finalised from the accumulator the same way.
4. Tiles are visited in Z-order over the spatial axes, so with power-of-two edges the tiles
   under a coarse shard are one contiguous run and few shard buffers are open at once. Peak
   memory is about ``workers x tile x 3`` plus one shard per level (plus the deep levels'
   accumulators, which are small: they are the coarsest levels).
5. Written levels are never read back; regions whose values are all fill are not written.
6. With a ``journal`` (a :class:`~topozarr_engine.tilelog.TileLog`), each finished tile task is
   recorded; a rerun of the same plan skips finished tiles and replays, from ``replay_from``
   (the stored level 0), only those that still feed a coarse shard not yet stored.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from topozarr_engine import kernel, shards
from topozarr_engine.accumulate import LevelAccumulator
from topozarr_engine.blocks import array_block_shape, empty_value, is_all_fill, materialize
from topozarr_engine.buffers import BufferPool
from topozarr_engine.errors import RegionError
from topozarr_engine.pool import run_tasks
from topozarr_engine.region import Region, coarsened_shape, grid_shape, morton_order, region_block
from topozarr_engine.resources import DEFAULT_MAX_REGION_BYTES
from topozarr_engine.tilelog import TileHistory, TileLog
from topozarr_engine.timer import RegionTimer, encode_seconds

__all__ = [
    "PyramidLayout",
    "PyramidSpec",
    "PyramidWriter",
    "WriteHooks",
    "plan_tiles",
    "write_pyramid_arrays",
]

Index = tuple[int, ...]


@dataclass
class PyramidLayout:
    """How the single-pass writer cuts level 0 and which levels it accumulates.

    Attributes
    ----------
    tile
        Tile (level-0 region) shape.
    inner
        Levels computed inside each tile by ``pyramid_tile``.
    deep
        Levels accumulated across tiles.
    order
        Tile grid indices in visiting (Z-) order.
    """

    tile: tuple[int, ...]
    inner: list[int]
    deep: list[int]
    order: list[tuple[int, ...]] = field(repr=False)

    def tile_region(self, index: Sequence[int], shape: Sequence[int]) -> Region:
        """Level-0 region of the tile at grid ``index``."""
        start = [i * t for i, t in zip(index, self.tile, strict=True)]
        stop = [min(a + t, n) for a, t, n in zip(start, self.tile, shape, strict=True)]
        return Region.from_bounds(start, stop)


def plan_tiles(
    shape: Sequence[int],
    itemsize: int,
    shard: Sequence[int],
    spec: PyramidSpec,
) -> PyramidLayout:
    """Choose the tile shape and split the levels into inner and deep ones.

    Parameters
    ----------
    shape, itemsize
        Level-0 shape and bytes per element.
    shard
        Level-0 shard (or chunk) shape: tiles are multiples of it.
    spec
        Its strides, source chunks and tile budget (``max_region_bytes``) decide.
    """
    shape = tuple(int(n) for n in shape)
    strides = [tuple(int(s) for s in st) for st in spec.strides]
    source_chunks, max_region_bytes = spec.source_chunks, spec.max_region_bytes
    tile = region_block(
        shape, itemsize, shard, widen_to=source_chunks, max_region_bytes=max_region_bytes
    )
    # Widen to multiples of the strides, coarsest-first would overshoot the budget at once,
    # so go finest-first and stop at the first level that does not fit.
    for stride in strides[1:]:
        wider = region_block(
            shape, itemsize, tile, widen_to=stride, max_region_bytes=max_region_bytes
        )
        if all(w % s == 0 or w >= n for w, s, n in zip(wider, stride, shape, strict=True)):
            tile = wider
        else:
            break
    inner: list[int] = []
    deep: list[int] = []
    for level, stride in enumerate(strides):
        if level == 0:
            continue
        # A tile covering a whole axis starts at 0 there, so any stride fits it.
        fits = all(
            (t % s == 0 or t >= n) and n >= s for t, s, n in zip(tile, stride, shape, strict=True)
        )
        # Inner levels must be a prefix (pyramid_tile needs each stride to divide the next).
        (inner if fits and len(deep) == 0 else deep).append(level)
    spatial = [a for a in range(len(shape)) if any(s[a] > 1 for s in strides)]
    order = morton_order(
        itertools.product(*(range(g) for g in grid_shape(shape, tile))), axes=spatial or None
    )
    return PyramidLayout(tile=tile, inner=inner, deep=deep, order=order)


def _cells(region: Region, stride: Sequence[int], level_shape: Sequence[int]) -> Region:
    """Level cells whose windows intersect a level-0 region (clipped to the level shape)."""
    start = [min(a // s, m) for a, s, m in zip(region.start, stride, level_shape, strict=True)]
    stop = [min(-(-b // s), m) for b, s, m in zip(region.stop, stride, level_shape, strict=True)]
    return Region.from_bounds(start, [max(a, b) for a, b in zip(start, stop, strict=True)])


def _shards_of(cells: Region, shard: Sequence[int]) -> list[tuple[int, ...]]:
    if cells.is_empty():
        return []
    ranges = [
        range(a // s, -(-b // s)) for a, b, s in zip(cells.start, cells.stop, shard, strict=True)
    ]
    return list(itertools.product(*ranges))


def _shard_region(index: Sequence[int], shard: Sequence[int], shape: Sequence[int]) -> Region:
    start = [i * s for i, s in zip(index, shard, strict=True)]
    return Region.from_bounds(
        start, [min(a + s, n) for a, s, n in zip(start, shard, shape, strict=True)]
    )


class _Level:
    """Shard buffers, countdowns and (for deep levels) the accumulator of one level."""

    def __init__(
        self, level: int, dst: Any, stride: tuple[int, ...], spec: PyramidSpec, acc: Any
    ) -> None:
        """``acc``: the level's accumulator when it is deep (its windows span tiles)."""
        self.level = level
        self.dst = dst
        self.stride = stride
        self.shape = tuple(int(n) for n in dst.shape)
        self.shard = array_block_shape(dst)
        self.dtype = np.dtype(dst.dtype)
        self.fill = dst.fill_value
        self.empty = empty_value(spec.method, self.dtype, spec.fill_value)
        self.countdown: dict[tuple[int, ...], int] = {}
        # Shards an earlier run of the same plan stored (resume): never touched again.
        self.closed: frozenset[tuple[int, ...]] = frozenset()
        # The level cells to write (``within``); the rest of an open shard is read back.
        self.within: Region | None = None
        self.buffers: dict[tuple[int, ...], np.ndarray] = {}
        self.lock = threading.Lock()
        self.acc = acc


def _read_back(lv: _Level, region: Region) -> np.ndarray:
    """The stored values of a level region (a shard that reaches past ``within``)."""
    return np.array(lv.dst[region.slices], dtype=lv.dtype)


def _shards_outside(lv: _Level, cells: Region) -> frozenset[tuple[int, ...]]:
    """The level's shards that do not meet ``cells``."""
    every = _shards_of(Region.from_bounds([0] * len(lv.shape), list(lv.shape)), lv.shard)
    meets = set(_shards_of(cells, lv.shard))
    return frozenset(s for s in every if s not in meets)


def _same_fill(a: Any, b: Any) -> bool:
    """True when fill values ``a`` and ``b`` mark the same cells (NaN equal to NaN)."""
    if a is None or b is None:
        return False
    try:
        return bool(a == b) or bool(np.isnan(a) and np.isnan(b))
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class PyramidSpec:
    """What a single-pass write computes.

    Attributes
    ----------
    strides
        Cumulative stride per level and axis; ``strides[0]`` is all ones, each divides the next
        (1 on non-spatial axes such as time or band).
    method, fill_value, skipna
        As for ``kernel.block_reduce``; ``fill_value`` marks missing integer cells.
    source_chunks
        Chunk shape of the values; tiles cover whole source chunks when the budget allows.
    level0_block
        Smallest tile when level 0 is not written (tiles are multiples of it), e.g. the
        level-0 shard the pyramid would have. Default: ``source_chunks``, else the first
        written level's shard scaled to level 0. Ignored when level 0 is written (tiles are
        then multiples of its shards).
    max_region_bytes
        Soft budget of one tile (never smaller than one level-0 shard).
    max_workers
        Size of the writer's own pool (when no executor is given).
    skip_empty
        Do not write regions whose values are all fill (destinations must be fresh arrays).
    name
        Variable name, for error messages.
    within
        Write only the tiles and coarse shards that meet this level-0 region, e.g. the new
        time steps of an append; coarse shards outside it are left as they are. A tile that
        meets it is written whole, and so is a coarse shard that meets it, so the values
        must hold the right values around it too (align ``within`` to every level's shards
        to keep that margin empty).
    """

    strides: Sequence[Sequence[int]]
    method: str
    fill_value: float | int | None = None
    skipna: bool = True
    source_chunks: Sequence[int] | None = None
    level0_block: Sequence[int] | None = None
    max_region_bytes: int = DEFAULT_MAX_REGION_BYTES
    max_workers: int | None = None
    skip_empty: bool = True
    name: str | None = None
    within: Region | None = None


@dataclass
class WriteHooks:
    """What a caller plugs into a write; every hook is optional.

    Attributes
    ----------
    on_tile
        Called with the tile's level-0 byte count after each tile is fully processed.
    on_read
        Called with ``(tile_region, block)`` after each read (before anything is written).
    timers
        One ``RegionTimer`` (or ``None``) per level. The tile read counts for level 0, the
        ``pyramid_tile`` call for the first inner level, each fold for its deep level.
    write_region
        ``write_region(dst, region, block)`` stores one region of whole shards; default
        ``shards.write_region`` (zarr-python), or ``NativeWriter.write_region`` for
        ``io="rust"``. ``block`` is only valid during the call (shard buffers are reused
        once it returns): copy it to keep it.
    journal
        A :class:`~topozarr_engine.tilelog.TileLog`: the history of earlier runs of the same
        plan (finished tiles are skipped, or replayed when they feed a coarse shard not stored
        yet) and a ``record`` call after each tile task. ``None``: a fresh, unrecorded write.
    replay_from
        Where a replayed tile's level-0 values are read: the level-0 array an earlier run
        stored (same values and dtype as the values). ``None`` reads the values again.
    """

    on_tile: Callable[[int], None] | None = None
    on_read: Callable[[Region, np.ndarray], None] | None = None
    timers: Sequence[RegionTimer | None] | None = None
    write_region: Callable[[Any, Region, np.ndarray], None] | None = None
    journal: TileLog | None = None
    replay_from: Any | None = None


def write_pyramid_arrays(
    values: Any,
    dsts: Sequence[Any],
    spec: PyramidSpec,
    hooks: WriteHooks | None = None,
    executor: ThreadPoolExecutor | None = None,
) -> list[Future[None]]:
    """Write all pyramid levels of one variable in a single pass over its level-0 values.

    Parameters
    ----------
    values
        Level-0 values (numpy or lazy, indexable by a tuple of slices).
    dsts
        Destination ``zarr.Array`` per level; ``dsts[0]`` has ``values.shape`` and
        ``dsts[i].shape == coarsened_shape(values.shape, spec.strides[i])``. ``dsts[0]`` may
        be ``None``: level 0 is then read (once) but not written, and only the coarser levels
        in ``dsts`` are produced, each from the native cells by its cumulative stride (a
        subset of the levels, not necessarily consecutive).
    spec
        What to compute (strides, method, fill, tiling budget).
    hooks
        Progress, timers, storage, journal (see :class:`WriteHooks`).
    executor
        A shared pool: the futures are returned without waiting. ``None``: the writer's own
        pool of ``spec.max_workers`` threads, waited for.

    Returns
    -------
    list of Future
        One future per tile (all done unless ``executor`` was given).

    Raises
    ------
    ValueError
        Bad strides, method or destination shapes (before any I/O).
    RegionError
        Naming the variable, level and region of the first failure.
    """
    return PyramidWriter(values, dsts, spec, hooks or WriteHooks()).run(executor)


def _check_destinations(
    dsts: Sequence[Any], strides: list[tuple[int, ...]], shape0: tuple[int, ...], method: str
) -> None:
    if len(strides) != len(dsts):
        raise ValueError(f"got {len(dsts)} destination arrays but {len(strides)} strides")
    if any(s != 1 for s in strides[0]):
        raise ValueError(f"strides[0] must be all ones, got {strides[0]}")
    kernel.method_row(method)  # an unknown method: ValueError naming the valid ones
    if dsts[0] is None and len(dsts) < 2:
        raise ValueError("nothing to write: dsts[0] is None and there is no coarser level")
    for level, (st, dst) in enumerate(zip(strides, dsts, strict=True)):
        if level == 0 and dst is None:
            continue
        if dst is None:
            raise ValueError(f"dsts[{level}] is None; only dsts[0] may be None")
        if level and any(b % a for a, b in zip(strides[level - 1], st, strict=True)):
            raise ValueError(f"stride {st} of level {level} is not a multiple of the previous")
        expected = coarsened_shape(shape0, st)
        if tuple(dst.shape) != expected:
            raise ValueError(
                f"level {level} array has shape {tuple(dst.shape)}, expected {expected}"
            )


def _level0_shape(values: Any, dst0: Any) -> tuple[int, ...]:
    vshape = tuple(int(n) for n in values.shape) if hasattr(values, "shape") else None
    shape0 = tuple(int(n) for n in dst0.shape) if dst0 is not None else vshape
    if shape0 is None:
        raise ValueError("values must have a shape when dsts[0] is None")
    if vshape is not None and vshape != shape0:
        raise ValueError(f"values shape {vshape} does not match level 0 shape {shape0}")
    return shape0


class PyramidWriter:
    """One single-pass write of one variable (see the module docstring for the algorithm).

    The constructor checks the arguments and plans the tiles, the levels' shard countdowns
    and (with a journal) which tiles run, are replayed or are skipped; :meth:`run` runs them.
    """

    def __init__(
        self, values: Any, dsts: Sequence[Any], spec: PyramidSpec, hooks: WriteHooks
    ) -> None:
        self.values = values
        self.spec = spec
        self.hooks = hooks
        self.dst0 = dsts[0]
        self.shape0 = _level0_shape(values, self.dst0)
        strides = [tuple(int(s) for s in st) for st in spec.strides]
        _check_destinations(dsts, strides, self.shape0, spec.method)
        # The values' dtype decides the kernel's arithmetic; the destination dtype is cast to.
        vdtype = getattr(values, "dtype", None)
        native_dtype = np.dtype(vdtype if vdtype is not None else dsts[0].dtype)
        self.itemsize = native_dtype.itemsize
        self.layout = plan_tiles(self.shape0, self.itemsize, self._block0(dsts, strides), spec)
        deep = set(self.layout.deep)
        self.levels = {
            lv: _Level(
                lv,
                dsts[lv],
                strides[lv],
                spec,
                self._accumulator(dsts[lv], strides[lv], native_dtype) if lv in deep else None,
            )
            for lv in range(1, len(dsts))
        }
        self.runs = self._plan_runs()
        self.inner_strides = [strides[lv] for lv in self.layout.inner]
        self.missing_marker = spec.fill_value if spec.fill_value is not None else np.nan
        self.fill0 = self.dst0.fill_value if self.dst0 is not None else None
        # Level 0's fill is usually the missing marker: then one scan of a tile answers both.
        self.fill0_is_marker = _same_fill(self.fill0, self.missing_marker)
        # Shard buffers are recycled per dtype: levels 1-3 usually share a shard shape, so
        # buffers move down. Tiles go in Morton order, so only a few shards are open at once;
        # four idle ones cover that without holding much memory.
        dtypes = {lv.dtype for lv in self.levels.values()}
        self.pools = {dt: BufferPool(dt, max_free=4) for dt in dtypes}
        self.store_region = hooks.write_region or shards.write_region

    def _accumulator(
        self, dst: Any, stride: tuple[int, ...], native_dtype: np.dtype[Any]
    ) -> LevelAccumulator:
        acc = LevelAccumulator(native_dtype, self.spec, stride=stride, native_shape=self.shape0)
        assert acc.shape == tuple(int(n) for n in dst.shape)  # checked against the strides
        return acc

    def _block0(self, dsts: Sequence[Any], strides: list[tuple[int, ...]]) -> tuple[int, ...]:
        """The smallest tile: level 0's shard, or what stands for it when it is not written."""
        spec = self.spec
        if self.dst0 is not None:
            return array_block_shape(self.dst0)
        if spec.level0_block is not None or spec.source_chunks is not None:
            return tuple(int(b) for b in (spec.level0_block or spec.source_chunks or ()))
        # Level 0 not written: the first written level's blocks, scaled to level 0.
        return tuple(b * s for b, s in zip(array_block_shape(dsts[1]), strides[1], strict=True))

    def _plan_runs(self) -> list[tuple[tuple[int, ...], bool]]:
        """The tiles to run, and whether each is a replay; counts down every open shard.

        A finished tile (journal) runs again, from the stored level 0, only when it feeds a
        coarse shard still to be stored.
        """
        journal, within = self.hooks.journal, self.spec.within
        history = journal.history() if journal is not None else TileHistory()
        for lv in self.levels.values():
            lv.closed = frozenset(history.flushed.get(lv.level, ()))
            if within is not None:
                lv.within = _cells(within, lv.stride, lv.shape)
                lv.closed |= _shards_outside(lv, lv.within)
        runs: list[tuple[tuple[int, ...], bool]] = []
        for index in self.layout.order:
            region = self.layout.tile_region(index, self.shape0)
            # Outside ``within`` a tile is never read: coarse shards that reach past its edge
            # keep their stored values there (read back when their buffer opens).
            if within is not None and region.intersect(within).is_empty():
                continue
            feeds_open = False
            for lv in self.levels.values():
                for shard in _shards_of(_cells(region, lv.stride, lv.shape), lv.shard):
                    if shard not in lv.closed:
                        lv.countdown[shard] = lv.countdown.get(shard, 0) + 1
                        feeds_open = True
            if index not in history.done:
                runs.append((index, False))
            elif feeds_open:
                runs.append((index, True))
        return runs

    def run(self, executor: ThreadPoolExecutor | None = None) -> list[Future[None]]:
        """Run every planned tile task (on ``executor``, or on the writer's own pool)."""
        tile_bytes = math.prod(self.layout.tile) * self.itemsize
        return run_tasks(
            [functools.partial(self._task, i, replayed) for i, replayed in self.runs],
            executor=executor,
            max_workers=self.spec.max_workers,
            region_bytes=tile_bytes,
        )

    def _timer(self, level: int) -> RegionTimer | None:
        timers = self.hooks.timers
        return timers[level] if timers is not None and level < len(timers) else None

    def _write(self, dst: Any, piece: _Piece) -> None:
        t = self._timer(piece.level)
        region, block = piece.region, piece.block
        empty = piece.empty
        if self.spec.skip_empty and (is_all_fill(block, piece.fill) if empty is None else empty):
            if t is not None:
                t.count(regions=1, skipped=1, shape=region.shape)
            return
        t0, e0 = time.perf_counter(), encode_seconds()
        try:
            self.store_region(dst, region, block)
        except Exception as exc:
            raise RegionError(
                region, exc, variable=self.spec.name, level=piece.level, stage="write"
            ) from exc
        if t is not None:
            t.add("write", time.perf_counter() - t0)
            t.add("encode", encode_seconds() - e0)
            t.count(regions=1, writes=1, bytes_written=block.nbytes, shape=region.shape)

    def _flush(self, lv: _Level, shard: tuple[int, ...], buf: np.ndarray | None) -> None:
        region = _shard_region(shard, lv.shard, lv.shape)
        if buf is None:
            assert lv.acc is not None
            if lv.within is not None and lv.within.intersect(region) != region:
                buf = _read_back(lv, region)
                part = lv.within.intersect(region)
                result = lv.acc.result(part).astype(lv.dtype, copy=False)
                buf[part.relative_to(region).slices] = result
            else:
                buf = lv.acc.result(region).astype(lv.dtype, copy=False)
        self._write(lv.dst, _Piece(lv.level, region, buf, lv.fill))

    def _deliver(
        self, lv: _Level, cells: Region, block: np.ndarray | None, stored: list[tuple[int, Index]]
    ) -> None:
        """Put a tile's final values of an inner level into shard buffers; flush full ones."""
        ready: list[tuple[tuple[int, ...], np.ndarray]] = []
        direct: list[tuple[Region, np.ndarray]] = []
        for shard in _shards_of(cells, lv.shard):
            if shard in lv.closed:
                continue
            sregion = _shard_region(shard, lv.shard, lv.shape)
            piece = cells.intersect(sregion)
            with lv.lock:
                if lv.countdown[shard] == 1 and shard not in lv.buffers and piece == sregion:
                    # The only tile under this shard: no buffer needed.
                    del lv.countdown[shard]
                    stored.append((lv.level, shard))
                    src = piece.relative_to(cells)
                    direct.append(
                        (
                            piece,
                            block[src.slices]
                            if block is not None
                            else np.full(piece.shape, lv.empty, dtype=lv.dtype),
                        )
                    )
                    continue
                buf = self._buffer(lv, shard, sregion)
                if block is not None:
                    buf[piece.relative_to(sregion).slices] = block[piece.relative_to(cells).slices]
                lv.countdown[shard] -= 1
                if lv.countdown[shard] == 0:
                    del lv.countdown[shard]
                    stored.append((lv.level, shard))
                    ready.append((shard, lv.buffers.pop(shard)))
        for region, data in direct:
            self._write(lv.dst, _Piece(lv.level, region, data, lv.fill))
        for shard, buf in ready:
            self._flush(lv, shard, buf)
            self.pools[lv.dtype].give(buf)  # written: the writers keep no reference to it

    def _buffer(self, lv: _Level, shard: tuple[int, ...], sregion: Region) -> np.ndarray:
        """The shard's open buffer (the caller holds ``lv.lock``)."""
        buf = lv.buffers.get(shard)
        if buf is None:
            if lv.within is not None and lv.within.intersect(sregion) != sregion:
                buf = _read_back(lv, sregion)
            else:
                buf = self.pools[lv.dtype].take(sregion.shape, lv.empty)
            lv.buffers[shard] = buf
        return buf

    def _fold(
        self, lv: _Level, region: Region, block: np.ndarray | None, stored: list[tuple[int, Index]]
    ) -> None:
        cells = _cells(region, lv.stride, lv.shape)
        if block is not None and not cells.is_empty():
            assert lv.acc is not None
            t0 = time.perf_counter()
            lv.acc.fold(block, region.start)
            t = self._timer(lv.level)
            if t is not None:
                t.add("reduce", time.perf_counter() - t0)
        ready = []
        for shard in _shards_of(cells, lv.shard):
            if shard in lv.closed:
                continue
            with lv.lock:
                lv.countdown[shard] -= 1
                if lv.countdown[shard] == 0:
                    del lv.countdown[shard]
                    stored.append((lv.level, shard))
                    ready.append(shard)
        for shard in ready:
            self._flush(lv, shard, None)

    def _task(self, index: tuple[int, ...], replayed: bool) -> None:
        region = self.layout.tile_region(index, self.shape0)
        stage = _Stage()
        try:
            stored = self._tile(region, replayed, stage)
            journal = self.hooks.journal
            if journal is not None:
                stage.at(0, "journal")
                journal.record(index, stored, replayed=replayed)
        except RegionError as exc:
            raise exc.with_context(variable=self.spec.name) from exc.cause
        except Exception as exc:
            raise RegionError(
                region, exc, variable=self.spec.name, level=stage.level, stage=stage.name
            ) from exc
        if self.hooks.on_tile is not None:
            self.hooks.on_tile(int(np.prod(region.shape)) * self.itemsize)

    def _read(self, region: Region, replayed: bool) -> np.ndarray:
        replay_from = self.hooks.replay_from
        source = replay_from if replayed and replay_from is not None else self.values
        t0 = time.perf_counter()
        block = materialize(source[region.slices])
        t = self._timer(0)
        if t is not None:
            t.add("read", time.perf_counter() - t0)
            t.count(bytes_read=block.nbytes)
        if self.hooks.on_read is not None:
            self.hooks.on_read(region, block)
        return block

    def _tile(self, region: Region, replayed: bool, stage: _Stage) -> list[tuple[int, Index]]:
        """Read one tile, write it to level 0 and reduce it into every coarser level."""
        spec, layout = self.spec, self.layout
        stored: list[tuple[int, Index]] = []
        block = self._read(region, replayed)
        stage.at(0, "write")
        all_missing = spec.skip_empty and is_all_fill(block, self.missing_marker)
        if self.dst0 is not None and not replayed:
            empty = all_missing if self.fill0_is_marker else None
            self._write(self.dst0, _Piece(0, region, block, self.fill0, empty))
        outs: list[np.ndarray | None] = [None] * len(layout.inner)
        if layout.inner and not all_missing:
            stage.at(layout.inner[0], "reduce")
            t0 = time.perf_counter()
            outs = list(
                kernel.pyramid_tile(
                    block,
                    self.inner_strides,
                    spec.method,
                    fill_value=spec.fill_value,
                    skipna=spec.skipna,
                )
            )
            t = self._timer(layout.inner[0])
            if t is not None:
                t.add("reduce", time.perf_counter() - t0)
        for lvnum, out in zip(layout.inner, outs, strict=True):
            stage.at(lvnum, "write")
            lv = self.levels[lvnum]
            cells = _cells(region, lv.stride, lv.shape)
            data = None if out is None else np.asarray(out).astype(lv.dtype, copy=False)
            if data is not None and data.shape != cells.shape:
                raise AssertionError(
                    f"pyramid_tile gave shape {data.shape} for level {lvnum}, "
                    f"expected {cells.shape}"
                )
            self._deliver(lv, cells, data, stored)
        for lvnum in layout.deep:
            stage.at(lvnum, "reduce")
            self._fold(self.levels[lvnum], region, None if all_missing else block, stored)
        return stored


@dataclass
class _Piece:
    """A region of one level to store: its values, the level's fill, and whether it is known
    to be all fill (``None``: look)."""

    level: int
    region: Region
    block: np.ndarray
    fill: Any
    empty: bool | None = None


class _Stage:
    """Where a tile task is, for the message of a failure."""

    def __init__(self) -> None:
        self.level, self.name = 0, "read"

    def at(self, level: int, name: str) -> None:
        self.level, self.name = level, name
