"""topozarr-metadata: build, read and validate GeoZarr attributes (standard library only).

Builders (:func:`multiscale_attrs`, :func:`level_group_attrs`, :func:`flat_attrs`,
:func:`layer_hints_attrs`) emit multiscales v0.1 + proj v0.1 + spatial v0.1
attributes by the rules of ``docs/metadata.md``; :func:`read_multiscales` parses
root attributes into frozen dataclasses; :func:`validate` (needs the ``validate``
extra) checks attributes against the bundled v0.1 schemas and cross-field rules.
"""

from .build import flat_attrs, group_document, level_group_attrs, multiscale_attrs
from .conventions import CONVENTIONS, MULTISCALES_CMO, PROJ_CMO, SPATIAL_CMO
from .errors import LegacyConventionWarning, MetadataReadError, TopozarrError
from .geometry import LevelGeometry, level_geometry
from .hints import ZarrLayerVarConfig, layer_hints_attrs
from .read import CrsMetadata, LevelMetadata, PyramidMetadata, read_multiscales
from .validate import Finding, validate

__version__ = "0.1.0"

__all__ = [
    "CONVENTIONS",
    "MULTISCALES_CMO",
    "PROJ_CMO",
    "SPATIAL_CMO",
    "CrsMetadata",
    "Finding",
    "LegacyConventionWarning",
    "LevelGeometry",
    "LevelMetadata",
    "MetadataReadError",
    "PyramidMetadata",
    "TopozarrError",
    "ZarrLayerVarConfig",
    "__version__",
    "flat_attrs",
    "group_document",
    "layer_hints_attrs",
    "level_geometry",
    "level_group_attrs",
    "multiscale_attrs",
    "read_multiscales",
    "validate",
]
