"""Builders of GeoZarr attribute dicts (multiscales v0.1 + proj v0.1 + spatial v0.1).

Pure functions of plain values; the returned dicts are fresh, JSON-ready (Python
floats in transforms, bboxes and scales; ints in shapes) and follow the rules
restated in the repository's ``docs/metadata.md``:

* root (= multiscales group): ``zarr_conventions`` [multiscales, proj, spatial],
  ``multiscales`` {resampling_method, layout}, ``proj:code`` (when known),
  ``proj:wkt2``, ``spatial:dimensions``/``transform``/``shape``/``bbox``/
  ``registration`` of level 0, and ``"zarr-layer"`` hints when given;
* each level group: ``zarr_conventions`` [proj, spatial], the same proj keys and
  that level's spatial keys;
* a flat (single-level) store: the level-0 group attributes (+ hints).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .conventions import cmo
from .geometry import (
    LevelGeometry,
    check_crs,
    check_dims,
    check_factor,
    check_factors,
    check_method,
    check_shape,
    check_transform,
    level_geometry,
)
from .hints import ZarrLayerVarConfig, layer_hints_attrs

__all__ = ["flat_attrs", "group_document", "level_group_attrs", "multiscale_attrs"]

_ASSET = re.compile(r"^(?!/)(?!.*(\.\.))([^/]+(/[^/]+)*)$")


def group_document(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Wrap attributes in a Zarr v3 group node document (the content of ``zarr.json``).

    The convention schemas validate such documents, not bare attribute dicts.
    """
    return {"zarr_format": 3, "node_type": "group", "attributes": dict(attrs)}


def _proj(crs_wkt2: str, crs_code: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if crs_code is not None:
        out["proj:code"] = crs_code
    out["proj:wkt2"] = crs_wkt2
    return out


def _spatial(dims: tuple[str, str], geom: LevelGeometry) -> dict[str, Any]:
    return {
        "spatial:dimensions": [dims[0], dims[1]],
        "spatial:transform": list(geom.transform),
        "spatial:shape": list(geom.shape),
        "spatial:bbox": list(geom.bbox),
        "spatial:registration": "pixel",
    }


def _hints(layer_hints: Mapping[str, ZarrLayerVarConfig] | None) -> dict[str, Any]:
    if layer_hints is None or len(layer_hints) == 0:
        return {}
    return layer_hints_attrs(layer_hints)


def _assets(assets: Sequence[str] | None, n: int) -> list[str]:
    if assets is None:
        return [str(i) for i in range(n)]
    if isinstance(assets, str | bytes) or len(assets) != n:
        raise ValueError(
            f"assets must name one group per factor ({n}), got {assets!r}; "
            "omit it to use '0', '1', ..."
        )
    for asset in assets:
        if not isinstance(asset, str) or not _ASSET.match(asset):
            raise ValueError(
                f"asset {asset!r} is not a relative group path (no leading '/', no '..'), "
                "e.g. '0' or 'level_0'"
            )
    if len(set(assets)) != n:
        raise ValueError(f"assets must be unique, got {list(assets)!r}")
    return list(assets)


def _level_methods(level_methods: Sequence[str] | None, method: str, n: int) -> list[str]:
    if level_methods is None:
        return [method] * n
    if isinstance(level_methods, str | bytes) or len(level_methods) not in (n - 1, n):
        raise ValueError(
            f"level_methods must give one method per coarsened level ({n - 1}) or per level "
            f"({n}, entry 0 ignored), got {level_methods!r}"
        )
    given = list(level_methods)
    if len(given) == n - 1:
        given = [method, *given]
    return [
        check_method(m, name=f"level_methods[{i}]") if i else method for i, m in enumerate(given)
    ]


def multiscale_attrs(  # noqa: PLR0913  (a document builder: one keyword per field it writes)
    *,
    shape: Sequence[int],
    transform: Sequence[float],
    factors: Sequence[int],
    dims: Sequence[str],
    crs_wkt2: str,
    crs_code: str | None = None,
    method: str = "mean",
    level_methods: Sequence[str] | None = None,
    layer_hints: Mapping[str, ZarrLayerVarConfig] | None = None,
    assets: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Root attributes of a multiscale pyramid.

    Parameters
    ----------
    shape
        Level-0 ``(height, width)``.
    transform
        Level-0 ``[a, b, c, d, e, f]`` (rasterio order), axis-aligned.
    factors
        Cumulative factor of each level, finest first, starting at 1, strictly
        increasing, each dividing the next (e.g. ``[1, 2, 4]`` or ``[1, 4, 16]``).
    dims
        Spatial dimension names ordered ``(y, x)``.
    crs_wkt2
        WKT2 of the CRS (always emitted as ``proj:wkt2``).
    crs_code
        ``AUTHORITY:CODE`` from the CRS's authority (``proj:code``); ``None`` omits it.
    method
        Default resampling method (``multiscales.resampling_method``), also recorded
        on every coarsened layout entry that ``level_methods`` does not override.
    level_methods
        Per-level methods: ``len(factors) - 1`` entries for levels 1..n-1, or
        ``len(factors)`` entries of which entry 0 is ignored (level 0 is not resampled).
    layer_hints
        Variable -> :class:`ZarrLayerVarConfig`; adds the ``"zarr-layer"`` key when
        non-empty.
    assets
        Level group names; default ``"0", "1", ...``.

    Returns
    -------
    dict
        The root group's attributes.

    Raises
    ------
    ValueError
        For impossible input (see the ``check_*`` functions in
        :mod:`topozarr_metadata.geometry`) or a level that would be empty.
    """
    h_w = check_shape(shape)
    affine = check_transform(transform)
    cumulative = check_factors(factors)
    yx = check_dims(dims)
    wkt2, code = check_crs(crs_wkt2, crs_code)
    default = check_method(method)
    n = len(cumulative)
    names = _assets(assets, n)
    methods = _level_methods(level_methods, default, n)
    hints = _hints(layer_hints)
    geoms = [level_geometry(h_w, affine, k) for k in cumulative]

    layout: list[dict[str, Any]] = []
    for i, geom in enumerate(geoms):
        entry: dict[str, Any] = {"asset": names[i]}
        if i == 0:
            entry["transform"] = {"scale": [1.0, 1.0], "translation": [0.0, 0.0]}
        else:
            step = float(cumulative[i] // cumulative[i - 1])
            entry["derived_from"] = names[i - 1]
            entry["transform"] = {"scale": [step, step], "translation": [0.0, 0.0]}
            entry["resampling_method"] = methods[i]
        entry["spatial:shape"] = list(geom.shape)
        entry["spatial:transform"] = list(geom.transform)
        layout.append(entry)

    attrs: dict[str, Any] = {
        "zarr_conventions": [cmo("multiscales"), cmo("proj"), cmo("spatial")],
        "multiscales": {"resampling_method": default, "layout": layout},
    }
    attrs.update(_proj(wkt2, code))
    attrs.update(_spatial(yx, geoms[0]))
    attrs.update(hints)
    return attrs


def level_group_attrs(  # noqa: PLR0913  (a document builder: one keyword per field it writes)
    *,
    shape: Sequence[int],
    transform: Sequence[float],
    factor: int,
    dims: Sequence[str],
    crs_wkt2: str,
    crs_code: str | None = None,
) -> dict[str, Any]:
    """Attributes of one level group of a pyramid.

    Parameters
    ----------
    shape, transform
        Level-0 ``(height, width)`` and transform (the level's own values are
        derived analytically from these and ``factor``).
    factor
        Cumulative factor of this level (1 for level 0).
    dims, crs_wkt2, crs_code
        As in :func:`multiscale_attrs`; proj is restated on every level group
        because it only inherits to direct child arrays.

    Returns
    -------
    dict
        ``zarr_conventions`` [proj, spatial], proj keys and this level's spatial keys.
    """
    geom = level_geometry(check_shape(shape), check_transform(transform), check_factor(factor))
    yx = check_dims(dims)
    wkt2, code = check_crs(crs_wkt2, crs_code)
    attrs: dict[str, Any] = {"zarr_conventions": [cmo("proj"), cmo("spatial")]}
    attrs.update(_proj(wkt2, code))
    attrs.update(_spatial(yx, geom))
    return attrs


def flat_attrs(  # noqa: PLR0913  (a document builder: one keyword per field it writes)
    *,
    shape: Sequence[int],
    transform: Sequence[float],
    dims: Sequence[str],
    crs_wkt2: str,
    crs_code: str | None = None,
    layer_hints: Mapping[str, ZarrLayerVarConfig] | None = None,
) -> dict[str, Any]:
    """Root attributes of a flat, single-level GeoZarr store.

    Same keys as a level-0 group (:func:`level_group_attrs` with ``factor=1``),
    plus ``"zarr-layer"`` when ``layer_hints`` is non-empty. No ``multiscales``.
    """
    hints = _hints(layer_hints)
    attrs = level_group_attrs(
        shape=shape, transform=transform, factor=1, dims=dims, crs_wkt2=crs_wkt2, crs_code=crs_code
    )
    attrs.update(hints)
    return attrs
