"""topozarr-engine: streaming execution for topozarr (no xarray).

Region grids, a thread pool with a memory budget, ``copy_array`` and ``downsample_level``
(the documented lower-level drivers) and the single-pass pyramid writer.
"""

from topozarr_engine.copy import copy_array
from topozarr_engine.downsample import downsample_level
from topozarr_engine.errors import KernelVersionError, RegionError, TopozarrEngineError
from topozarr_engine.kernel import KERNEL_VERSION
from topozarr_engine.pyramid import write_pyramid_arrays
from topozarr_engine.pyramid_writer import PyramidWriter
from topozarr_engine.region import Region, coarsened_shape, morton_order
from topozarr_engine.region_writer import WriteHooks
from topozarr_engine.resources import DEFAULT_MAX_REGION_BYTES, default_max_workers
from topozarr_engine.specs import PyramidSpec
from topozarr_engine.tiles import PyramidLayout, plan_tiles
from topozarr_engine.timer import RegionTimer

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_REGION_BYTES",
    "KERNEL_VERSION",
    "KernelVersionError",
    "PyramidLayout",
    "PyramidSpec",
    "PyramidWriter",
    "Region",
    "RegionError",
    "RegionTimer",
    "TopozarrEngineError",
    "WriteHooks",
    "__version__",
    "coarsened_shape",
    "copy_array",
    "default_max_workers",
    "downsample_level",
    "morton_order",
    "plan_tiles",
    "write_pyramid_arrays",
]
