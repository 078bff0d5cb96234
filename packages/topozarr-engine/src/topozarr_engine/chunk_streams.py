"""Inner chunks of open shards written to storage as soon as they are encoded.

:class:`~topozarr_engine.shard_assembly.ChunkedShards` holds a shard as the encoded bytes of
its finished inner chunks until its last tile is in: with 16x16 chunks per shard that is the
compressed size of a whole shard per open shard and level (hundreds of MiB for a large DEM).
Where the sink can stream a shard (a local directory:
:meth:`~topozarr_engine.storage.sinks.ZarrShardSink.shard_streams`), :class:`ChunkStreams`
appends each encoded chunk to its shard's :class:`~topozarr_engine.storage.shard_stream.ShardStream`
instead, and the shard is published (index, rename) when closed. Encoded bytes are then held
only between their encode and their append, by the thread doing both.

The kernel encodes each chunk with the array's own codec chain, the same encoder the held
path uses, and writes it into the shard's file in one call without the GIL
(``ShardBuilder.append_chunk``). The whole chunks a tile gives a shard come as one block
(:meth:`ChunkStreams.put_batch`): one kernel call cuts them out, encodes them and writes
each as it is encoded, so one encoded chunk is held per thread.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from topozarr_engine.storage.shard_stream import LocalShardStreams, ShardStream

__all__ = ["ChunkStreams"]

Index = tuple[int, ...]


class ChunkStreams:
    """One array's open shard streams, fed inner chunk by inner chunk.

    Parameters
    ----------
    builder
        The array's ``topozarr_core.ShardBuilder`` (its encoder and shard keys).
    streams
        Opens the shard streams (the sink's
        :meth:`~topozarr_engine.storage.sinks.ZarrShardSink.shard_streams`).
    """

    def __init__(self, builder: Any, streams: LocalShardStreams) -> None:
        self.builder = builder
        self.grid = tuple(
            s // c for s, c in zip(builder.shard_shape, builder.chunk_shape, strict=True)
        )
        self.streams = streams
        self.key_of = builder.key
        self.open: dict[Index, ShardStream] = {}
        self.lock = threading.Lock()
        #: The largest encoded chunk written: what one thread holds at most (the kernel
        #: writes each chunk as soon as it is encoded, inside the call).
        self.peak_held_bytes = 0

    def put(self, shard: Index, position: Index, raw: np.ndarray) -> None:
        """Encode the whole inner chunk ``raw`` (C-ordered bytes) at ``position`` of ``shard``
        and write it to the shard's stream (one kernel call); a chunk of fill values only is
        left out."""
        size = self._stream(shard).append_chunk(_flat(position, self.grid), self.builder, raw)
        self._held(size)

    def put_batch(self, shard: Index, block: np.ndarray, items: list[tuple[Index, Index]]) -> None:
        """Encode the whole inner chunks of ``block`` (values of the array's dtype, contiguous
        along the last axis) and write them to the shard's stream in one kernel call, each
        as soon as it is encoded; each item is a chunk's position in the shard and its first
        cell in ``block``."""
        positions = [_flat(position, self.grid) for position, _ in items]
        origins = [list(origin) for _, origin in items]
        stream = self._stream(shard)
        self._held(stream.append_chunks(positions, self.builder, block.view(np.uint8), origins))

    def _stream(self, shard: Index) -> ShardStream:
        with self.lock:
            stream = self.open.get(shard)
            if stream is None:
                stream = self.open[shard] = self.streams.open(self.key_of(list(shard)))
            return stream

    def _held(self, nbytes: int) -> None:
        with self.lock:
            self.peak_held_bytes = max(self.peak_held_bytes, nbytes)

    def store(self, dst: Any, shard: Index, builder: Any, skip_empty: bool) -> bool:
        """Publish ``shard`` (its chunks are all put); returns whether anything was stored.
        An all-fill shard is not stored, and its key is deleted unless ``skip_empty``."""
        with self.lock:
            stream = self.open.pop(shard, None)
        if stream is not None and stream.commit():
            return True
        if not skip_empty:
            self.streams.delete(self.key_of(list(shard)))
        return False

    def drop(self, shard: Index) -> None:
        """Drop ``shard``'s stream unstored (one of its chunks failed)."""
        with self.lock:
            stream = self.open.pop(shard, None)
        if stream is not None:
            stream.abort()

    def abort(self) -> None:
        """Drop every open stream's temporary file (the write failed)."""
        with self.lock:
            streams, self.open = list(self.open.values()), {}
        for stream in streams:
            stream.abort()


def _flat(position: Index, grid: Index) -> int:
    """The C-order index of ``position`` in a shard of ``grid`` chunks."""
    flat = 0
    for i, n in zip(position, grid, strict=True):
        flat = flat * n + i
    return flat
