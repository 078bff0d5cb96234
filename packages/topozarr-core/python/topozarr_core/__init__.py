"""topozarr-core: the Rust kernel behind topozarr (NaN-aware block reduction and pyramids)."""

from topozarr_core._core import (
    DTYPES,
    MAX_NDIM,
    METHODS,
    SIMD,
    __version__,
    block_reduce,
)

__all__ = [
    "DTYPES",
    "MAX_NDIM",
    "METHODS",
    "SIMD",
    "__version__",
    "block_reduce",
]
