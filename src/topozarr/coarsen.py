"""Public import path ``topozarr.coarsen``: building a pyramid plan (from topozarr-plan)."""

from topozarr_plan import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_CHUNKS_PER_SHARD,
    ChunksPerShard,
    CoarseningMethod,
    create_pyramid,
)

__all__ = [
    "DEFAULT_CHUNKS_PER_SHARD",
    "DEFAULT_CHUNK_BYTES",
    "ChunksPerShard",
    "CoarseningMethod",
    "create_pyramid",
]
