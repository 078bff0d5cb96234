"""Public import path ``topozarr.engine``: the streaming drivers (from topozarr-engine)."""

from topozarr_engine import (
    DEFAULT_MAX_REGION_BYTES,
    Region,
    RegionTimer,
    copy_array,
    downsample_level,
)

__all__ = ["DEFAULT_MAX_REGION_BYTES", "Region", "RegionTimer", "copy_array", "downsample_level"]
