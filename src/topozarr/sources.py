"""Open a user's raster lazily and work out its spatial dims and CRS (used by `topozarr build`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xarray as xr
from topozarr_engine.storage.urls import parse_url

from topozarr.errors import UsageError

X_NAMES = ("x", "lon", "longitude")
Y_NAMES = ("y", "lat", "latitude")
_TIFF_SUFFIXES = {".tif", ".tiff", ".gtiff", ".cog"}
_NETCDF_SUFFIXES = {".nc", ".nc4", ".netcdf", ".h5", ".hdf5"}


def open_source(src: str, *, variables: list[str] | None = None) -> xr.Dataset:
    """Open ``src`` lazily (dask chunks follow the file's own chunking), keeping ``variables``.

    NetCDF/HDF5 and Zarr go through xarray; GeoTIFF through rioxarray. An ``s3://`` source is
    a Zarr store (any suffix), read through obstore with the ``AWS_*`` environment variables
    (credentials, ``AWS_REGION``, ``AWS_ENDPOINT_URL``, ``AWS_ALLOW_HTTP``).
    """
    is_remote = "://" in src
    url = parse_url(src)
    is_s3 = url.is_object_store
    path = Path(src)
    if not is_remote and not path.exists():
        raise UsageError(f"source {src!r} does not exist; check the path")
    suffix = path.suffix.lower()
    if is_s3 and suffix in _TIFF_SUFFIXES | _NETCDF_SUFFIXES:
        raise UsageError(
            f"cannot read {src!r}: {url.scheme}:// sources must be Zarr stores; copy the file to a local "
            "path first (or convert it to Zarr)"
        )
    if suffix in _TIFF_SUFFIXES:
        ds = _open_geotiff(src)
    elif (
        is_s3
        or suffix == ".zarr"
        or (not is_remote and (path / "zarr.json").exists())
        or (not is_remote and (path / ".zgroup").exists())
    ):
        ds = _open_zarr(src)
    else:
        engine = "h5netcdf" if suffix in _NETCDF_SUFFIXES else None
        try:
            ds = xr.open_dataset(src, chunks={}, engine=engine, decode_coords="all")
        except (ValueError, OSError) as err:
            raise UsageError(
                f"cannot open {src!r} ({err}); give a NetCDF, Zarr or GeoTIFF source"
            ) from err
    if variables:
        missing = [v for v in variables if v not in ds.data_vars]
        if missing:
            raise UsageError(
                f"unknown variable(s) {', '.join(missing)} in {src!r}; "
                f"available: {', '.join(map(str, ds.data_vars)) or 'none'}"
            )
        ds = ds[variables]
    return ds


def _open_zarr(src: str) -> xr.Dataset:
    store: Any = src
    if parse_url(src).is_object_store:
        # obstore-backed and checked first: an unreachable endpoint, rejected credentials or a
        # missing bucket fail here with one clear StoreError, not as "no Zarr group".
        from topozarr_engine.storage import open_for_reading

        store = open_for_reading(src)
    # Consolidated metadata is an optimisation a store may lack (e.g. a level group of a
    # pyramid); fall back without xarray's warning, since nothing is wrong with such a store.
    try:
        return xr.open_zarr(store, chunks={}, decode_coords="all", consolidated=True)
    except (KeyError, ValueError, FileNotFoundError):
        return xr.open_zarr(store, chunks={}, decode_coords="all", consolidated=False)


def _open_geotiff(src: str) -> xr.Dataset:
    try:
        import rioxarray
    except ImportError as err:
        raise UsageError(
            "reading GeoTIFF needs rioxarray: install the extra `topozarr[geotiff]`"
        ) from err
    da = rioxarray.open_rasterio(src, chunks=True, masked=False)
    assert isinstance(da, xr.DataArray)
    name = str(da.name) if da.name else Path(src).stem.replace(".", "_") or "band_data"
    # A single-band GeoTIFF becomes a plain (y, x) variable, as users expect on a map.
    if "band" in da.dims and da.sizes["band"] == 1:
        da = da.isel(band=0, drop=True)
    return da.to_dataset(name=name)


def detect_dim(ds: xr.Dataset, given: str | None, candidates: tuple[str, ...], axis: str) -> str:
    """Return ``given`` if present, else the first of ``candidates`` found (case-insensitive)."""
    if given:
        if given not in ds.dims:
            raise UsageError(
                f"--{axis}-dim {given!r} is not a dimension of the source; dims are {list(ds.dims)}"
            )
        return given
    by_lower = {str(d).lower(): str(d) for d in ds.dims}
    for name in candidates:
        if name in by_lower:
            return by_lower[name]
    raise UsageError(
        f"cannot tell which dimension is {axis}: none of {', '.join(candidates)} in "
        f"{list(ds.dims)}; pass --{axis}-dim"
    )


def _crs_from_attrs(attrs: dict[str, Any]) -> str | None:
    for key in ("crs_wkt", "spatial_ref"):
        value = attrs.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def detect_crs(ds: xr.Dataset) -> str | None:
    """The CRS declared by the source: CF ``grid_mapping``, or rioxarray's ``spatial_ref``."""
    for var in ds.data_vars.values():
        mapping = var.attrs.get("grid_mapping") or var.encoding.get("grid_mapping")
        if isinstance(mapping, str) and mapping in ds.variables:
            found = _crs_from_attrs(dict(ds[mapping].attrs))
            if found:
                return found
    for name in ("spatial_ref", "crs"):
        if name in ds.variables:
            found = _crs_from_attrs(dict(ds[name].attrs))
            if found:
                return found
    return None


def with_crs(ds: xr.Dataset, crs: str | None) -> xr.Dataset:
    """Assign ``crs`` (or the one the source declares) through xproj; error if there is none."""
    import xproj  # noqa: F401  (registers the .proj accessor)

    if crs is None:
        try:
            if ds.proj.crs is not None:
                return ds
        except Exception:  # xproj raises when several CRS coordinates disagree
            pass
        crs = detect_crs(ds)
    if crs is None:
        raise UsageError(
            "the source has no CRS (no xproj CRS, CF grid_mapping or spatial_ref); pass --crs, "
            "e.g. --crs EPSG:4326"
        )
    # Drop CF/rioxarray CRS carriers first: xproj stores its own in `spatial_ref`.
    stale = [n for n in ("spatial_ref", "crs") if n in ds.variables]
    ds = ds.drop_vars(stale)
    for var in ds.data_vars.values():
        var.attrs.pop("grid_mapping", None)
        var.encoding.pop("grid_mapping", None)
    try:
        return ds.proj.assign_crs(spatial_ref=crs)
    except Exception as err:
        raise UsageError(f"--crs {crs[:60]!r} is not a CRS pyproj understands ({err})") from err
