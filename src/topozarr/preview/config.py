"""The page's ``config.json``: variables, display ranges, levels and placement of a pyramid.

zarr-layer needs ``clim`` and ``colormap`` for every layer and reads neither from the store;
they come from the root ``"zarr-layer"`` hints when present, else a robust 2-98 % range of the
coarsest level (cheap: that level is small) and the default colormap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import zarr

from topozarr.errors import UsageError
from topozarr.preview.colormaps import DEFAULT_COLORMAP, colormap, known_colormap
from topozarr.preview.crs import UndrawableCrs, layer_crs, outline_lonlat, view_bounds

ROBUST_PERCENTILES = (2.0, 98.0)

_Node = TypeVar("_Node", zarr.Array, zarr.Group)


def _member(group: zarr.Group, path: str, kind: type[_Node]) -> _Node:
    """``group[path]``, which must be a ``kind``: a level is a group, a variable an array."""
    node = group[path]
    if not isinstance(node, kind):
        raise UsageError(
            f"{path!r} in the pyramid is not a zarr {kind.__name__.lower()}; "
            "preview a pyramid written by topozarr"
        )
    return node


def _dims(arr: zarr.Array) -> tuple[str, ...]:
    names = getattr(arr.metadata, "dimension_names", None)
    return tuple(names) if names else ()


def _attr(root: zarr.Group, base: zarr.Group, key: str) -> Any:
    """A geo attribute from the root group, else from the base level's group."""
    value = root.attrs.get(key)
    return base.attrs.get(key) if value is None else value


def _levels(root: zarr.Group) -> list[dict[str, Any]]:
    multiscales = root.attrs.get("multiscales")
    layout = multiscales.get("layout") if isinstance(multiscales, Mapping) else None
    if not isinstance(layout, list) or not layout:
        raise UsageError(
            "the store has no multiscales layout; preview a pyramid written by topozarr"
        )
    return [{"asset": str(entry["asset"])} for entry in layout]


def _labels(group: zarr.Group, dim: str, size: int) -> list[str]:
    """Readable labels for the steps of a non-spatial dim (CF times decoded)."""
    if dim not in group:
        return [str(i) for i in range(size)]
    coord = _member(group, dim, zarr.Array)
    values = np.asarray(coord[:])
    units = coord.attrs.get("units")
    if isinstance(units, str) and " since " in units:
        import xarray as xr

        decoded = xr.decode_cf(xr.Dataset({dim: ((dim,), values, dict(coord.attrs))}))[dim]
        return [str(v)[:19].replace("T00:00:00", "") for v in decoded.values]
    return [str(v) for v in values.tolist()]


def _clim(hint: Any, coarsest: zarr.Array) -> tuple[list[float], str]:
    if hint is not None and hint.clim is not None:
        return [hint.clim[0], hint.clim[1]], "range from the store's hints"
    values = np.asarray(coarsest[...], dtype=np.float64)
    fill = coarsest.fill_value
    if fill is not None and not np.isnan(fill):
        values = np.where(values == fill, np.nan, values)
    if not np.isfinite(values).any():
        return [0.0, 1.0], "no data in the coarsest level"
    lo, hi = np.nanpercentile(values, ROBUST_PERCENTILES)
    if not hi > lo:  # a constant field still needs an interval
        lo, hi = lo - 0.5 * max(abs(lo), 1.0), hi + 0.5 * max(abs(hi), 1.0)
    return [float(lo), float(hi)], "2-98 % of the coarsest level"


def _variables(
    root: zarr.Group, levels: list[dict[str, Any]], spatial: tuple[str, str]
) -> list[dict[str, Any]]:
    from topozarr_metadata.hints import parse_layer_hints

    base = _member(root, levels[0]["asset"], zarr.Group)
    coarsest = _member(root, levels[-1]["asset"], zarr.Group)
    raw_hints = root.attrs.get("zarr-layer")
    hints = parse_layer_hints(raw_hints) if raw_hints is not None else {}
    out = []
    for name, arr in sorted(base.arrays(), key=lambda item: item[0]):
        dims = _dims(arr)
        if not set(spatial) <= set(dims) or name not in coarsest:
            continue
        hint = hints.get(name)
        clim, clim_source = _clim(hint, _member(coarsest, name, zarr.Array))
        cmap = hint.colormap if hint is not None and hint.colormap else DEFAULT_COLORMAP
        extra = [
            {"name": d, "labels": _labels(base, d, arr.shape[i])}
            for i, d in enumerate(dims)
            if d not in spatial
        ]
        out.append(
            {
                "name": name,
                "dims": list(dims),
                "extra_dims": extra,
                "clim": clim,
                "clim_source": clim_source,
                "colormap": cmap if known_colormap(cmap) else DEFAULT_COLORMAP,
                "requested_colormap": cmap,
                "units": arr.attrs.get("units"),
                "long_name": arr.attrs.get("long_name"),
            }
        )
    return out


def _placement(root: zarr.Group, base: zarr.Group, shape: tuple[int, int]) -> dict[str, Any]:
    transform = _attr(root, base, "spatial:transform")
    bbox = _attr(root, base, "spatial:bbox")
    if transform is None:
        raise UsageError("the pyramid has no spatial:transform; rebuild it with topozarr")
    a, _b, c, _d, e, f = transform
    if bbox is None:
        xs = (c, c + a * shape[1])
        ys = (f, f + e * shape[0])
        bbox = [min(xs), min(ys), max(xs), max(ys)]
    return {"bounds": [float(v) for v in bbox], "lat_is_ascending": bool(e > 0)}


def preview_config(root: zarr.Group, *, variable: str | None = None) -> dict[str, Any]:
    """Everything the page needs, as a JSON-ready dict.

    Parameters
    ----------
    root
        The pyramid's root group.
    variable
        Shown first; ``None`` takes the first variable by name.

    Raises
    ------
    UsageError
        Not a pyramid, no variable on the spatial grid, or ``variable`` is not one of them.
    """
    levels = _levels(root)
    base = _member(root, levels[0]["asset"], zarr.Group)
    dims = _attr(root, base, "spatial:dimensions") or ["lat", "lon"]
    spatial = (str(dims[0]), str(dims[1]))
    variables = _variables(root, levels, spatial)
    if not variables:
        raise UsageError(f"no variable of the pyramid has the spatial dims {list(spatial)}")
    names = [v["name"] for v in variables]
    if variable is not None:
        if variable not in names:
            raise UsageError(f"--var {variable!r} is not in the pyramid; choose one of {names}")
        variables.sort(key=lambda v: v["name"] != variable)
    for level in levels:
        arr = _member(_member(root, level["asset"], zarr.Group), variables[0]["name"], zarr.Array)
        d = _dims(arr)
        level["shape"] = [arr.shape[d.index(spatial[0])], arr.shape[d.index(spatial[1])]]
    config: dict[str, Any] = {
        "store_url": "store/",
        "variables": variables,
        "levels": levels,
        "spatial_dimensions": {"lat": spatial[0], "lon": spatial[1]},
        "colormaps": {v["colormap"]: colormap(v["colormap"]) for v in variables},
        **_placement(root, base, tuple(levels[0]["shape"])),
    }
    return {**config, **_crs_entries(root, base, config["bounds"], variables)}


def _crs_entries(
    root: zarr.Group, base: zarr.Group, bounds: list[float], variables: list[dict[str, Any]]
) -> dict[str, Any]:
    attrs: Mapping[str, Any] = {
        k: _attr(root, base, k) for k in ("proj:code", "proj:wkt2", "proj:projjson")
    }
    notes = [
        f"colormap {v['requested_colormap']!r} of {v['name']} is unknown here; showing "
        f"{DEFAULT_COLORMAP}"
        for v in variables
        if v["colormap"] != v["requested_colormap"]
    ]
    try:
        crs = layer_crs({k: v for k, v in attrs.items() if v is not None})
    except UndrawableCrs as err:
        return {"drawable": False, "problem": str(err), "crs": None, "proj4": None}
    ring = outline_lonlat(crs, (bounds[0], bounds[1], bounds[2], bounds[3]))
    return {
        "drawable": True,
        "problem": "; ".join(notes) or None,
        "crs": crs.crs,
        "proj4": crs.proj4,
        "crs_label": crs.label,
        "outline": ring,
        "view_bounds": view_bounds(ring),
    }
