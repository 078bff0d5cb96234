"""Public type aliases and defaults of the pyramid plan."""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "DEFAULT_CHUNKS_PER_SHARD",
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_METHOD",
    "ChunksPerShard",
    "CoarseningMethod",
    "MethodSpec",
]

#: Spatial aggregation methods accepted by ``create_pyramid(method=...)``. The documented
#: vocabulary is mean/max/min/sum; for categorical rasters "mode" (the most frequent valid
#: value of the native window, ties to the smallest) and "nearest" (top-left cell of each
#: window). ``create_pyramid`` also takes a ``{variable: method}`` dict (see
#: :data:`MethodSpec`).
CoarseningMethod = Literal["mean", "max", "min", "sum", "nearest", "mode"]

#: What ``create_pyramid(method=...)`` accepts: one method for every spatial variable, or a
#: ``{variable: method}`` dict (variables not in it use ``"mean"``).
MethodSpec = CoarseningMethod | dict[str, CoarseningMethod]

#: The method of spatial variables a method dict does not name.
DEFAULT_METHOD: Final[CoarseningMethod] = "mean"

#: Number of chunks per shard along each spatial dimension.
ChunksPerShard = Literal[1, 2, 4, 8, 16, 32]

#: Target uncompressed chunk size (512 KiB): large enough to amortise per-request latency
#: for web readers, small enough that one chunk decodes in well under a millisecond.
DEFAULT_CHUNK_BYTES: Final[int] = 512 * 1024

#: 4 x 4 = 16 chunks per shard (~8 MiB uncompressed at the default chunk size).
DEFAULT_CHUNKS_PER_SHARD: Final[ChunksPerShard] = 4

#: Allowed ``chunks_per_shard`` values (powers of two in 1..32).
ALLOWED_CHUNKS_PER_SHARD: Final[tuple[int, ...]] = (1, 2, 4, 8, 16, 32)

#: A shard's index holds 16 bytes per inner chunk (offset and length, two uint64) plus a
#: 4-byte crc32c. Readers fetch it before any chunk, so it stays about 2 KiB.
SHARD_INDEX_BYTES_PER_CHUNK: Final[int] = 16
SHARD_INDEX_CHECKSUM_BYTES: Final[int] = 4
MAX_SHARD_INDEX_BYTES: Final[int] = 2 * 1024 + SHARD_INDEX_CHECKSUM_BYTES

#: Upper bound on inner chunks per shard reached by widening non-spatial dimensions (128).
MAX_WIDENED_CHUNKS_PER_SHARD: Final[int] = (
    MAX_SHARD_INDEX_BYTES - SHARD_INDEX_CHECKSUM_BYTES
) // SHARD_INDEX_BYTES_PER_CHUNK
