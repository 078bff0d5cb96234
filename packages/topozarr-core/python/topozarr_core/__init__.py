"""topozarr-core: the Rust kernel behind topozarr (NaN-aware block reduction and pyramids).

See ``topozarr_core._core`` (and its ``.pyi`` stub) for the full contract of each export.
"""

from topozarr_core._core import (
    DTYPES,
    MAX_NDIM,
    METHODS,
    SIMD,
    Accumulator,
    ChunkFile,
    NativeArray,
    NativeStore,
    ShardBuilder,
    ShardEncoder,
    SourceArray,
    UploadGroup,
    __version__,
    block_reduce,
    method_table,
    pyramid_tile,
    scrub_secrets,
)

__all__ = [
    "DTYPES",
    "MAX_NDIM",
    "METHODS",
    "SIMD",
    "Accumulator",
    "ChunkFile",
    "NativeArray",
    "NativeStore",
    "ShardBuilder",
    "ShardEncoder",
    "SourceArray",
    "UploadGroup",
    "__version__",
    "block_reduce",
    "method_table",
    "pyramid_tile",
    "scrub_secrets",
]
