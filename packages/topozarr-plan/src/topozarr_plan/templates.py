"""Per-level template datasets: real coordinates, attrs and encodings, placeholder data.

A template is what a level group will hold, minus the computed values of its spatial
variables. Those are zero-cost placeholders of the right shape and dtype: a dask array of
zeros when dask is installed (so ``template.to_zarr(compute=False)`` writes metadata only),
otherwise a zero-strided ``np.broadcast_to`` view. Neither allocates the level.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
import xarray as xr

from topozarr_plan._kernel import kernel_output_dtype
from topozarr_plan.attrs import json_attrs
from topozarr_plan.errors import PlanError
from topozarr_plan.grid import RESOLUTION_ATTR, AxisGrid, level_coordinate
from topozarr_plan.validate import VariableRoles

__all__ = [
    "GRID_MAPPING_ATTR",
    "TemplateInputs",
    "build_level_templates",
    "clean_attrs",
    "fill_value_for",
    "level_shape",
    "output_dtype",
    "placeholder",
]

_STALE_PREFIXES = ("spatial:", "proj:")
_STALE_KEYS = frozenset({"multiscales", "zarr_conventions", "zarr-layer"})
# Fill markers move from attrs to encoding: xarray refuses to write a variable that carries
# them in both, and zarr's own fill_value is what readers (zarr-layer) honour.
_FILL_KEYS = ("_FillValue", "missing_value")

#: Array attribute naming a variable's own method where it differs from the pyramid's
#: ``multiscales.resampling_method`` (coarse levels only).
RESAMPLING_METHOD_ATTR = "resampling_method"
# Encoding keys that describe values (CF packing, time units), as opposed to storage layout
# (chunks, shards, codecs) that is stale once the data moves to a new store.
_VALUE_ENCODING_KEYS = frozenset(
    {"units", "calendar", "dtype", "_FillValue", "missing_value", "scale_factor", "add_offset"}
)


_GDAL_GEOTRANSFORM = "GeoTransform"
#: CF attribute naming the variable that holds a data variable's CRS: GDAL, rioxarray and
#: other CF readers follow it (none of them reads the GeoZarr ``proj:`` attributes).
GRID_MAPPING_ATTR = "grid_mapping"


def _gdal_geotransform(transform: Any) -> str:
    """GDAL order ``c a b f d e`` of a rasterio-order transform, as rioxarray writes it."""
    a, b, c, d, e, f = (float(v) for v in transform)
    return " ".join(repr(v) for v in (c, a, b, f, d, e))


def clean_attrs(attrs: Mapping[Any, Any], *, owner: str | None = None) -> dict[str, Any]:
    """Attributes as plain JSON values, without the geo attributes that would be stale in a
    pyramid (spatial:*, proj:*, multiscales).

    ``owner`` (a variable name, ``None`` for the dataset) is named when a value has no JSON
    form (see :func:`topozarr_plan.attrs.json_attrs`).
    """
    return json_attrs(
        {
            k: v
            for k, v in attrs.items()
            if not (isinstance(k, str) and (k.startswith(_STALE_PREFIXES) or k in _STALE_KEYS))
        },
        owner=owner,
    )


def _value_encoding(encoding: Mapping[Any, Any]) -> dict[Any, Any]:
    return {k: v for k, v in encoding.items() if k in _VALUE_ENCODING_KEYS}


def _first_scalar(value: Any) -> Any:
    arr = np.asarray(value)
    return arr.reshape(-1)[0] if arr.size else None


def fill_value_for(name: str, var: xr.DataArray) -> float | int | None:
    """The fill value used when reducing and writing ``var``.

    Floats: the source's ``_FillValue`` / ``missing_value`` (encoding first, then attrs),
    else NaN. Integers: the source's ``_FillValue`` / ``missing_value`` if any, else ``None``
    (every cell is valid).
    """
    raw = None
    for source in (var.encoding, var.attrs):
        for key in _FILL_KEYS:
            if source.get(key) is not None:
                raw = _first_scalar(source[key])
                break
        if raw is not None:
            break
    dtype = np.dtype(var.dtype)
    if dtype.kind == "f":
        return float("nan") if raw is None else float(raw)
    if raw is None:
        return None
    as_float = float(raw)
    info = np.iinfo(dtype)
    if not (as_float.is_integer() and info.min <= as_float <= info.max):
        raise PlanError(
            f"variable {name!r} ({dtype}) has fill value {raw!r}, which {dtype} cannot "
            f"represent; fix ds[{name!r}].attrs/encoding['_FillValue'] or cast the variable"
        )
    return int(as_float)


def output_dtype(dtype: np.dtype[Any], method: str, factor: int) -> np.dtype[Any]:
    """Dtype of a spatial variable at cumulative ``factor``.

    Level 0 is a copy (source dtype); coarser levels have the dtype the kernel's method table
    gives: integer ``sum`` widens like numpy (int64 / uint64), every other method keeps the
    dtype (integer mean rounds half to even in the kernel).
    """
    dtype = np.dtype(dtype)
    if factor == 1:
        return dtype
    return kernel_output_dtype(method, dtype)


def level_shape(
    dims: tuple[Hashable, ...], shape: tuple[int, ...], sizes: Mapping[Hashable, int]
) -> tuple[int, ...]:
    """``shape`` with the dims listed in ``sizes`` replaced by their level size."""
    return tuple(sizes.get(d, n) for d, n in zip(dims, shape, strict=True))


def placeholder(shape: tuple[int, ...], dtype: np.dtype[Any], chunks: tuple[int, ...]) -> Any:
    """A zero-cost stand-in for a level's values (never allocates the full array)."""
    try:
        import dask.array as da
    except ImportError:
        return np.broadcast_to(np.zeros((), dtype=dtype), shape)
    return da.zeros(shape, dtype=dtype, chunks=chunks)


def _crs_coord_names(ds: xr.Dataset) -> list[Hashable]:
    import xproj  # noqa: F401  (registers the .proj accessor)

    return list(ds.proj.crs_indexes)


def _with_crs_info(tpl: xr.Dataset, crs_name: Hashable, crs: pyproj.CRS) -> xr.Dataset:
    """``tpl`` with its CRS coordinate restored and described the CF / GDAL way.

    ``format_full_cf_gdal`` writes ``crs_wkt`` (CF), ``spatial_ref`` (GDAL's older key) and
    the CF grid-mapping parameters, so readers that know any of them find the CRS.
    """
    from xproj import format_full_cf_gdal

    tpl = tpl.proj.assign_crs({crs_name: crs}, allow_override=True)
    return tpl.proj.write_crs_info(crs_name, func=format_full_cf_gdal)


@dataclass(frozen=True)
class TemplateInputs:
    """What ``create_pyramid`` resolved that the level templates are made from.

    ``method`` is one method or each spatial variable's; ``shared_method`` is the pyramid's
    ``multiscales.resampling_method``. ``encoding`` is the plan's (``{"/<level>": {var:
    {...}}}``) and ``group_attrs`` each level group's GeoZarr attributes.
    """

    roles: VariableRoles
    y: AxisGrid
    x: AxisGrid
    factors: list[int]
    method: str | Mapping[str, str]
    fill_values: Mapping[str, float | int | None]
    encoding: Mapping[str, Mapping[str, Mapping[str, Any]]]
    group_attrs: Mapping[int, Mapping[str, Any]]
    crs: pyproj.CRS
    shared_method: str | None = None

    def method_of(self, name: str) -> str:
        return self.method if isinstance(self.method, str) else self.method[name]


def build_level_templates(ds: xr.Dataset, inputs: TemplateInputs) -> dict[int, xr.Dataset]:
    """One template dataset per level (see module docstring).

    Level 0 keeps the source's x/y coordinate values; level ``k`` gets the analytic window
    centres. Spatial data variables become placeholders; ``roles.level0_only`` variables keep
    their (possibly lazy) source data in level 0 only; ``roles.everywhere`` variables keep
    their source data in every level. The xproj CRS coordinate is carried into every level
    with its ``CRSIndex`` restored and CF / GDAL attributes (``crs_wkt``, ``spatial_ref``);
    every spatial variable names it in its CF ``grid_mapping`` attribute.

    In coarse levels a variable whose method differs from ``inputs.shared_method`` gets a
    ``resampling_method`` attribute naming its own.
    """
    crs_coords = _crs_coord_names(ds)
    # check_crs allows exactly one CRS coordinate; it is non-spatial, so every level has it.
    grid_mapping = str(crs_coords[0]) if crs_coords else None
    base_attrs = clean_attrs(ds.attrs)
    templates: dict[int, xr.Dataset] = {}
    for level, factor in enumerate(inputs.factors):
        coords = _axis_coords(ds, inputs, level, factor)
        data_vars: dict[Hashable, xr.Variable] = {
            name: _spatial_placeholder(ds, inputs, level, name, grid_mapping)
            for name in inputs.roles.spatial
        }
        _carry(
            ds,
            inputs.roles.everywhere + (inputs.roles.level0_only if level == 0 else ()),
            coords,
            data_vars,
        )
        tpl = xr.Dataset(data_vars, coords, attrs={**base_attrs, **inputs.group_attrs[level]})
        templates[level] = _with_crs_coords(tpl, crs_coords, inputs, level)
    return templates


def _axis_coords(
    ds: xr.Dataset, inputs: TemplateInputs, level: int, factor: int
) -> dict[Hashable, xr.Variable]:
    """The level's x/y coordinates: the source's at level 0, the window centres further down."""
    coords: dict[Hashable, xr.Variable] = {}
    for axis in (inputs.y, inputs.x):
        src = ds[axis.name].variable
        attrs = clean_attrs(src.attrs, owner=axis.name)
        if level == 0:
            coords[axis.name] = xr.Variable(
                src.dims, src.values, attrs, _value_encoding(src.encoding)
            )
            continue
        if RESOLUTION_ATTR in attrs:
            attrs[RESOLUTION_ATTR] = axis.step * factor
        values = level_coordinate(axis, factor, src.dtype)
        coords[axis.name] = xr.Variable(src.dims, values, attrs)
    return coords


def _spatial_placeholder(
    ds: xr.Dataset, inputs: TemplateInputs, level: int, name: str, grid_mapping: str | None
) -> xr.Variable:
    """A spatial variable of the level: its shape, dtype, attrs and fill, but no data."""
    factor = inputs.factors[level]
    y, x = inputs.y, inputs.x
    sizes: dict[Hashable, int] = {y.name: y.level_size(factor), x.name: x.level_size(factor)}
    src = ds[name].variable
    var_method = inputs.method_of(name)
    dtype = output_dtype(src.dtype, var_method, factor)
    shape = level_shape(src.dims, src.shape, sizes)
    enc = inputs.encoding[f"/{level}"][name]
    attrs = {
        k: v
        for k, v in clean_attrs(src.attrs, owner=name).items()
        if k not in _FILL_KEYS and k != RESAMPLING_METHOD_ATTR
    }
    if level > 0 and inputs.shared_method is not None and var_method != inputs.shared_method:
        attrs[RESAMPLING_METHOD_ATTR] = var_method
    if grid_mapping is not None:
        attrs[GRID_MAPPING_ATTR] = grid_mapping
    var_enc: dict[str, Any] = {}
    fill = inputs.fill_values.get(name)
    if fill is not None:
        # Both keys: "fill_value" sets the Zarr v3 array's own fill (what zarr-layer
        # honours); "_FillValue" becomes the CF attribute xarray masks with on read.
        var_enc["_FillValue"] = fill
        var_enc["fill_value"] = fill
    return xr.Variable(
        src.dims, placeholder(shape, dtype, enc.get("shards", enc["chunks"])), attrs, var_enc
    )


def _carry(
    ds: xr.Dataset,
    names: tuple[Hashable, ...],
    coords: dict[Hashable, xr.Variable],
    data_vars: dict[Hashable, xr.Variable],
) -> None:
    """Variables written with their source values (coordinates stay coordinates)."""
    for name in names:
        src = ds.variables[name]
        # A shallow copy keeps lazy backend arrays lazy (nothing is read here).
        var = src.copy(deep=False)
        var.attrs = clean_attrs(src.attrs, owner=str(name))
        var.encoding = _value_encoding(src.encoding)
        if name in ds.coords:
            coords[name] = var
        else:
            data_vars[name] = var


def _with_crs_coords(
    tpl: xr.Dataset, crs_coords: list[Hashable], inputs: TemplateInputs, level: int
) -> xr.Dataset:
    for crs_name in crs_coords:
        if crs_name in tpl.coords:
            tpl = _with_crs_info(tpl, crs_name, inputs.crs)
            if _GDAL_GEOTRANSFORM in tpl[crs_name].attrs:
                # rioxarray/GDAL read this before anything else: restate it per level.
                tpl[crs_name].attrs[_GDAL_GEOTRANSFORM] = _gdal_geotransform(
                    inputs.group_attrs[level]["spatial:transform"]
                )
    return tpl
