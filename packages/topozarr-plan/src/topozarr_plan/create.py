"""``create_pyramid``: validate a georeferenced Dataset and plan its pyramid."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from topozarr_engine.codecs import default_compressors
from topozarr_metadata import ZarrLayerVarConfig
from zarr.codecs import BytesCodec

from topozarr_plan._kernel import kernel_caps
from topozarr_plan.flat import recommend_encoding
from topozarr_plan.grid import AxisGrid, axis_grid, transform_from_axes
from topozarr_plan.packing import check_packed_methods, packed_source
from topozarr_plan.pyramid import Pyramid
from topozarr_plan.templates import (
    TemplateInputs,
    build_level_templates,
    fill_value_for,
    level_shape,
    output_dtype,
)
from topozarr_plan.types import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_CHUNKS_PER_SHARD,
    ChunksPerShard,
    MethodSpec,
)
from topozarr_plan.validate import (
    check_attrs,
    check_chunks_per_shard,
    check_crs,
    check_factors,
    check_layer_hints,
    check_levels_fit,
    check_method,
    check_methods,
    check_not_curvilinear,
    check_spatial_dims,
    check_spatial_variables,
    check_store_names,
    check_target_chunk_bytes,
    classify_variables,
    shared_method,
)

__all__ = ["create_pyramid"]


def _crs_code(crs: Any) -> str | None:
    # Only a real authority code (never str(crs), which may be a PROJ string or WKT).
    auth = crs.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else None


# Encoding keys that describe how the source is chunked (what level 0 aligns to); the others
# (dtype, packing) say how the source was stored, not what the pyramid stores.
_CHUNK_KEYS = ("chunks", "shards", "preferred_chunks")


def _level_view(
    source: xr.Dataset,
    names: tuple[str, ...],
    sizes: Mapping[Hashable, int],
    dtypes: Mapping[str, np.dtype[Any]],
    level: int,
) -> xr.Dataset:
    """The reduced variables as they will be at one level, for ``recommend_encoding``.

    Level 0 is the source itself (its chunking is what the grid aligns to); coarser levels
    are zero-cost stand-ins of the level's shape and dtype, with no chunking to follow.
    """
    out: dict[Hashable, xr.Variable] = {}
    for name in names:
        var = source[name].variable
        if level == 0:
            view = var.copy(deep=False)
            view.encoding = {k: v for k, v in var.encoding.items() if k in _CHUNK_KEYS}
        else:
            shape = level_shape(var.dims, var.shape, sizes)
            view = xr.Variable(var.dims, np.broadcast_to(np.zeros((), dtypes[name]), shape))
        out[name] = view
    return xr.Dataset(out)


@dataclass(frozen=True)
class _Levels:
    """What every level's encoding follows: the grid, the factors and each variable's method
    and fill, and the chunk targets."""

    axes: tuple[AxisGrid, AxisGrid]
    factors: list[int]
    methods: Mapping[str, str]
    fill_values: Mapping[str, float | int | None]
    target: int
    cps: int | None


def _encodings(source: xr.Dataset, names: tuple[str, ...], levels: _Levels) -> dict[str, Any]:
    """``{"/<level>": {var: encoding}}``: ``recommend_encoding`` of every level, plus fills."""
    (y, x), factors, methods = levels.axes, levels.factors, levels.methods
    fill_values, target, cps = levels.fill_values, levels.target, levels.cps
    encoding: dict[str, Any] = {}
    for level, factor in enumerate(factors):
        sizes: dict[Hashable, int] = {y.name: y.level_size(factor), x.name: x.level_size(factor)}
        dtypes = {n: output_dtype(np.dtype(source[n].dtype), methods[n], factor) for n in names}
        per_var: dict[str, dict[str, Any]] = dict(
            recommend_encoding(
                _level_view(source, names, sizes, dtypes, level),
                x_dim=x.name,
                y_dim=y.name,
                target_chunk_bytes=target,
                chunks_per_shard=cps,  # type: ignore[arg-type]
            )
        )
        for name in names:
            # The codecs write() uses, so that DataTree.to_zarr(encoding=pyramid.encoding)
            # writes the same array metadata (it replaces the variables' own encoding).
            per_var[name]["serializer"] = BytesCodec()
            per_var[name]["compressors"] = default_compressors(dtypes[name])
            if fill_values[name] is not None:
                # DataTree.to_zarr(encoding=...) replaces each variable's own encoding, so the
                # fill must travel here: "fill_value" is the Zarr array's fill (what
                # zarr-layer honours), "_FillValue" the CF attribute xarray masks with.
                per_var[name]["fill_value"] = fill_values[name]
                per_var[name]["_FillValue"] = fill_values[name]
        encoding[f"/{level}"] = per_var
    return encoding


def create_pyramid(  # noqa: PLR0913  (the documented API: each option is a keyword of its own)
    ds: xr.Dataset,
    levels: int | None = None,
    *,
    factors: list[int] | None = None,
    x_dim: str = "x",
    y_dim: str = "y",
    method: MethodSpec = "mean",
    target_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    chunks_per_shard: ChunksPerShard | None = DEFAULT_CHUNKS_PER_SHARD,
    layer_hints: dict[str, ZarrLayerVarConfig] | None = None,
) -> Pyramid:
    """Build a multiscale Zarr pyramid plan from a georeferenced Dataset.

    Exactly one of ``levels`` / ``factors`` must be given. Nothing is read or written: only
    names, dims, dtypes, attributes and the 1-D x/y coordinates are inspected.

    Parameters
    ----------
    ds : xarray.Dataset
        Source dataset. Must have a CRS assigned via ``ds.proj.assign_crs`` and 1-D, evenly
        spaced cell-centre coordinates for ``x_dim`` and ``y_dim`` (x increasing; y either
        way). A length-1 spatial axis needs a ``resolution`` attribute on its coordinate
        (the signed step between cell centres).
    levels : int or None, default None
        Total number of resolution levels, including the original. Level ``0`` is the
        original resolution; each subsequent level coarsens by 2x per spatial dimension
        (cumulative factors ``[1, 2, 4, ...]``).
    factors : list of int or None, default None
        Explicit cumulative downsample factors per level, e.g. ``[1, 4, 16]`` for a sparse
        4x-spaced pyramid. Must start at 1, be strictly increasing, and have each entry
        integer-divide the next. Mutually exclusive with ``levels``.
    x_dim : str, default "x"
        Name of the x (longitude / easting) dimension.
    y_dim : str, default "y"
        Name of the y (latitude / northing) dimension.
    method : CoarseningMethod or dict of str to CoarseningMethod, default "mean"
        Spatial aggregation method for coarsening (``"mean"``, ``"max"``, ``"min"``,
        ``"sum"``; for categorical rasters ``"mode"``, the most frequent valid value of the
        native window with ties going to the smallest value, or ``"nearest"``, the top-left
        cell of each window). A ``{variable: method}`` dict sets it per spatial variable;
        variables it does not name use ``"mean"``. The root's
        ``multiscales.resampling_method`` (and each layout entry's) is the method most
        spatial variables use; each coarse-level array whose method differs carries its own
        ``resampling_method`` attribute.
    target_chunk_bytes : int, default DEFAULT_CHUNK_BYTES
        Target uncompressed size per chunk (default ~500 KB).
    chunks_per_shard : ChunksPerShard or None, default DEFAULT_CHUNKS_PER_SHARD
        Number of chunks per shard along each spatial dimension (e.g. ``4`` -> 4x4 = 16
        chunks per shard, ~8 MB). Must be a power of 2 in the range 1-32. Pass ``None`` to
        disable sharding.
    layer_hints : dict of str to ZarrLayerVarConfig or None, default None
        Optional per-variable colormap / color-range hints written into the ``zarr-layer``
        root metadata key.

    Returns
    -------
    Pyramid
        A Pyramid write plan; call ``pyramid.write(store)`` to compute and write all levels.

    Raises
    ------
    ValueError
        If ``ds`` has no CRS, ``chunks_per_shard`` is not a power of 2 in the range 1-32, or
        a spatial variable has more than 4 dimensions (topozarr-core kernel limit); also
        for both/neither of ``levels``/``factors``, invalid levels or factors, missing
        dimensions or coordinates, irregular or 2-D coordinates, no spatial variable, a
        dtype or method the kernel does not support, a level that would be empty, a
        variable or dimension name unsafe as a store path (a path separator, a leading
        ``.`` or ``__``, more than 255 bytes in UTF-8, ...), an attribute with no JSON form
        (datetime, set, bytes, objects; numpy values are converted to plain numbers and
        lists) and malformed ``layer_hints``. Raised as
        :class:`~topozarr_plan.errors.PlanError` (a ``ValueError`` subclass).

    Notes
    -----
    Variables with both spatial dims are reduced at every level, and so are data variables
    over one of them (a profile along x, a ``(time, x)`` section): along that dim, with the
    same method. Non-index coordinates with spatial dims, and cell-bounds variables over one
    (named by a CF ``bounds`` attribute or ending in ``_bnds`` / ``_bounds``), are written
    unchanged in level 0 only: they cannot be coarsened exactly, and writing them as fill
    would be wrong. Variables without spatial dims are copied into every level.

    CF-packed integers (decoded by xarray to floats, with ``scale_factor`` / ``add_offset``
    in their encoding) are stored packed with the same dtype, ``scale_factor``,
    ``add_offset`` and ``_FillValue`` at every level; ``Pyramid.source`` holds them packed.
    ``method="sum"`` (and max/min with a negative ``scale_factor``) is refused for them.
    A curvilinear grid (2-D latitude/longitude, no 1-D x/y) is refused: regrid it first.
    Each level's chunks and shards are :func:`~topozarr_plan.flat.recommend_encoding`'s.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(
            f"create_pyramid expects an xarray.Dataset (got {type(ds).__name__}); convert a "
            f"DataArray with da.to_dataset(name='...')"
        )
    # Argument checks first: cheap, and independent of the data.
    resolved = check_factors(levels, factors)
    cps = check_chunks_per_shard(chunks_per_shard)
    target = check_target_chunk_bytes(target_chunk_bytes)
    caps = kernel_caps()
    if not isinstance(method, Mapping):
        check_method(method, caps)
    check_not_curvilinear(ds, x_dim=x_dim, y_dim=y_dim)
    crs = check_crs(ds)
    check_spatial_dims(ds, x_dim=x_dim, y_dim=y_dim)
    check_store_names(ds)
    check_attrs(ds)
    roles = classify_variables(ds, x_dim=x_dim, y_dim=y_dim)
    methods = check_methods(method, roles.spatial, caps)
    method_ = shared_method(methods)
    # CF-packed integers are reduced and stored packed: the plan's source reads them packed.
    source, packings = packed_source(ds, roles.spatial)
    check_packed_methods(packings, methods)
    check_spatial_variables(source, roles.spatial, caps)
    hints = check_layer_hints(layer_hints, roles.spatial)
    y = axis_grid(ds[y_dim], name=y_dim, role="y")
    x = axis_grid(ds[x_dim], name=x_dim, role="x")
    check_levels_fit(y, x, resolved)
    fill_values = {name: fill_value_for(name, source[name]) for name in roles.spatial}

    # Encoding: recommend_encoding of every level; level 0 also follows the source chunks.
    encoding = _encodings(
        source,
        roles.spatial,
        _Levels(
            axes=(y, x),
            factors=resolved,
            methods=methods,
            fill_values=fill_values,
            target=target,
            cps=cps,
        ),
    )

    # Metadata: built by topozarr_metadata from level 0 + factors (never from float diffs).
    import topozarr_metadata as md

    transform = transform_from_axes(y, x)
    shape0 = (y.size, x.size)
    dims = (y_dim, x_dim)
    wkt2 = crs.to_wkt()
    code = _crs_code(crs)
    attrs = md.multiscale_attrs(
        shape=shape0,
        transform=transform,
        factors=resolved,
        dims=dims,
        crs_wkt2=wkt2,
        crs_code=code,
        method=method_,
        layer_hints=hints,
    )
    group_attrs = {
        level: md.level_group_attrs(
            shape=shape0,
            transform=transform,
            factor=factor,
            dims=dims,
            crs_wkt2=wkt2,
            crs_code=code,
        )
        for level, factor in enumerate(resolved)
    }
    templates = build_level_templates(
        source,
        TemplateInputs(
            roles=roles,
            y=y,
            x=x,
            factors=resolved,
            method=methods,
            shared_method=method_,
            fill_values=fill_values,
            encoding=encoding,
            group_attrs=group_attrs,
            crs=crs,
        ),
    )
    return Pyramid(
        source=source,
        level_templates=templates,
        encoding=encoding,
        attrs=attrs,
        x_dim=x_dim,
        y_dim=y_dim,
        method=method if isinstance(method, str) else dict(method),
        factors=resolved,
        fill_values=fill_values,
        group_attrs=group_attrs,
    )
