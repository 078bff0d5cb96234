"""Readers: root attributes of a multiscales group -> typed, frozen dataclasses.

The reader is lenient where the specs are (it follows ``derived_from`` graphs,
accepts levels without ``spatial:*`` by deriving them from ``transform.scale``)
and strict where a value cannot be interpreted (:class:`MetadataReadError`).
Documents with draft convention metadata are read with a
:class:`~topozarr_metadata.errors.LegacyConventionWarning`. Use
:func:`topozarr_metadata.validate` for a full list of problems.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .conventions import classify_cmo
from .errors import LegacyConventionWarning, MetadataReadError
from .geometry import BBox, Transform, bbox_of
from .hints import HINTS_KEY, ZarrLayerVarConfig, parse_layer_hints

__all__ = ["CrsMetadata", "LevelMetadata", "PyramidMetadata", "read_multiscales", "unwrap"]

_INT_TOL = 1e-9


@dataclass(frozen=True)
class CrsMetadata:
    """The CRS declared with the proj convention.

    Attributes
    ----------
    code
        ``proj:code`` (``AUTHORITY:CODE``) or ``None``.
    wkt2
        ``proj:wkt2`` or ``None``. Readers should prefer it on discrepancy.
    projjson
        ``proj:projjson`` (a read-only mapping) or ``None``.
    """

    code: str | None
    wkt2: str | None
    projjson: Mapping[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class LevelMetadata:
    """One entry of ``multiscales.layout``, with its absolute georeferencing.

    Attributes
    ----------
    index
        Position in the layout (0 = base level, the one viewers size from).
    asset
        Path of the level group relative to the multiscales group.
    shape
        ``(height, width)`` from ``spatial:shape`` (root value for level 0 when the
        entry has none), else derived from ``derived_from`` and ``transform.scale``;
        ``None`` when unknown.
    transform
        Absolute ``(a, b, c, d, e, f)`` from ``spatial:transform`` (or derived as
        for ``shape``); ``None`` when unknown.
    bbox
        ``(xmin, ymin, xmax, ymax)`` computed from ``transform`` and ``shape``.
    factor
        Cumulative factor relative to level 0 (pixel-size ratio ``a / a0`` when both
        transforms are known, else the product of ``transform.scale`` along the
        ``derived_from`` chain); snapped to an integer value when within 1e-9.
    derived_from
        Asset this level was resampled from, or ``None``.
    resampling_method
        The entry's method, else the layout default, else ``None``.
    scale, translation
        The relative ``transform`` of the entry, as given (``None`` when absent).
    """

    index: int
    asset: str
    shape: tuple[int, int] | None
    transform: Transform | None
    bbox: BBox | None
    factor: float | None
    derived_from: str | None
    resampling_method: str | None
    scale: tuple[float, ...] | None = None
    translation: tuple[float, ...] | None = None

    @property
    def cell_size(self) -> float | None:
        """Larger of the two pixel sizes ``max(|a|, |e|)`` in CRS units, or ``None``."""
        if self.transform is None:
            return None
        return max(abs(self.transform[0]), abs(self.transform[4]))


@dataclass(frozen=True)
class PyramidMetadata:
    """Everything a viewer needs from the root of a multiscale GeoZarr pyramid.

    Attributes
    ----------
    levels
        Layout entries in layout order (finest first in topozarr output).
    crs
        Declared CRS, or ``None`` when the root has no ``proj:*`` key.
    dims
        ``spatial:dimensions`` ``(y, x)`` of the root, or ``None``.
    hints
        ``"zarr-layer"`` display hints per variable (empty when absent).
    bbox
        Root ``spatial:bbox``, else the base level's bbox, else ``None``.
    registration
        ``spatial:registration`` (default ``"pixel"``).
    resampling_method
        Default method of the layout, or ``None``.
    legacy
        True when draft convention metadata was read (a warning was issued).
    """

    levels: tuple[LevelMetadata, ...]
    crs: CrsMetadata | None
    dims: tuple[str, str] | None
    hints: Mapping[str, ZarrLayerVarConfig] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    bbox: BBox | None = None
    registration: str = "pixel"
    resampling_method: str | None = None
    legacy: bool = False

    def level(self, asset: str) -> LevelMetadata:
        """The level whose asset is ``asset`` (``KeyError`` if none)."""
        for lvl in self.levels:
            if lvl.asset == asset:
                return lvl
        raise KeyError(
            f"no level with asset {asset!r}; assets are {[x.asset for x in self.levels]}"
        )

    def level_for_resolution(self, res: float) -> LevelMetadata:
        """The level a viewer should read to display at ground resolution ``res``.

        Rule: among the levels with a known cell size, pick the **coarsest level
        whose cell size is <= res** (it has at least the requested detail while
        reading the fewest pixels); if every level is coarser than ``res``, pick the
        **finest** level. Cell size is ``max(|a|, |e|)`` of the level's transform,
        in CRS units (degrees for geographic CRSs, usually metres otherwise); a
        relative tolerance of 1e-9 absorbs float noise, so ``res`` equal to a
        level's cell size selects that level.

        Parameters
        ----------
        res
            Desired ground resolution (size of one screen pixel) in CRS units, > 0.

        Raises
        ------
        ValueError
            If ``res`` is not a positive finite number, or no level has a transform.
        """
        if (
            not isinstance(res, numbers.Real)
            or isinstance(res, bool)
            or not math.isfinite(res)
            or res <= 0
        ):
            raise ValueError(f"res must be a positive finite number (CRS units), got {res!r}")
        sized = [(lvl.cell_size, lvl) for lvl in self.levels if lvl.cell_size is not None]
        if not sized:
            raise ValueError(
                "no level has a spatial:transform, so none can be matched to a resolution; "
                "write spatial:transform on the root or on the layout entries"
            )
        fits = [(size, lvl) for size, lvl in sized if size <= res * (1 + _INT_TOL)]
        if fits:
            return max(fits, key=lambda t: t[0])[1]
        return min(sized, key=lambda t: t[0])[1]


def unwrap(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the attributes of a zarr.json node document, or ``attrs`` itself."""
    if (
        isinstance(attrs, Mapping)
        and "node_type" in attrs
        and "zarr_format" in attrs
        and isinstance(attrs.get("attributes"), Mapping)
    ):
        return attrs["attributes"]  # type: ignore[no-any-return]
    return attrs


def _real(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _numbers(value: object, n: int | None, key: str) -> tuple[float, ...]:
    if (
        isinstance(value, list | tuple)
        and (n is None or len(value) == n)
        and all(_real(v) for v in value)
    ):
        return tuple(float(v) for v in value)
    count = f"{n} " if n else ""
    raise MetadataReadError(f"{key} must be an array of {count}finite numbers, got {value!r}")


def _shape(value: object, key: str) -> tuple[int, int]:
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        return (int(value[0]), int(value[1]))
    raise MetadataReadError(f"{key} must be [height, width] of positive integers, got {value!r}")


def _snap(x: float) -> float:
    r = round(x)
    return float(r) if r and abs(x - r) <= _INT_TOL * abs(x) else x


def _check_conventions(attrs: Mapping[str, Any]) -> bool:
    """Warn once if draft convention metadata is declared; return whether it was."""
    conventions = attrs.get("zarr_conventions")
    if not isinstance(conventions, list):
        return False
    problems = [p for s in map(classify_cmo, conventions) if s.legacy for p in s.problems]
    if problems:
        warnings.warn(
            "reading legacy (draft) convention metadata: "
            + "; ".join(problems)
            + ". Rewrite the attributes with topozarr_metadata builders to get v0.1 metadata.",
            LegacyConventionWarning,
            stacklevel=3,
        )
        return True
    return False


@dataclass
class _Entry:
    asset: str
    derived_from: str | None
    method: str | None
    scale: tuple[float, ...] | None
    translation: tuple[float, ...] | None
    shape: tuple[int, int] | None
    transform: Transform | None


def _layout(attrs: Mapping[str, Any]) -> tuple[list[Any], str | None]:
    """The ``multiscales.layout`` array and the default resampling method."""
    ms = attrs.get("multiscales")
    if ms is None:
        raise MetadataReadError(
            "attributes have no 'multiscales' key; this is not a multiscales group "
            "(for a flat store read spatial:/proj: keys directly)"
        )
    if isinstance(ms, list):
        raise MetadataReadError(
            "'multiscales' is a list (legacy ndpyramid/OME layout with 'datasets'); "
            "only the multiscales convention object with 'layout' is supported"
        )
    if not isinstance(ms, Mapping) or not isinstance(ms.get("layout"), list) or not ms["layout"]:
        raise MetadataReadError("'multiscales' must be an object with a non-empty 'layout' array")
    default = ms.get("resampling_method")
    if default is not None and not isinstance(default, str):
        raise MetadataReadError(f"multiscales.resampling_method must be a string, got {default!r}")
    return ms["layout"], default


def _entries(attrs: Mapping[str, Any]) -> tuple[list[_Entry], str | None, bool]:
    layout, default = _layout(attrs)
    legacy = False
    out: list[_Entry] = []
    for i, raw in enumerate(layout):
        entry, old_keys = _entry(raw, f"multiscales.layout[{i}]", default)
        legacy = legacy or old_keys
        out.append(entry)
    assets = [e.asset for e in out]
    if len(set(assets)) != len(assets):
        raise MetadataReadError(f"layout assets must be unique, got {assets!r}")
    return out, default, legacy


def _names(raw: Mapping[str, Any], key: str) -> tuple[Any, Any, bool]:
    """The entry's asset and derived_from (from the obsolete group keys, with a warning)."""
    asset, derived = raw.get("asset"), raw.get("derived_from")
    if asset is None and isinstance(raw.get("group"), str):
        warnings.warn(
            f"{key} uses the obsolete 'group'/'from_group' keys; v0.1 uses 'asset'/'derived_from'",
            LegacyConventionWarning,
            stacklevel=5,
        )
        return raw["group"], raw.get("from_group", derived), True
    return asset, derived, False


def _entry(raw: Any, key: str, default: str | None) -> tuple[_Entry, bool]:
    """One layout entry, type-checked; and whether it used the obsolete keys."""
    if not isinstance(raw, Mapping):
        raise MetadataReadError(f"{key} must be an object, got {raw!r}")
    asset, derived, legacy = _names(raw, key)
    if not isinstance(asset, str) or not asset:
        raise MetadataReadError(f"{key}.asset must be a non-empty string, got {asset!r}")
    if derived is not None and not isinstance(derived, str):
        raise MetadataReadError(f"{key}.derived_from must be a string, got {derived!r}")
    method = raw.get("resampling_method", default)
    if method is not None and not isinstance(method, str):
        raise MetadataReadError(f"{key}.resampling_method must be a string, got {method!r}")
    scale, translation = _relative(raw.get("transform"), key)
    shape = transform = None
    if "spatial:shape" in raw:
        shape = _shape(raw["spatial:shape"], f"{key}.spatial:shape")
    if "spatial:transform" in raw:
        transform = _numbers(raw["spatial:transform"], 6, f"{key}.spatial:transform")
    entry = _Entry(asset, derived, method, scale, translation, shape, transform)  # type: ignore[arg-type]
    return entry, legacy


def _relative(rel: Any, key: str) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """The entry's relative transform: (scale, translation), either may be absent."""
    if rel is None:
        return None, None
    if not isinstance(rel, Mapping):
        raise MetadataReadError(f"{key}.transform must be an object, got {rel!r}")
    scale = translation = None
    if "scale" in rel:
        scale = _numbers(rel["scale"], None, f"{key}.transform.scale")
    if "translation" in rel:
        translation = _numbers(rel["translation"], None, f"{key}.transform.translation")
    return scale, translation


def _check_no_cycle(entries: list[_Entry], by_asset: Mapping[str, int]) -> None:
    for e in entries:
        seen, cur = {e.asset}, e.derived_from
        while cur is not None and cur in by_asset:
            if cur in seen:
                raise MetadataReadError(f"derived_from cycle through layout asset {cur!r}")
            seen.add(cur)
            cur = entries[by_asset[cur]].derived_from


def _derive_geometry(e: _Entry, src: _Entry, sy: float, sx: float) -> None:
    """Fill the entry's missing transform and shape from its source level and scale."""
    if e.transform is None and src.transform is not None:
        a, b, c, d, ee, f = src.transform
        e.transform = (a * sx, b, c, d, ee * sy, f)
    if e.shape is None and src.shape is not None:
        ry, rx = _snap(sy), _snap(sx)
        if ry.is_integer() and rx.is_integer() and ry >= 1 and rx >= 1:
            h, w = src.shape[0] // int(ry), src.shape[1] // int(rx)
            if h >= 1 and w >= 1:
                e.shape = (h, w)


def _resolve(entries: list[_Entry]) -> list[float | None]:
    """Fill missing geometry from derived_from + scale; return chain factors vs level 0."""
    by_asset = {e.asset: i for i, e in enumerate(entries)}
    _check_no_cycle(entries, by_asset)
    chain: dict[int, float | None] = {0: 1.0}

    def visit(i: int) -> float | None:
        if i in chain:
            return chain[i]
        e = entries[i]
        factor: float | None = None
        if e.derived_from is not None:
            if e.derived_from not in by_asset:
                raise MetadataReadError(
                    f"layout asset {e.asset!r} is derived_from {e.derived_from!r}, "
                    f"which is not in the layout {list(by_asset)!r}"
                )
            j = by_asset[e.derived_from]
            parent = visit(j)
            if e.scale is not None and len(e.scale) == 2:
                sy, sx = e.scale
                factor = None if parent is None else parent * sx
                _derive_geometry(e, entries[j], sy, sx)
        chain[i] = factor
        return factor

    return [visit(i) for i in range(len(entries))]


def read_multiscales(attrs: Mapping[str, Any]) -> PyramidMetadata:
    """Parse the root attributes of a multiscales group.

    Parameters
    ----------
    attrs
        The group's attributes (or its whole ``zarr.json`` node document).

    Returns
    -------
    PyramidMetadata
        Levels in layout order with shapes, transforms, bboxes and cumulative
        factors; CRS; spatial dims; zarr-layer hints.

    Raises
    ------
    MetadataReadError
        (a ``ValueError``) when there is no usable ``multiscales.layout`` or a
        value has the wrong type.

    Warns
    -----
    LegacyConventionWarning
        When draft convention metadata (unpublished ``v1``/``v0`` URLs, draft
        names, ``group`` instead of ``asset``) is read.
    """
    attrs = unwrap(attrs)
    if not isinstance(attrs, Mapping):
        raise MetadataReadError(f"attributes must be an object, got {type(attrs).__name__}")
    legacy = _check_conventions(attrs)
    entries, default, legacy_keys = _entries(attrs)
    legacy = legacy or legacy_keys

    base = entries[0]
    if base.transform is None and "spatial:transform" in attrs:
        base.transform = _numbers(attrs["spatial:transform"], 6, "spatial:transform")  # type: ignore[assignment]
    if base.shape is None and "spatial:shape" in attrs:
        base.shape = _shape(attrs["spatial:shape"], "spatial:shape")
    chain = _resolve(entries)
    registration = attrs.get("spatial:registration", "pixel")
    if registration not in ("pixel", "node"):
        raise MetadataReadError(
            f"spatial:registration must be 'pixel' or 'node', got {registration!r}"
        )

    levels = _level_metadata(entries, chain, registration)
    bbox = levels[0].bbox
    if "spatial:bbox" in attrs:
        bbox = _numbers(attrs["spatial:bbox"], 4, "spatial:bbox")  # type: ignore[assignment]
    crs, dims, hints = _crs(attrs), _spatial_dims(attrs), _hints(attrs)

    return PyramidMetadata(
        levels=tuple(levels),
        crs=crs,
        dims=dims,
        hints=hints,
        bbox=bbox,
        registration=registration,
        resampling_method=default,
        legacy=legacy,
    )


def _level_metadata(
    entries: list[_Entry], chain: list[float | None], registration: str
) -> list[LevelMetadata]:
    base = entries[0]
    levels = []
    for i, (e, chain_factor) in enumerate(zip(entries, chain, strict=True)):
        factor = chain_factor
        if e.transform is not None and base.transform is not None and base.transform[0]:
            factor = e.transform[0] / base.transform[0]
        bbox = None
        if e.shape and e.transform:
            bbox = bbox_of(e.shape, e.transform, registration=registration)
        levels.append(
            LevelMetadata(
                index=i,
                asset=e.asset,
                shape=e.shape,
                transform=e.transform,
                bbox=bbox,
                factor=None if factor is None else _snap(factor),
                derived_from=e.derived_from,
                resampling_method=e.method,
                scale=e.scale,
                translation=e.translation,
            )
        )
    return levels


def _crs(attrs: Mapping[str, Any]) -> CrsMetadata | None:
    if not any(k in attrs for k in ("proj:code", "proj:wkt2", "proj:projjson")):
        return None
    code, wkt2, pj = attrs.get("proj:code"), attrs.get("proj:wkt2"), attrs.get("proj:projjson")
    if code is not None and not isinstance(code, str):
        raise MetadataReadError(f"proj:code must be a string, got {code!r}")
    if wkt2 is not None and not isinstance(wkt2, str):
        raise MetadataReadError(f"proj:wkt2 must be a string, got {wkt2!r}")
    if pj is not None and not isinstance(pj, Mapping):
        raise MetadataReadError(f"proj:projjson must be an object, got {pj!r}")
    return CrsMetadata(code, wkt2, None if pj is None else MappingProxyType(dict(pj)))


def _spatial_dims(attrs: Mapping[str, Any]) -> tuple[str, str] | None:
    if "spatial:dimensions" not in attrs:
        return None
    raw = attrs["spatial:dimensions"]
    if not (
        isinstance(raw, list | tuple) and len(raw) == 2 and all(isinstance(d, str) for d in raw)
    ):
        raise MetadataReadError(f"spatial:dimensions must be two names [y, x], got {raw!r}")
    return (raw[0], raw[1])


def _hints(attrs: Mapping[str, Any]) -> Mapping[str, ZarrLayerVarConfig]:
    if HINTS_KEY not in attrs:
        return MappingProxyType({})
    try:
        return MappingProxyType(parse_layer_hints(attrs[HINTS_KEY]))
    except ValueError as exc:
        raise MetadataReadError(str(exc)) from exc
