"""The index of a ``sharding_indexed`` shard, encoded from the array's ``zarr.json``.

A shard index is, per inner chunk in C order of its position in the shard, the chunk's byte
offset and length as ``uint64`` (both ``2**64 - 1`` for a chunk left out), shaped
``chunk grid + (2,)``, encoded with the array's ``index_codecs`` and stored at the start or the
end of the shard (``index_location``). Only the index codecs zarr writers use are known here:
``bytes`` (either endian) optionally followed by ``crc32c``; for others
:meth:`ShardIndex.from_metadata` gives ``None`` and the caller stores shards another way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ABSENT", "ShardIndex"]

#: Offset and length of an inner chunk a shard does not hold.
ABSENT = 2**64 - 1


@dataclass(frozen=True)
class ShardIndex:
    """How one array's shard indexes are laid out.

    Attributes
    ----------
    chunks
        Inner chunks per shard.
    at_start
        ``index_location`` is ``"start"`` (else ``"end"``).
    big_endian
        The ``bytes`` index codec's endian is ``"big"``.
    checksum
        A ``crc32c`` codec follows (4 bytes, little-endian, of the index bytes).
    """

    chunks: int
    at_start: bool
    big_endian: bool = False
    checksum: bool = True

    @classmethod
    def from_metadata(cls, doc: bytes | str | dict[str, Any]) -> ShardIndex | None:
        """From a ``zarr.json`` document; ``None`` when the array is not sharded or its index
        codecs are not ``bytes`` (+ ``crc32c``)."""
        meta = json.loads(doc) if isinstance(doc, bytes | str) else doc
        codecs = meta.get("codecs") or []
        if len(codecs) != 1 or codecs[0].get("name") != "sharding_indexed":
            return None
        config = codecs[0].get("configuration") or {}
        shard = meta["chunk_grid"]["configuration"]["chunk_shape"]
        inner = config["chunk_shape"]
        names = [c.get("name") for c in config.get("index_codecs", [])]
        if names not in (["bytes"], ["bytes", "crc32c"]):
            return None
        endian = (config["index_codecs"][0].get("configuration") or {}).get("endian", "little")
        return cls(
            chunks=math.prod(s // c for s, c in zip(shard, inner, strict=True)),
            at_start=config.get("index_location", "end") == "start",
            big_endian=endian == "big",
            checksum=names[-1] == "crc32c",
        )

    @property
    def size(self) -> int:
        """Bytes of the encoded index."""
        return 16 * self.chunks + (4 if self.checksum else 0)

    def encode(self, entries: np.ndarray) -> bytes:
        """The encoded index of ``entries`` (``(chunks, 2)`` offsets and lengths, C order)."""
        table = np.asarray(entries, dtype=">u8" if self.big_endian else "<u8")
        if table.shape != (self.chunks, 2):
            raise ValueError(f"a shard index holds ({self.chunks}, 2) entries, got {table.shape}")
        raw = table.tobytes()
        if not self.checksum:
            return raw
        import google_crc32c  # zarr-python's own crc32c dependency

        return raw + int(google_crc32c.value(raw)).to_bytes(4, "little")

    def empty(self) -> np.ndarray:
        """Entries of a shard holding no chunk yet (every one :data:`ABSENT`)."""
        return np.full((self.chunks, 2), ABSENT, dtype=np.uint64)
