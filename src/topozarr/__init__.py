"""topozarr: multiscale Zarr v3 pyramids from georeferenced xarray Datasets.

The public names are imported on first use, so that `topozarr info`/`validate` and
`topozarr --help` do not pay for importing xarray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from topozarr_engine.storage.exceptions import StoreError
    from topozarr_metadata.errors import MetadataReadError
    from topozarr_plan.errors import PlanError

    from topozarr.coarsen import (
        CoarseningMethod,
        attach_geozarr_metadata,
        create_pyramid,
        recommend_encoding,
    )
    from topozarr.errors import TopozarrError, UsageError, WriteStopped
    from topozarr.metadata import ZarrLayerVarConfig
    from topozarr.pyramid import Pyramid

__version__ = "0.1.0"

_EXPORTS = {
    "CoarseningMethod": "topozarr.coarsen",
    "create_pyramid": "topozarr.coarsen",
    "recommend_encoding": "topozarr.coarsen",
    "attach_geozarr_metadata": "topozarr.coarsen",
    "Pyramid": "topozarr.pyramid",
    "ZarrLayerVarConfig": "topozarr.metadata",
    # One exception root for everything topozarr raises itself, and its main branches.
    "TopozarrError": "topozarr.errors",
    "UsageError": "topozarr.errors",
    "WriteStopped": "topozarr.errors",
    "PlanError": "topozarr_plan.errors",
    "StoreError": "topozarr_engine.storage.exceptions",
    "MetadataReadError": "topozarr_metadata.errors",
}

__all__ = [
    "CoarseningMethod",
    "MetadataReadError",
    "PlanError",
    "Pyramid",
    "StoreError",
    "TopozarrError",
    "UsageError",
    "WriteStopped",
    "ZarrLayerVarConfig",
    "__version__",
    "attach_geozarr_metadata",
    "create_pyramid",
    "recommend_encoding",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'topozarr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
