"""The single-pass pyramid writer as an object: :class:`PyramidWriter` (the algorithm is in
the docstring of :mod:`topozarr_engine.pyramid`)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from topozarr_engine import kernel
from topozarr_engine.accumulate import LevelAccumulator
from topozarr_engine.blocks import array_block_shape, is_all_fill, same_fill
from topozarr_engine.buffers import BufferPool
from topozarr_engine.errors import RegionError
from topozarr_engine.pool import pool_size
from topozarr_engine.pyramid_levels import (
    LevelState,
    check_destinations,
    level0_shape,
    read_back,
    shards_outside,
)
from topozarr_engine.region import Region
from topozarr_engine.region_writer import Piece, RegionWriter, Stage, WriteHooks
from topozarr_engine.resources import cpu_count
from topozarr_engine.shard_assembly import chunked_shards, count_write
from topozarr_engine.specs import PyramidSpec
from topozarr_engine.tilelog import TileHistory
from topozarr_engine.tiles import level_cells, plan_tiles, shard_region, shards_of, split_tile
from topozarr_engine.timer import encode_seconds

__all__ = ["PyramidWriter"]

Index = tuple[int, ...]


class PyramidWriter(RegionWriter):
    """One single-pass write of one variable (see the module docstring for the algorithm).

    The constructor checks the arguments and plans the tiles, the levels' shard countdowns
    and (with a journal) which tiles run, are replayed or are skipped; :meth:`run` runs them.
    """

    def __init__(
        self, values: Any, dsts: Sequence[Any], spec: PyramidSpec, hooks: WriteHooks
    ) -> None:
        super().__init__(spec, hooks)
        self.spec: PyramidSpec = spec
        self.values = values
        self.dst0 = dsts[0]
        self.shape0 = level0_shape(values, self.dst0)
        strides = [tuple(int(s) for s in st) for st in spec.strides]
        check_destinations(dsts, strides, self.shape0, spec.method)
        # The values' dtype decides the kernel's arithmetic; the destination dtype is cast to.
        vdtype = getattr(values, "dtype", None)
        native_dtype = np.dtype(vdtype if vdtype is not None else dsts[0].dtype)
        self.itemsize = native_dtype.itemsize
        self.layout = plan_tiles(self.shape0, self.itemsize, self._block0(dsts, strides), spec)
        deep = set(self.layout.deep)
        self.levels = {
            lv: LevelState(
                lv,
                dsts[lv],
                strides[lv],
                spec,
                self._accumulator(dsts[lv], strides[lv], native_dtype) if lv in deep else None,
            )
            for lv in range(1, len(dsts))
        }
        if self._level0_split():
            self.levels[0] = LevelState(0, self.dst0, strides[0], spec, None)
        self.runs = self._plan_runs()
        self.split_tiles = self._split_tiles()
        self.inner_strides = [strides[lv] for lv in self.layout.inner]
        self.missing_marker = spec.fill_value if spec.fill_value is not None else np.nan
        self.fill0 = self.dst0.fill_value if self.dst0 is not None else None
        # Level 0's fill is usually the missing marker: then one scan of a tile answers both.
        self.fill0_is_marker = same_fill(self.fill0, self.missing_marker)
        # Shard buffers are recycled per dtype: levels 1-3 usually share a shard shape, so
        # buffers move down. Tiles go in Morton order, so only a few shards are open at once;
        # four idle ones cover that without holding much memory.
        dtypes = {lv.dtype for lv in self.levels.values()}
        self.pools = {dt: BufferPool(dt, max_free=4) for dt in dtypes}
        for lv in self.levels.values():
            if lv.acc is None and lv.within is None:
                lv.chunked = chunked_shards(lv.dst, self.sink, lv.empty, skip_empty=spec.skip_empty)

    def _split_tiles(self) -> bool:
        """Whether the kernel splits a tile over its threads (``spec.split_tiles``). With a
        tile thread per core it keeps each tile on its thread: splitting it over rayon's
        threads too oversubscribed the cores (idle workers spinning)."""
        if self.spec.split_tiles is not None:
            return self.spec.split_tiles
        return pool_size(self.spec.max_workers, self.task_bytes()) < cpu_count()

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
            chunk0 = self._chunk0()
            if chunk0 is None:
                return array_block_shape(self.dst0)
            return split_tile(
                self.shape0, self.itemsize, chunk0, array_block_shape(self.dst0), spec
            )
        if spec.level0_block is not None or spec.source_chunks is not None:
            return tuple(int(b) for b in (spec.level0_block or spec.source_chunks or ()))
        # Level 0 not written: the first written level's blocks, scaled to level 0.
        return tuple(b * s for b, s in zip(array_block_shape(dsts[1]), strides[1], strict=True))

    def _chunk0(self) -> tuple[int, ...] | None:
        """Level 0's inner chunk when its shards may span tiles (assembled chunk by chunk):
        tiles then follow the source chunks, not the shards, which with many chunks per shard
        would make each tile a whole (large) shard. Not with ``within`` (an append keeps
        whole-shard tiles)."""
        spec = self.spec
        if spec.within is not None or spec.source_chunks is None:
            return None
        chunked = chunked_shards(self.dst0, self.sink, self.dst0.fill_value)
        return None if chunked is None else chunked.chunk

    def _level0_split(self) -> bool:
        """Whether tiles cut level 0's shards (then level 0 is held like a coarse level)."""
        if self.dst0 is None:
            return False
        shard0 = array_block_shape(self.dst0)
        return any(
            t % s != 0 and t < n
            for t, s, n in zip(self.layout.tile, shard0, self.shape0, strict=True)
        )

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
                lv.within = level_cells(within, lv.stride, lv.shape)
                lv.closed |= shards_outside(lv, lv.within)
        runs: list[tuple[tuple[int, ...], bool]] = []
        for index in self.layout.order:
            region = self.layout.tile_region(index, self.shape0)
            # Outside ``within`` a tile is never read: coarse shards that reach past its edge
            # keep their stored values there (read back when their buffer opens).
            if within is not None and region.intersect(within).is_empty():
                continue
            feeds_open, level0_open = self._count_down(region)
            if index not in history.done or level0_open:
                # A finished tile whose level-0 shard was not stored is read again from the
                # values: the stored level 0 does not hold it.
                runs.append((index, False))
            elif feeds_open:
                runs.append((index, True))
        return runs

    def _count_down(self, region: Region) -> tuple[bool, bool]:
        """Count the tile at ``region`` into every open shard it feeds; returns whether it
        feeds one, and whether one of them is level 0's (tiles split level 0's shards)."""
        feeds_open = level0_open = False
        for lv in self.levels.values():
            for shard in shards_of(level_cells(region, lv.stride, lv.shape), lv.shard):
                if shard not in lv.closed:
                    lv.countdown[shard] = lv.countdown.get(shard, 0) + 1
                    feeds_open = True
                    level0_open |= lv.level == 0
        return feeds_open, level0_open

    def run(self, executor: ThreadPoolExecutor | None = None) -> list[Future[None]]:
        """Run the tiles; on the writer's own pool a failure also drops the temporary files
        of shards still being streamed (on a shared pool the next write or resume does)."""
        try:
            return super().run(executor)
        except BaseException:
            for lv in self.levels.values():
                if lv.chunked is not None:
                    lv.chunked.abort()
            raise

    def plan(self) -> list[tuple[Index, bool]]:
        """The tiles to run, each with whether it is a replay."""
        return self.runs

    def task_region(self, key: tuple[Index, bool]) -> Region:
        """The level-0 region of the tile."""
        return self.layout.tile_region(key[0], self.shape0)

    def task_bytes(self) -> int:
        """One tile's level-0 bytes."""
        return math.prod(self.layout.tile) * self.itemsize

    def work(self, key: tuple[Index, bool], region: Region, stage: Stage) -> None:
        """Write one tile into every level, then record it in the journal."""
        index, replayed = key
        stored = self._tile(region, replayed, stage)
        journal = self.hooks.journal
        if journal is not None:
            stage.at(0, "journal")
            journal.record(index, stored, replayed=replayed)

    def _flush(self, lv: LevelState, shard: tuple[int, ...], buf: np.ndarray | None) -> None:
        region = shard_region(shard, lv.shard, lv.shape)
        if buf is None:
            assert lv.acc is not None
            if lv.within is not None and lv.within.intersect(region) != region:
                buf = read_back(lv, region)
                part = lv.within.intersect(region)
                result = lv.acc.result(part).astype(lv.dtype, copy=False)
                buf[part.relative_to(region).slices] = result
            else:
                buf = lv.acc.result(region).astype(lv.dtype, copy=False)
        self.write(lv.dst, Piece(lv.level, region, buf, lv.fill))

    def _deliver(
        self,
        lv: LevelState,
        cells: Region,
        block: np.ndarray | None,
        stored: list[tuple[int, Index]],
    ) -> None:
        """Put a tile's final values of an inner level into shard buffers; flush full ones."""
        ready: list[tuple[tuple[int, ...], np.ndarray | None]] = []
        direct: list[tuple[Region, np.ndarray]] = []
        jobs: list[Any] = []
        for shard in shards_of(cells, lv.shard):
            if shard in lv.closed:
                continue
            sregion = shard_region(shard, lv.shard, lv.shape)
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
                values = None if block is None else block[piece.relative_to(cells).slices]
                jobs += self._hold(lv, shard, sregion, piece, values)
                lv.countdown[shard] -= 1
                if lv.countdown[shard] == 0:
                    del lv.countdown[shard]
                    stored.append((lv.level, shard))
                    ready.append((shard, lv.buffers.pop(shard, None)))
        for region, data in direct:
            self.write(lv.dst, Piece(lv.level, region, data, lv.fill))
        if jobs:
            self._encode_chunks(lv, jobs)
        for shard, buf in ready:
            if buf is None:
                self._close_chunked(lv, shard)
                continue
            self._flush(lv, shard, buf)
            self.pools[lv.dtype].give(buf)  # written: the writers keep no reference to it

    def _hold(
        self,
        lv: LevelState,
        shard: Index,
        sregion: Region,
        piece: Region,
        values: np.ndarray | None,
    ) -> list[Any]:
        """Keep a tile's piece of an open shard (the caller holds ``lv.lock``); returns the
        inner chunks it completed, to encode outside the lock."""
        if lv.chunked is not None:
            return list(lv.chunked.add(shard, sregion, piece, values))
        buf = self._buffer(lv, shard, sregion)
        if values is not None:
            buf[piece.relative_to(sregion).slices] = values
        return []

    def _encode_chunks(self, lv: LevelState, jobs: list[Any]) -> None:
        t0 = time.perf_counter()
        lv.chunked.encode(jobs)
        t = self.timer(lv.level)
        if t is not None:
            t.add("encode", time.perf_counter() - t0)
            t.add("write", time.perf_counter() - t0)

    def _close_chunked(self, lv: LevelState, shard: Index) -> None:
        """Store a shard assembled from inner chunks (its last tile is in)."""
        region = shard_region(shard, lv.shard, lv.shape)
        t0, e0 = time.perf_counter(), encode_seconds()
        try:
            written = lv.chunked.close(shard)
        except Exception as exc:
            raise RegionError(
                region, exc, variable=self.spec.name, level=lv.level, stage="write"
            ) from exc
        t = self.timer(lv.level)
        if t is not None and written:
            t.add("write", time.perf_counter() - t0)
            t.add("encode", encode_seconds() - e0)
        count_write(t, region, written, lv.dtype.itemsize)

    def _buffer(self, lv: LevelState, shard: tuple[int, ...], sregion: Region) -> np.ndarray:
        """The shard's open buffer (the caller holds ``lv.lock``)."""
        buf = lv.buffers.get(shard)
        if buf is None:
            if lv.within is not None and lv.within.intersect(sregion) != sregion:
                buf = read_back(lv, sregion)
            else:
                buf = self.pools[lv.dtype].take(sregion.shape, lv.empty)
            lv.buffers[shard] = buf
        return buf

    def _fold(
        self,
        lv: LevelState,
        region: Region,
        block: np.ndarray | None,
        stored: list[tuple[int, Index]],
    ) -> None:
        cells = level_cells(region, lv.stride, lv.shape)
        if block is not None and not cells.is_empty():
            assert lv.acc is not None
            t0 = time.perf_counter()
            lv.acc.fold(block, region.start)
            t = self.timer(lv.level)
            if t is not None:
                t.add("reduce", time.perf_counter() - t0)
        ready = []
        for shard in shards_of(cells, lv.shard):
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

    def _read(self, region: Region, replayed: bool, stage: Stage) -> np.ndarray:
        replay_from = self.hooks.replay_from
        source = replay_from if replayed and replay_from is not None else self.values
        return self.read(source, region, stage)

    def _tile(self, region: Region, replayed: bool, stage: Stage) -> list[tuple[int, Index]]:
        """Read one tile, write it to level 0 and reduce it into every coarser level."""
        spec, layout = self.spec, self.layout
        stored: list[tuple[int, Index]] = []
        block = self._read(region, replayed, stage)
        stage.at(0, "write")
        all_missing = spec.skip_empty and is_all_fill(block, self.missing_marker)
        if 0 in self.levels:  # level 0's shards span tiles
            self._deliver(self.levels[0], region, block, stored)
        elif self.dst0 is not None and not replayed:
            empty = all_missing if self.fill0_is_marker else None
            self.write(self.dst0, Piece(0, region, block, self.fill0, empty))
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
                    parallel=self.split_tiles,
                )
            )
            t = self.timer(layout.inner[0])
            if t is not None:
                t.add("reduce", time.perf_counter() - t0)
        for lvnum, out in zip(layout.inner, outs, strict=True):
            stage.at(lvnum, "write")
            lv = self.levels[lvnum]
            cells = level_cells(region, lv.stride, lv.shape)
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
