"""Everything a pyramid write would trip on, checked before any I/O.

Each check raises :class:`~topozarr_plan.errors.PlanError` (a ``ValueError``) naming the bad
value and the fix. Nothing here reads array data: only names, dims, dtypes, attributes and the
(1-D, small) x/y coordinate values.
"""

from __future__ import annotations

import itertools
import numbers
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj
import xarray as xr

from topozarr_plan._kernel import KernelCaps
from topozarr_plan.attrs import json_attrs
from topozarr_plan.errors import PlanError
from topozarr_plan.grid import AxisGrid
from topozarr_plan.types import ALLOWED_CHUNKS_PER_SHARD, DEFAULT_METHOD

__all__ = [
    "VariableRoles",
    "check_attrs",
    "check_chunks_per_shard",
    "check_crs",
    "check_factors",
    "check_layer_hints",
    "check_levels_fit",
    "check_method",
    "check_methods",
    "check_not_curvilinear",
    "check_spatial_dims",
    "check_spatial_variables",
    "check_store_names",
    "check_target_chunk_bytes",
    "classify_variables",
    "shared_method",
]

_CF_CRS_ATTRS = ("crs_wkt", "spatial_ref")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def check_factors(levels: Any, factors: Any) -> list[int]:
    """Resolve ``levels`` / ``factors`` into cumulative factors ``[1, ...]``.

    ``levels=n`` means ``[1, 2, 4, ..., 2**(n-1)]``. Exactly one of the two must be given.
    """
    if (levels is None) == (factors is None):
        got = "both" if levels is not None else "neither"
        raise PlanError(
            f"pass exactly one of levels= or factors= (got {got}); e.g. levels=4 for factors "
            f"[1, 2, 4, 8], or factors=[1, 4, 16] for a sparse pyramid"
        )
    if levels is not None:
        if not _is_int(levels) or int(levels) < 1:
            raise PlanError(
                f"levels must be an integer >= 1 (got {levels!r}); levels counts the original "
                f"resolution too, so levels=1 writes level 0 only"
            )
        return [2**k for k in range(int(levels))]
    return _check_factor_list(factors)


def _check_factor_list(factors: Any) -> list[int]:
    """Integers, starting at 1, strictly increasing, each dividing the next."""
    if isinstance(factors, str | bytes) or not hasattr(factors, "__iter__"):
        raise PlanError(f"factors must be a list of integers such as [1, 4, 16] (got {factors!r})")
    out = list(factors)
    if not out:
        raise PlanError("factors is empty; pass e.g. factors=[1, 2, 4] (the first entry must be 1)")
    bad = [f for f in out if not _is_int(f)]
    if bad:
        raise PlanError(f"factors must all be integers (got {bad[0]!r} in {out!r})")
    out = [int(f) for f in out]
    if out[0] != 1:
        suggestion = [1, *(f for f in out if f > 1)]
        raise PlanError(
            f"factors must start at 1, the original resolution (got {out!r}); e.g. {suggestion!r}"
        )
    for prev, nxt in itertools.pairwise(out):
        if nxt <= prev:
            raise PlanError(
                f"factors must be strictly increasing (got {prev} then {nxt} in {out!r})"
            )
        if nxt % prev:
            raise PlanError(
                f"each factor must divide the next so every level is an integer coarsening of "
                f"the previous one (got {prev} then {nxt} in {out!r}); e.g. use {prev * 2} or "
                f"{prev * max(1, round(nxt / prev))} instead of {nxt}"
            )
    return out


def check_chunks_per_shard(chunks_per_shard: Any) -> int | None:
    """``None`` (no sharding) or a power of two in 1..32."""
    if chunks_per_shard is None:
        return None
    if not _is_int(chunks_per_shard) or int(chunks_per_shard) not in ALLOWED_CHUNKS_PER_SHARD:
        raise PlanError(
            f"chunks_per_shard must be a power of 2 in the range 1-32, i.e. one of "
            f"{list(ALLOWED_CHUNKS_PER_SHARD)}, or None to disable sharding "
            f"(got {chunks_per_shard!r})"
        )
    return int(chunks_per_shard)


def check_target_chunk_bytes(target_chunk_bytes: Any) -> int:
    """A positive integer byte count."""
    if not _is_int(target_chunk_bytes) or int(target_chunk_bytes) <= 0:
        raise PlanError(
            f"target_chunk_bytes must be a positive integer number of bytes "
            f"(got {target_chunk_bytes!r}); the default is 512 KiB (524288)"
        )
    return int(target_chunk_bytes)


def check_method(method: Any, caps: KernelCaps) -> str:
    """A method the installed kernel implements."""
    if not isinstance(method, str) or method not in caps.methods:
        raise PlanError(
            f"method {method!r} is not supported by the installed topozarr-core kernel "
            f"(version {caps.version}); use one of {sorted(caps.methods)}"
        )
    return method


def check_methods(
    method: Any, spatial: tuple[str, ...] | list[str], caps: KernelCaps
) -> dict[str, str]:
    """The method of every spatial variable, from one method or a ``{variable: method}`` dict.

    Variables a dict does not name use ``"mean"``. A dict naming a variable that is not a
    spatial variable of the dataset, or giving a method the kernel lacks, is an error.
    """
    if not isinstance(method, Mapping):
        one = check_method(method, caps)
        return dict.fromkeys(spatial, one)
    unknown = [k for k in method if k not in spatial]
    if unknown:
        raise PlanError(
            f"method names {sorted(map(str, unknown))}, which "
            f"{'is not a spatial variable' if len(unknown) == 1 else 'are not spatial variables'}"
            f" of the dataset; spatial variables are {sorted(spatial)}"
        )
    for name, m in method.items():
        if not isinstance(m, str) or m not in caps.methods:
            raise PlanError(
                f"method {m!r} for variable {name!r} is not supported by the installed "
                f"topozarr-core kernel (version {caps.version}); use one of {sorted(caps.methods)}"
            )
    return {name: str(method.get(name, DEFAULT_METHOD)) for name in spatial}


def shared_method(methods: Mapping[str, str]) -> str:
    """The method most spatial variables use (ties: the first such variable's), recorded as
    the pyramid's ``multiscales.resampling_method``."""
    counts: dict[str, int] = {}
    for m in methods.values():
        counts[m] = counts.get(m, 0) + 1
    if not counts:
        return DEFAULT_METHOD
    return max(counts, key=lambda m: counts[m])  # max keeps the first of equal counts


def check_crs(ds: xr.Dataset) -> pyproj.CRS:
    """The dataset's single CRS, as assigned by ``ds.proj.assign_crs``."""
    import xproj  # noqa: F401  (registers the .proj accessor)

    try:
        crs = ds.proj.crs
    except ValueError as exc:
        raise PlanError(
            f"the dataset has several CRS ({exc}); keep one spatial reference coordinate "
            f"(drop the others with ds.drop_vars(...))"
        ) from exc
    if crs is None:
        hint = ""
        for name, coord in ds.coords.items():
            for key in _CF_CRS_ATTRS:
                if key in coord.attrs and coord.ndim == 0:
                    hint = (
                        f" The CF coordinate {name!r} carries a {key!r} attribute: use "
                        f"ds.proj.assign_crs({name}=ds[{name!r}].attrs[{key!r}], "
                        f"allow_override=True)."
                    )
                    break
            if hint:
                break
        raise PlanError(
            "the dataset has no CRS; assign one with xproj first, e.g. "
            "`import xproj; ds = ds.proj.assign_crs(spatial_ref='EPSG:4326')`." + hint
        )
    if not isinstance(crs, pyproj.CRS):  # pragma: no cover - defensive, xproj returns CRS
        crs = pyproj.CRS.from_user_input(crs)
    return crs


def check_spatial_dims(ds: xr.Dataset, *, x_dim: Any, y_dim: Any) -> None:
    """x_dim / y_dim are distinct dimensions with 1-D dimension coordinates."""
    for role, dim in (("x_dim", x_dim), ("y_dim", y_dim)):
        if not isinstance(dim, str):
            raise PlanError(f"{role} must be a dimension name (str), got {dim!r}")
    if x_dim == y_dim:
        raise PlanError(f"x_dim and y_dim must differ (both are {x_dim!r})")
    dims = list(ds.dims)
    for role, dim in (("x_dim", x_dim), ("y_dim", y_dim)):
        if dim not in ds.dims:
            extra = ""
            if dim in ds.variables and ds[dim].ndim > 1:
                extra = (
                    f" ({dim!r} is a {ds[dim].ndim}-D coordinate: curvilinear grids are not "
                    f"supported, regrid to a regular grid first)"
                )
            example = "lon" if role == "x_dim" else "lat"
            raise PlanError(
                f"{role}={dim!r} is not a dimension of the dataset{extra}; available dimensions: "
                f"{dims}. Pass {role}=<name>, e.g. {role}={example!r}"
            )
        if dim not in ds.coords:
            raise PlanError(
                f"dimension {dim!r} has no coordinate variable; topozarr needs 1-D cell-centre "
                f"coordinates to georeference the grid. Assign them, e.g. "
                f"ds = ds.assign_coords({dim}=c0 + step * (np.arange(ds.sizes[{dim!r}]) + 0.5))"
            )


@dataclass(frozen=True)
class VariableRoles:
    """How each variable of the source travels through the pyramid.

    Attributes
    ----------
    spatial : tuple of str
        Data variables with both spatial dims, then those with one (a profile along x, or
        ``(time, x)``): block-reduced at every level (along the spatial dims they have).
    level0_only : tuple of str
        Non-index coordinates with one or both spatial dims, and cell-bounds variables over
        one (named by a CF ``bounds`` attribute, or ending in ``_bnds`` / ``_bounds``): written unchanged in level 0 only, since they
        cannot be coarsened exactly and must never be written as fill.
    everywhere : tuple of str
        Data variables and non-index coordinates without spatial dims (e.g. ``time_bnds``):
        copied unchanged into every level.
    """

    spatial: tuple[str, ...]
    level0_only: tuple[str, ...]
    everywhere: tuple[str, ...]


_BOUNDS_SUFFIXES = ("_bnds", "_bounds")


def _bounds_names(ds: xr.Dataset) -> set[str]:
    # Averaging cell bounds gives no bound: CF names them in a coordinate's "bounds"
    # attribute, and files without it still call them x_bnds / lat_bounds.
    named = {str(v.attrs["bounds"]) for v in ds.variables.values() if "bounds" in v.attrs}
    return named | {str(n) for n in ds.data_vars if str(n).endswith(_BOUNDS_SUFFIXES)}


def classify_variables(ds: xr.Dataset, *, x_dim: str, y_dim: str) -> VariableRoles:
    """Split the dataset's variables by how they are carried through the levels."""
    both: list[str] = []
    one: list[str] = []
    level0: list[str] = []
    everywhere: list[str] = []
    bounds = _bounds_names(ds)
    for name, var in ds.data_vars.items():
        n_spatial = (x_dim in var.dims) + (y_dim in var.dims)
        if n_spatial == 2:
            both.append(str(name))
        elif n_spatial == 1:
            (level0 if str(name) in bounds else one).append(str(name))
        else:
            everywhere.append(str(name))
    for name, coord in ds.coords.items():
        if name in (x_dim, y_dim):
            continue
        if x_dim in coord.dims or y_dim in coord.dims:
            level0.append(str(name))
        else:
            everywhere.append(str(name))
    if not both:
        found = {str(k): tuple(map(str, v.dims)) for k, v in ds.data_vars.items()}
        raise PlanError(
            f"no data variable has both spatial dimensions ({y_dim!r}, {x_dim!r}); data "
            f"variables and their dims: {found}. Pass x_dim=/y_dim= naming the raster's "
            f"dimensions"
        )
    return VariableRoles(tuple(both + one), tuple(level0), tuple(everywhere))


_LAT_LON_NAMES = frozenset({"lat", "lon", "latitude", "longitude", "nav_lat", "nav_lon"})
_LAT_LON_UNITS = frozenset({"degrees_north", "degrees_east", "degree_north", "degree_east"})


def _is_lat_lon(name: Hashable, var: xr.DataArray) -> bool:
    return (
        str(name).lower() in _LAT_LON_NAMES
        or var.attrs.get("standard_name") in ("latitude", "longitude")
        or var.attrs.get("units") in _LAT_LON_UNITS
    )


def check_not_curvilinear(ds: xr.Dataset, *, x_dim: Any, y_dim: Any) -> None:
    """Refuse a curvilinear grid: 2-D latitude/longitude coordinates and no regular 1-D x/y.

    A projected grid with 1-D x/y coordinates may also carry 2-D lat/lon (CF auxiliary
    coordinates, as Daymet does): that grid is regular and is accepted.
    """
    if x_dim in ds.coords and y_dim in ds.coords and ds[x_dim].ndim == ds[y_dim].ndim == 1:
        return
    for name, var in ds.variables.items():
        if var.ndim == 2 and _is_lat_lon(name, ds[name]):
            raise PlanError(
                f"{str(name)!r} is a 2-D coordinate {tuple(map(str, var.dims))}: curvilinear "
                f"grids are not supported; regrid to a regular grid first (e.g. with xESMF or "
                f"rioxarray's reproject) so that x/y are 1-D and evenly spaced"
            )


def check_spatial_variables(ds: xr.Dataset, names: tuple[str, ...], caps: KernelCaps) -> None:
    """Every spatial variable fits the kernel: ndim and dtype."""
    for name in names:
        var = ds[name]
        if var.ndim > caps.max_ndim:
            raise PlanError(
                f"variable {name!r} has {var.ndim} dimensions {tuple(map(str, var.dims))}; the "
                f"topozarr-core kernel supports at most {caps.max_ndim}. Select or stack the "
                f"extra dimensions first (e.g. ds.stack(...) or ds.isel(...))"
            )
        dtype = np.dtype(var.dtype)
        if dtype not in caps.dtypes:
            names_ = sorted(d.name for d in caps.dtypes)
            fix = (
                "cast it, e.g. ds[name].astype('uint8')"
                if dtype.kind == "b"
                else "cast it, e.g. ds[name].astype('float32')"
            )
            raise PlanError(
                f"variable {name!r} has dtype {dtype}, which the topozarr-core kernel does not "
                f"support (supported: {names_}); {fix.replace('name', repr(name))}"
            )


_RESERVED = re.compile(r"^__")
# NAME_MAX of common file systems (ext4, APFS, NTFS in UTF-16 units) and of S3 tools that
# mirror keys to files: a longer component fails in the middle of a write.
_MAX_COMPONENT_BYTES = 255


#: What makes a str unsafe as a store path component, checked in this order.
_NAME_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda n: n == "", "is empty"),
    (lambda n: n in (".", ".."), "is a relative path component"),
    (lambda n: n == "zarr.json", "is the name of Zarr's metadata document"),
    (lambda n: "/" in n or "\\" in n, "contains a path separator"),
    (lambda n: n.startswith("."), "starts with '.' (hidden files / relative paths)"),
    (lambda n: bool(_RESERVED.match(n)), "starts with '__', which Zarr v3 reserves"),
    (lambda n: any(ord(ch) < 32 for ch in n), "contains a control character"),
)


def _name_problem(name: Hashable) -> str | None:
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not a str"
    for broken, problem in _NAME_RULES:
        if broken(name):
            return problem
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode (it holds a lone surrogate)"
    if size > _MAX_COMPONENT_BYTES:
        return (
            f"is {size} bytes long in UTF-8, more than the {_MAX_COMPONENT_BYTES} a file "
            f"name or store path component may hold"
        )
    return None


def _name_message(name: Hashable, problem: str) -> str:
    text = repr(name)
    if len(text) > 60:  # a 300-character name would drown the message
        return (
            f"{text[:40]}... {problem} and cannot be used as a Zarr array path; rename it with "
            f"ds.rename()"
        )
    return (
        f"{text} {problem} and cannot be used as a Zarr array path; rename it, e.g. "
        f"ds = ds.rename({{{text}: 'safe_name'}})"
    )


def check_store_names(ds: xr.Dataset) -> None:
    """Every variable name (data and coordinates) is a safe Zarr node name, and every
    dimension name (recorded in ``dimension_names``, and a path when it has a coordinate)
    obeys the same rules."""
    for kind, names in (("variable", list(ds.variables)), ("dimension", list(ds.dims))):
        for name in names:
            problem = _name_problem(name)
            if problem:
                raise PlanError(f"{kind} name {_name_message(name, problem)}")


def check_attrs(ds: xr.Dataset) -> None:
    """Every attribute of the dataset and of its variables has a JSON form (numpy values
    are converted when the templates are built; datetimes, sets, bytes and objects are not)."""
    json_attrs(ds.attrs, owner=None)
    for name, var in ds.variables.items():
        json_attrs(var.attrs, owner=str(name))


def check_levels_fit(y: AxisGrid, x: AxisGrid, factors: list[int]) -> None:
    """No level is empty (``size // factor == 0``)."""
    for level, factor in enumerate(factors):
        for axis in (y, x):
            if axis.size // factor == 0:
                usable = [f for f in factors if min(y.size, x.size) // f > 0]
                raise PlanError(
                    f"level {level} (factor {factor}) would be empty: dimension {axis.name!r} has "
                    f"only {axis.size} cells; use at most {len(usable)} levels (factors "
                    f"{usable}) or smaller factors"
                )


def check_layer_hints(hints: Any, spatial: tuple[str, ...]) -> dict[str, Any] | None:
    """Hints keyed by spatial variable names with ``ZarrLayerVarConfig`` values."""
    if hints is None:
        return None
    if not isinstance(hints, Mapping):
        raise PlanError(
            f"layer_hints must be a dict of variable name -> ZarrLayerVarConfig (got "
            f"{type(hints).__name__})"
        )
    from topozarr_metadata import ZarrLayerVarConfig

    for key, value in hints.items():
        if key not in spatial:
            raise PlanError(
                f"layer_hints names {key!r}, which is not a spatial data variable of the "
                f"dataset; use one of {list(spatial)}"
            )
        if not isinstance(value, ZarrLayerVarConfig):
            raise PlanError(
                f"layer_hints[{key!r}] must be a ZarrLayerVarConfig (got {type(value).__name__}); "
                f"e.g. ZarrLayerVarConfig(clim=(0, 1), colormap='viridis')"
            )
    return dict(hints)
