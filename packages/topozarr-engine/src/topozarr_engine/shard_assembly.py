"""Coarse-level shards of the single-pass writer, assembled inner chunk by inner chunk.

A shard of a coarse level fills over several tiles (up to the whole level's). Held as one
decoded buffer, every open shard costs its full size until its last tile is in: with 16x16
inner chunks per shard that is 64 MiB per float32 shard and level. Here a shard is held as the
encoded bytes of its finished inner chunks (in the kernel's ``ShardBuilder``) plus decoded
buffers of only the inner chunks still being filled. An inner chunk is encoded as soon as its
last cell is in, outside the level's lock; the shard (chunks + index, the ``sharding_indexed``
layout) is stored when its last tile is in and its chunks are encoded. Where the sink streams
shards (a local directory), each encoded chunk goes to storage at once instead of being held
(:mod:`topozarr_engine.chunk_streams`).

Used only where the kernel knows the array's codecs and the writer's sink stores whole shards
itself (:class:`~topozarr_engine.storage.sinks.ZarrShardSink` with zarr-python's whole-shard
fast path, or the :class:`~topozarr_engine.storage.native.NativeWriter`); otherwise the writer
keeps whole-shard buffers.
"""

from __future__ import annotations

import itertools
import operator
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from topozarr_engine import kernel, shards
from topozarr_engine.blocks import same_fill
from topozarr_engine.buffers import BufferPool
from topozarr_engine.chunk_streams import ChunkStreams
from topozarr_engine.region import Region
from topozarr_engine.storage.native import NativeWriter
from topozarr_engine.storage.sinks import ZarrShardSink
from topozarr_engine.timer import RegionTimer, add_encode
from topozarr_engine.windows import ArrayWindow, ShiftedBuilder, WindowSink

__all__ = ["ChunkedShards", "chunked_shards", "count_write"]

Index = tuple[int, ...]

#: Idle inner-chunk buffers kept per level (an inner chunk is usually a few hundred KiB).
_MAX_FREE = 8


@dataclass
class _Open:
    """One open shard: inner chunks still being filled (buffer, cells missing), encodes
    running outside the lock, and whether one of them failed (the shard must not be stored
    without that chunk)."""

    partial: dict[Index, tuple[np.ndarray, int]] = field(default_factory=dict)
    pending: int = 0
    failed: bool = False


@dataclass
class _Job:
    """One complete inner chunk to encode: ``data`` is ``None`` when it holds only the empty
    value; ``pooled`` when ``data`` is a pool buffer to give back."""

    shard: Index
    position: Index
    data: np.ndarray | None
    pooled: bool = False


@dataclass
class _Batch:
    """Whole inner chunks of one shard cut out of one block of values (a tile's piece): the
    kernel cuts, encodes and stores them in one call (:meth:`ChunkStreams.put_batch`).
    ``items``: each chunk's position in the shard and its first cell in ``block``."""

    shard: Index
    block: np.ndarray
    items: list[tuple[Index, Index]]


class ChunkedShards:
    """The open shards of one level, built chunk by chunk (see the module docstring).

    Parameters
    ----------
    builder
        ``topozarr_core.ShardBuilder`` of the level's array.
    dst
        The level's ``zarr.Array``.
    empty
        The value of cells no tile delivers values for (the writer's ``empty``).
    store
        ``store(dst, shard, builder, skip_empty)``: finishes and stores shard ``shard`` (see
        :func:`chunked_shards`); returns whether anything was stored.
        Or a :class:`ChunkStreams`: finished inner chunks go to its shard streams as they
        are encoded, not to ``builder``, and its :meth:`ChunkStreams.store` stores a shard.
    skip_empty
        An all-fill shard is not stored (the array is fresh); else its key is deleted.
    """

    def __init__(
        self, builder: Any, dst: Any, empty: Any, store: Any, *, skip_empty: bool = True
    ) -> None:
        self.builder = builder
        self.streams = store if isinstance(store, ChunkStreams) else None
        self.dst = dst
        self.shape = tuple(int(n) for n in dst.shape)
        self.chunk = tuple(int(n) for n in builder.chunk_shape)
        self.dtype = np.dtype(dst.dtype)
        self.empty = empty
        self.empty_is_fill = same_fill(empty, dst.fill_value)
        self.store = store if self.streams is None else self.streams.store
        self.skip_empty = skip_empty
        self.pool = BufferPool(self.dtype, max_free=_MAX_FREE)
        self.open: dict[Index, _Open] = {}
        self.cond = threading.Condition()

    def add(
        self, shard: Index, sregion: Region, piece: Region, values: np.ndarray | None
    ) -> list[_Job | _Batch]:
        """Take ``values`` (``None``: all empty) of the level cells ``piece`` of shard
        ``shard`` (region ``sregion``); returns the inner chunks it completes, to
        :meth:`encode` outside the caller's lock."""
        jobs: list[_Job | _Batch] = []
        batch: list[tuple[Index, Index]] = []
        batchable = values is not None and self._batchable(values)
        with self.cond:
            state = self.open.setdefault(shard, _Open())
            corner = piece.start
            for spans in itertools.product(*self._spans(sregion, piece)):
                # Per axis: position, first cell, stop, whole (see _spans), transposed at once.
                position, first, stop, whole_axes = zip(*spans, strict=True)
                if batchable and all(whole_axes) and position not in state.partial:
                    batch.append((position, tuple(map(operator.sub, first, corner))))
                    continue
                creg = Region._checked(first, stop)
                inter = piece.intersect(creg)
                whole = inter == creg and position not in state.partial
                part = None if values is None else values[inter.relative_to(piece).slices]
                if whole:
                    jobs.append(_Job(shard, position, part))
                    continue
                buf, missing = state.partial.pop(position, (None, creg.size))
                if buf is None:
                    buf = self.pool.take(self.chunk, self.empty)
                if part is not None:
                    buf[inter.relative_to(creg).slices] = part
                missing -= inter.size
                if missing:
                    state.partial[position] = (buf, missing)
                else:
                    jobs.append(_Job(shard, position, buf, pooled=True))
            if batch:
                assert values is not None
                jobs.append(_Batch(shard, values, batch))
            state.pending += len(jobs)
        return jobs

    def _batchable(self, values: np.ndarray) -> bool:
        """Whether the kernel can cut whole chunks out of ``values`` as raw bytes: streamed
        shards, the level's dtype, and cells contiguous along the last axis (a tile's piece)."""
        return (
            self.streams is not None
            and values.dtype == self.dtype
            and values.ndim > 0
            and values.strides[-1] == self.dtype.itemsize
        )

    def _spans(self, sregion: Region, piece: Region) -> list[list[tuple[int, int, int, bool]]]:
        """Per axis, the inner chunks of the shard at ``sregion`` that meet ``piece``: their
        position, first cell, stop (clipped to the array) and whether ``piece`` covers the
        whole unclipped chunk. Plain integers: this runs for every chunk of every tile."""
        axes = []
        for a, b, s, c, n in zip(
            piece.start, piece.stop, sregion.start, self.chunk, self.shape, strict=True
        ):
            first = s + (a - s) // c * c
            axes.append(
                [
                    ((lo - s) // c, lo, min(lo + c, n), lo >= a and lo + c <= b)
                    for lo in range(first, b, c)
                ]
            )
        return axes

    def encode(self, jobs: list[_Job | _Batch]) -> None:
        """Encode complete inner chunks into their shards (the GIL is released meanwhile)."""
        t0 = time.perf_counter()
        done = 0  # jobs encoded: a failure leaves the shards of the others unstorable
        try:
            for job in jobs:
                self._put(job)
                done += 1
        finally:
            add_encode(time.perf_counter() - t0)
            with self.cond:
                for i, job in enumerate(jobs):
                    self.open[job.shard].pending -= 1
                    self.open[job.shard].failed |= i >= done
                self.cond.notify_all()

    def _put(self, job: _Job | _Batch) -> None:
        if isinstance(job, _Batch):
            assert self.streams is not None
            self.streams.put_batch(job.shard, job.block, job.items)
            return
        data = self._whole(job.data)
        if data is not None:
            raw = data.reshape(-1).view(np.uint8)
            if self.streams is not None:
                self.streams.put(job.shard, job.position, raw)
            else:
                self.builder.put_chunk(list(job.shard), list(job.position), raw)
        if job.pooled and job.data is not None:
            self.pool.give(job.data)

    def _whole(self, data: np.ndarray | None) -> np.ndarray | None:
        """A C-contiguous whole inner chunk (padded past the array's edge), or ``None`` when
        the chunk is all fill and so left out of the shard."""
        if data is None:
            if self.empty_is_fill:
                return None
            return np.full(self.chunk, self.empty, dtype=self.dtype)
        if data.shape != self.chunk:
            full = np.full(self.chunk, self.empty, dtype=self.dtype)
            full[tuple(slice(0, n) for n in data.shape)] = data
            return full
        return np.ascontiguousarray(data, dtype=self.dtype)

    def close(self, shard: Index) -> bool:
        """Store shard ``shard`` once the encodes of its chunks (other threads') are done;
        returns whether anything was stored (``False``: every value was fill)."""
        with self.cond:
            self.cond.wait_for(lambda: self.open[shard].pending == 0)
            state = self.open.pop(shard)
        assert not state.partial, f"shard {shard} closed with inner chunks unfilled"
        if state.failed:
            # Another thread's encode or write of one of its chunks failed (and raised there).
            if self.streams is not None:
                self.streams.drop(shard)
            else:
                self.builder.finish(list(shard))  # only to free the chunks it holds
            raise RuntimeError(f"shard {shard} not stored: one of its inner chunks failed")
        return bool(self.store(self.dst, shard, self.builder, self.skip_empty))

    def __len__(self) -> int:
        """Open shards."""
        with self.cond:
            return len(self.open)

    @property
    def peak_held_bytes(self) -> int | None:
        """The most encoded chunk bytes one thread held at once when they are streamed
        (``None``: they are held in the kernel's builder until their shard is stored)."""
        return None if self.streams is None else self.streams.peak_held_bytes

    def abort(self) -> None:
        """The write failed: drop the temporary files of streamed shards still open."""
        if self.streams is not None:
            self.streams.abort()


def _store_python(dst: Any, shard: Index, builder: Any, skip_empty: bool) -> bool:
    """Finish ``shard`` and store it through zarr-python's store (or delete its key)."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    arr = dst._async_array
    t0 = time.perf_counter()
    data = builder.finish(list(shard))
    add_encode(time.perf_counter() - t0)
    store = arr.store_path.store
    key = builder.key(list(shard))
    if data is None:
        if not skip_empty:
            sync(store.delete(key))
        return False
    sync(store.set(key, default_buffer_prototype().buffer.from_bytes(data)))
    return True


def _native_store(writer: NativeWriter) -> Any:
    def store(dst: Any, shard: Index, builder: Any, skip_empty: bool) -> bool:
        return writer.write_built(dst, shard, builder, delete_empty=not skip_empty)

    return store


def chunked_shards(
    dst: Any, sink: Any, empty: Any, *, skip_empty: bool = True
) -> ChunkedShards | None:
    """A :class:`ChunkedShards` for level array ``dst`` stored by ``sink`` (the writer's
    :class:`~topozarr_engine.storage.sinks.ShardSink`), or ``None`` when its shards must be
    buffered whole: the array is not sharded, its codecs are unknown to the kernel, or the
    sink is not one of the engine's whole-shard writers (zarr-python's fast path or a
    :class:`NativeWriter`)."""
    array, offset = dst, None
    if isinstance(dst, ArrayWindow):
        # A window of a store array (a cluster's block task): its shards are the array's,
        # shifted; one that is not stored is left to the whole-shard path (which drops it).
        offset = dst.shard_offset
        if not dst.store or offset is None or not isinstance(sink, WindowSink):
            return None
        array, sink = dst.array, sink.sink
    arr = getattr(array, "_async_array", None)
    if arr is None or getattr(array, "shards", None) is None:
        return None
    if isinstance(sink, NativeWriter):
        store = _native_store(sink)
    elif isinstance(sink, ZarrShardSink) and shards.fast_path_available():
        if type(getattr(arr, "codec_pipeline", None)).__name__ != "BatchedCodecPipeline":
            return None
        store = _store_python
    else:
        return None
    try:
        builder: Any = kernel.ShardBuilder(str(arr.store_path.path), shards.zarr_json(arr))
    except (ValueError, TypeError, AttributeError):
        return None
    if offset is not None:
        builder = ShiftedBuilder(builder, offset)
        store = _on_array(store, array)
    # Either io path streams to a local directory: each chunk stored once it is encoded.
    opener = sink.shard_streams(array)
    if opener is not None:
        store = ChunkStreams(builder, opener)
    return ChunkedShards(builder, dst, empty, store, skip_empty=skip_empty)


def _on_array(store: Any, array: Any) -> Any:
    """``store`` of a window's shards, called with the window's array (the window's shard
    indices reach the array's through the builder, a :class:`ShiftedBuilder`)."""

    def stored(dst: Any, shard: Index, builder: Any, skip_empty: bool) -> bool:
        return bool(store(array, shard, builder, skip_empty))

    return stored


def count_write(timer: RegionTimer | None, region: Region, stored: bool, itemsize: int) -> None:
    """Count a closed shard on the level's timer as the whole-shard writer would."""
    if timer is None:
        return
    if stored:
        timer.count(regions=1, writes=1, bytes_written=region.size * itemsize, shape=region.shape)
    else:
        timer.count(regions=1, skipped=1, shape=region.shape)
