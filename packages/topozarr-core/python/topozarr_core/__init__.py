"""topozarr-core: the Rust kernel behind topozarr."""

from topozarr_core._core import __version__

__all__ = ["__version__"]
