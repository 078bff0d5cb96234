"""Public import path ``topozarr.metadata``: GeoZarr attributes (from topozarr-metadata)."""

from topozarr_metadata import (
    Finding,
    LevelGeometry,
    ZarrLayerVarConfig,
    flat_attrs,
    layer_hints_attrs,
    level_geometry,
    level_group_attrs,
    multiscale_attrs,
    read_multiscales,
    validate,
)

__all__ = [
    "Finding",
    "LevelGeometry",
    "ZarrLayerVarConfig",
    "flat_attrs",
    "layer_hints_attrs",
    "level_geometry",
    "level_group_attrs",
    "multiscale_attrs",
    "read_multiscales",
    "validate",
]
