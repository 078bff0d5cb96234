"""The shard-sink protocol: how a writer stores a region of an array, whichever io path.

Two implementations: :class:`ZarrShardSink` (``io="python"``: whole shards encoded by the
kernel or zarr-python and stored through the zarr store, anything else through
``array[region] = block``; on a local directory it also streams shards built chunk by chunk,
:meth:`ZarrShardSink.shard_streams`) and :class:`~topozarr_engine.storage.native.NativeWriter`
(``io="rust"``: whole shards encoded and uploaded by the kernel). ``tests/storage`` of the
engine holds the conformance tests every sink passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from topozarr_engine import shards
from topozarr_engine.region import Region
from topozarr_engine.storage.shard_index import ShardIndex
from topozarr_engine.storage.shard_stream import LocalShardStreams, local_root

__all__ = ["CallableSink", "ShardSink", "ZarrShardSink", "local_shard_streams", "shard_sink"]


@runtime_checkable
class ShardSink(Protocol):
    """Stores regions of zarr arrays.

    ``write_region(dst, region, block)`` stores ``block`` as ``dst[region]``: any region for
    the zarr path, whole shards (edge shards clipped) for the native one. A sink may store in
    the background: ``flush()`` returns once everything written is readable, and raises the
    first storage error. Time spent encoding is reported with
    :func:`topozarr_engine.timer.add_encode` (a writer's timer reads it around each call, and
    counts the rest of the call as write time).
    """

    def write_region(self, dst: Any, region: Region, block: np.ndarray) -> None: ...

    def flush(self) -> None: ...


class ZarrShardSink:
    """The zarr-python path: :func:`topozarr_engine.shards.write_region` (synchronous)."""

    def write_region(self, dst: Any, region: Region, block: np.ndarray) -> None:
        shards.write_region(dst, region, block)

    def shard_streams(self, dst: Any) -> LocalShardStreams | None:
        """Streams of ``dst``'s shards (:func:`local_shard_streams`)."""
        return local_shard_streams(dst)

    def flush(self) -> None:
        """Nothing to wait for: every write was stored when it returned."""


def local_shard_streams(dst: Any) -> LocalShardStreams | None:
    """Streams of ``dst``'s shards, for a writer that builds them inner chunk by inner chunk
    (each chunk goes to storage when encoded, not held until the shard is whole; the kernel
    encodes and writes it); ``None`` unless ``dst`` is a sharded array of a local directory
    (``LocalStore``) whose index codecs are known
    (:class:`~topozarr_engine.storage.shard_index.ShardIndex`). Both io paths stream so."""
    arr = getattr(dst, "_async_array", None)
    root = None if arr is None else local_root(arr.store_path.store)
    if root is None:
        return None
    index = ShardIndex.from_metadata(shards.zarr_json(arr))
    return None if index is None else LocalShardStreams(root, index)


class CallableSink:
    """A sink over a ``write(region, block)`` callable bound to one array (a caller's hook)."""

    def __init__(self, write: Callable[[Region, np.ndarray], None]) -> None:
        self.write = write

    def write_region(self, dst: Any, region: Region, block: np.ndarray) -> None:
        self.write(region, block)

    def flush(self) -> None:
        """The hook stores synchronously, or its owner flushes it."""


def shard_sink(write_region: Callable[[Region, np.ndarray], None] | None) -> ShardSink:
    """The sink of a driver's ``write_region`` option: the hook's, else the zarr path."""
    return ZarrShardSink() if write_region is None else CallableSink(write_region)
