"""Helpers for a flat (single-level) store written with ``ds.to_zarr``.

``recommend_encoding`` gives the chunks and shards ``create_pyramid`` would give level 0;
``attach_geozarr_metadata`` adds the root ``proj:`` / ``spatial:`` attributes (and their
``zarr_conventions`` entries) that zarr-layer and GeoZarr readers need to place the store:

.. code-block:: python

    ds = attach_geozarr_metadata(ds, x_dim="lon", y_dim="lat")
    ds.to_zarr(store, zarr_format=3, encoding=recommend_encoding(ds, x_dim="lon", y_dim="lat"))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyproj
import xarray as xr
from topozarr_metadata import ZarrLayerVarConfig

from topozarr_plan.encoding import ChunkLayout, source_chunk_sizes, variable_encoding
from topozarr_plan.errors import PlanError
from topozarr_plan.grid import axis_grid, transform_from_axes
from topozarr_plan.templates import clean_attrs
from topozarr_plan.types import DEFAULT_CHUNK_BYTES, DEFAULT_CHUNKS_PER_SHARD, ChunksPerShard
from topozarr_plan.validate import (
    check_chunks_per_shard,
    check_crs,
    check_layer_hints,
    check_not_curvilinear,
    check_spatial_dims,
    check_target_chunk_bytes,
)

__all__ = ["attach_geozarr_metadata", "recommend_encoding"]


def _check_dim_names(ds: xr.Dataset, *, x_dim: Any, y_dim: Any) -> None:
    for role, dim in (("x_dim", x_dim), ("y_dim", y_dim)):
        if dim not in ds.dims:
            raise PlanError(
                f"{role}={dim!r} is not a dimension of the dataset; available dimensions: "
                f"{list(map(str, ds.dims))}. Pass {role}=<name>"
            )


def _stored_dtype(var: xr.DataArray) -> np.dtype[Any]:
    # A CF-packed variable is written as its packed integers: size chunks for those.
    return np.dtype(var.encoding.get("dtype", var.dtype))


def recommend_encoding(
    ds: xr.Dataset,
    *,
    x_dim: str = "x",
    y_dim: str = "y",
    target_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    chunks_per_shard: ChunksPerShard | None = DEFAULT_CHUNKS_PER_SHARD,
) -> dict[str, dict[str, tuple[int, ...]]]:
    """Chunks and shards for every data variable of a flat (single-level) dataset.

    The rules are those of every ``create_pyramid`` level (see the package README): power
    of two spatial chunks near ``target_chunk_bytes``, ``chunks_per_shard`` chunks per
    spatial axis, chunk 1 along time/band with the shard widened there by the bytes the
    spatial shard leaves unused, and the grid aligned to the source's chunks.

    Parameters
    ----------
    ds : xarray.Dataset
        The dataset to write.
    x_dim, y_dim : str
        The spatial dimensions.
    target_chunk_bytes : int
        Target uncompressed bytes per chunk.
    chunks_per_shard : ChunksPerShard or None
        Chunks per shard along each spatial dim; ``None`` for no shards.

    Returns
    -------
    dict
        ``{variable: {"chunks": ..., "shards": ...}}`` for the data variables over at least
        one spatial dim (no ``"shards"`` when ``chunks_per_shard`` is ``None``), usable as
        ``ds.to_zarr(encoding=...)``.

    Raises
    ------
    ValueError
        For a dim that is not in the dataset, or a bad ``target_chunk_bytes`` /
        ``chunks_per_shard`` (:class:`~topozarr_plan.errors.PlanError`).
    """
    cps = check_chunks_per_shard(chunks_per_shard)
    target = check_target_chunk_bytes(target_chunk_bytes)
    _check_dim_names(ds, x_dim=x_dim, y_dim=y_dim)
    layout = ChunkLayout(y_dim, x_dim, target, cps)
    out: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, var in ds.data_vars.items():
        if x_dim not in var.dims and y_dim not in var.dims:
            continue
        out[str(name)] = variable_encoding(
            var.dims, var.shape, _stored_dtype(var), layout, source_chunk_sizes(var.variable)
        )
    return out


def _crs_code(crs: pyproj.CRS) -> str | None:
    auth = crs.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else None


def _resolve_crs(ds: xr.Dataset, crs: Any) -> pyproj.CRS:
    if crs is None:
        return check_crs(ds)
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise PlanError(
            f"crs={crs!r} is not a CRS pyproj understands ({exc}); pass e.g. crs='EPSG:4326'"
        ) from exc


def attach_geozarr_metadata(
    ds: xr.Dataset,
    *,
    x_dim: str = "x",
    y_dim: str = "y",
    crs: Any = None,
    layer_hints: Mapping[str, ZarrLayerVarConfig] | None = None,
) -> xr.Dataset:
    """The dataset with the GeoZarr root attributes of a flat (single-level) store.

    Adds ``zarr_conventions`` (proj and spatial), ``proj:wkt2`` (and ``proj:code`` when the
    CRS has an authority code), ``spatial:dimensions``, ``spatial:transform``,
    ``spatial:shape``, ``spatial:bbox`` and ``spatial:registration``, plus the
    ``"zarr-layer"`` hints when given; stale ``multiscales`` / ``proj:`` / ``spatial:`` keys
    are dropped. Nothing is read but the 1-D x/y coordinates.

    Parameters
    ----------
    ds : xarray.Dataset
        A regular grid: 1-D, evenly spaced cell-centre coordinates for ``x_dim`` and
        ``y_dim`` (x increasing).
    x_dim, y_dim : str
        The spatial dimensions.
    crs : str, int, pyproj.CRS or None
        The CRS (anything ``pyproj.CRS.from_user_input`` takes); ``None`` uses the one
        assigned with ``ds.proj.assign_crs``.
    layer_hints : dict of str to ZarrLayerVarConfig or None
        Colormap / color-range hints for zarr-layer, keyed by variables over both spatial
        dims.

    Returns
    -------
    xarray.Dataset
        A shallow copy of ``ds`` with the new root attributes.

    Raises
    ------
    ValueError
        For a missing CRS, missing/irregular/2-D coordinates or malformed hints
        (:class:`~topozarr_plan.errors.PlanError`).
    """
    import topozarr_metadata as md

    check_not_curvilinear(ds, x_dim=x_dim, y_dim=y_dim)
    check_spatial_dims(ds, x_dim=x_dim, y_dim=y_dim)
    the_crs = _resolve_crs(ds, crs)
    rasters = tuple(str(n) for n, v in ds.data_vars.items() if x_dim in v.dims and y_dim in v.dims)
    hints = check_layer_hints(layer_hints, rasters)
    y = axis_grid(ds[y_dim], name=y_dim, role="y")
    x = axis_grid(ds[x_dim], name=x_dim, role="x")
    attrs = md.flat_attrs(
        shape=(y.size, x.size),
        transform=transform_from_axes(y, x),
        dims=(y_dim, x_dim),
        crs_wkt2=the_crs.to_wkt(),
        crs_code=_crs_code(the_crs),
        layer_hints=hints,
    )
    out = ds.copy(deep=False)
    out.attrs = {**clean_attrs(ds.attrs), **attrs}
    return out
