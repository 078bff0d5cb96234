"""topozarr: multiscale Zarr v3 pyramids from georeferenced xarray Datasets.

The public names are imported on first use, so that `topozarr info`/`validate` and
`topozarr --help` do not pay for importing xarray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from topozarr.coarsen import (
        CoarseningMethod,
        attach_geozarr_metadata,
        create_pyramid,
        recommend_encoding,
    )
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
}

__all__ = [
    "CoarseningMethod",
    "Pyramid",
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
