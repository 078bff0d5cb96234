"""Public import path ``topozarr.coarsen``: building a pyramid plan (from topozarr-plan)."""

from topozarr_plan import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_CHUNKS_PER_SHARD,
    ChunksPerShard,
    CoarseningMethod,
    attach_geozarr_metadata,
    create_pyramid,
    recommend_encoding,
)

__all__ = [
    "DEFAULT_CHUNKS_PER_SHARD",
    "DEFAULT_CHUNK_BYTES",
    "ChunksPerShard",
    "CoarseningMethod",
    "attach_geozarr_metadata",
    "create_pyramid",
    "recommend_encoding",
]
