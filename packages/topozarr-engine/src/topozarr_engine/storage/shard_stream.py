"""Shards streamed to a local directory inner chunk by inner chunk (a store capability).

A writer that fills a shard over many calls need not hold its encoded chunks until the last
one is in: :class:`ShardStream` appends each to a temporary file next to the shard's key and,
on :meth:`ShardStream.commit`, writes the index (:class:`~.shard_index.ShardIndex`) and renames
the file onto the key with ``os.replace``, so a reader sees the whole shard or none of it.

The temporary name, ``.<key's name>.topozarr-partial-<32 hex digits>``, is no chunk key (zarr
chunk keys do not start with a dot) and marks the file as ours: a write killed mid-shard leaves
it behind, and the next write or resume of the store removes such files
(:func:`remove_partial_shards`) and nothing else.

Only :func:`local_root` stores (zarr-python's ``LocalStore``) take streams; others store whole
shards.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import uuid
from pathlib import Path
from typing import Any

from topozarr_engine import kernel
from topozarr_engine.storage.shard_index import ABSENT, ShardIndex

__all__ = [
    "PARTIAL_MARKER",
    "LocalShardStreams",
    "ShardStream",
    "local_root",
    "remove_partial_shards",
]

#: What the temporary file of a streamed shard has in its name.
PARTIAL_MARKER = ".topozarr-partial-"
_PARTIAL = re.compile(r"\..+" + re.escape(PARTIAL_MARKER) + r"[0-9a-f]{32}")


def local_root(store: Any) -> Path | None:
    """The directory of a writable zarr-python ``LocalStore``, else ``None``."""
    from zarr.storage import LocalStore

    if isinstance(store, LocalStore) and not store.read_only:
        return Path(store.root)
    return None


def remove_partial_shards(root: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of streamed shards under ``root`` (a write was cut short);
    returns them. Files of any other name are left alone."""
    removed = []
    for parent, _, files in os.walk(root):
        for name in files:
            if _PARTIAL.fullmatch(name):
                path = Path(parent, name)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


class LocalShardStreams:
    """Opens :class:`ShardStream` s of one array's shards under a local store's ``root``."""

    def __init__(self, root: Path, index: ShardIndex) -> None:
        self.root = root
        self.index = index

    def open(self, key: str) -> ShardStream:
        """A stream of the shard at store key ``key`` (no file until its first chunk)."""
        return ShardStream(self.root / key, self.index)

    def delete(self, key: str) -> None:
        """Remove the shard at ``key``, if stored (an all-fill shard over an older one)."""
        with contextlib.suppress(FileNotFoundError):
            (self.root / key).unlink()


class ShardStream:
    """One shard written chunk by chunk to a temporary file, then renamed onto its key.

    The kernel encodes each chunk and writes it into the file in one call without the GIL
    (``ShardBuilder.append_chunk`` / ``append_chunks`` into a ``topozarr_core.ChunkFile``,
    open until the shard is committed or aborted): the encoded bytes never become Python
    objects, and each is written while it is still in the CPU's cache (encoding a tile's
    chunks first and writing them together made the kernel's copy into the page cache about
    4x slower). Appends may come from several threads; the file serialises them.
    """

    def __init__(self, path: Path, index: ShardIndex) -> None:
        self.path = path
        self.index = index
        self.entries = index.empty()
        self.temp: Path | None = None
        self.file: Any = None
        # Chunk bytes start after the index when it comes first.
        self.end = index.size if index.at_start else 0
        self.lock = threading.Lock()

    def _opened(self) -> Any:
        """The open file (created by the first chunk); call with the lock held."""
        if self.file is None:
            temp = self.path.with_name(f".{self.path.name}{PARTIAL_MARKER}{uuid.uuid4().hex}")
            try:
                self.file = kernel.ChunkFile(temp, self.end)
            except (FileNotFoundError, NotADirectoryError):  # its directory is made when missing
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.file = kernel.ChunkFile(temp, self.end)
            self.temp = temp
        return self.file

    def append_chunk(self, position: int, builder: Any, raw: Any) -> int:
        """Encode the whole inner chunk ``raw`` with ``builder`` and write it as the chunk at
        C-order ``position``; returns its encoded size (0: only fill values, not written)."""
        with self.lock:
            file = self._opened()
        written = builder.append_chunk(raw, file)
        if written is None:
            return 0
        with self.lock:
            self.entries[position] = written
        return int(written[1])

    def append_chunks(
        self, positions: list[int], builder: Any, block: Any, origins: list[list[int]]
    ) -> int:
        """Encode the whole inner chunks of ``block`` (raw bytes) at ``origins`` with
        ``builder`` and write each as soon as it is encoded, as the chunks at C-order
        ``positions``, in one kernel call; returns the largest encoded chunk (0: only fill
        values, nothing written)."""
        with self.lock:
            file = self._opened()
        placed = builder.append_chunks(block, origins, file)
        largest = 0
        with self.lock:
            for position, entry in zip(positions, placed, strict=True):
                if entry is not None:
                    self.entries[position] = entry
                    largest = max(largest, int(entry[1]))
        return largest

    def commit(self) -> bool:
        """Write the index and publish the shard; ``False`` when nothing was written (no chunk
        appended, or only fill chunks: the file is removed). The temporary file is removed
        if this fails."""
        with self.lock:
            file = self.file
        if file is None or (self.entries == ABSENT).all():
            self.abort()
            return False
        try:
            end = file.end
            file.write_at(self.index.encode(self.entries), 0 if self.index.at_start else end)
            file.close()
            assert self.temp is not None
            os.replace(self.temp, self.path)
        except BaseException:
            self.abort()
            raise
        with self.lock:
            self.temp = self.file = None
        return True

    def abort(self) -> None:
        """Close the file and drop what was written (the temporary file)."""
        with self.lock:
            file, self.file = self.file, None
            temp, self.temp = self.temp, None
        if file is not None:
            file.close()
        if temp is not None:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
