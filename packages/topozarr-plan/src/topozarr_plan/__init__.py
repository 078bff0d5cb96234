"""topozarr-plan: ``create_pyramid`` and the ``Pyramid`` write plan.

Validation, chunk/shard encoding heuristics, per-level templates and the lazy
``Pyramid.as_datatree`` view. The only topozarr member that knows xarray / xproj.
"""

from topozarr_plan.create import create_pyramid
from topozarr_plan.errors import PlanError
from topozarr_plan.flat import attach_geozarr_metadata, recommend_encoding
from topozarr_plan.pyramid import DEFAULT_MAX_REGION_BYTES, Pyramid
from topozarr_plan.types import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_CHUNKS_PER_SHARD,
    ChunksPerShard,
    CoarseningMethod,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CHUNKS_PER_SHARD",
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_MAX_REGION_BYTES",
    "ChunksPerShard",
    "CoarseningMethod",
    "PlanError",
    "Pyramid",
    "__version__",
    "attach_geozarr_metadata",
    "create_pyramid",
    "recommend_encoding",
]
