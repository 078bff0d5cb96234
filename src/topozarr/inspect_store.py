"""Read a written pyramid back: a summary for `topozarr info`.

The root's GeoZarr attributes are parsed by :func:`topozarr_metadata.read_multiscales` (the
rules are in docs/metadata.md); zarr-python describes the arrays. `topozarr validate` reads the
store its own way (each node's zarr.json): see validate_store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import zarr
from topozarr_metadata import LevelMetadata, MetadataReadError, PyramidMetadata, read_multiscales

from topozarr.errors import UsageError


@dataclass(frozen=True)
class ArraySummary:
    """One array of one level, as `topozarr info` shows it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    dimension_names: tuple[str, ...]
    stored_bytes: int


@dataclass(frozen=True)
class LevelSummary:
    asset: str
    shape: tuple[int, int]
    bbox: tuple[float, ...]
    resampling_method: str | None
    arrays: tuple[ArraySummary, ...] = field(default_factory=tuple)


def _attrs(node: zarr.Group | zarr.Array) -> dict[str, Any]:
    """A node's attributes as a plain dict (zarr types them as a JSON union)."""
    return dict(node.attrs)


def read_pyramid(root: zarr.Group) -> PyramidMetadata:
    """The root's multiscales metadata, or a one-line UsageError saying why there is none."""
    try:
        return read_multiscales(_attrs(root))
    except MetadataReadError as err:
        raise UsageError(
            f"the store has no readable multiscales layout ({err}); is it a topozarr pyramid?"
        ) from err


def _dims(arr: zarr.Array) -> list[str]:
    return [str(d) for d in getattr(arr.metadata, "dimension_names", None) or ()]


def _groups(root: zarr.Group, meta: PyramidMetadata) -> list[tuple[LevelMetadata, zarr.Group]]:
    """(layout level, level group) for every layout asset that exists as a group."""
    out = []
    for level in meta.levels:
        node = root.get(level.asset)
        if isinstance(node, zarr.Group):
            out.append((level, node))
    return out


def open_root(store: Any) -> zarr.Group:
    """Open the pyramid's root group read-only, with a one-line error when it isn't one.

    ``s3://bucket/prefix`` is read through obstore with the ``AWS_*`` environment variables.
    """
    from topozarr_engine.storage import open_for_reading  # lazy: it imports the engine

    target = open_for_reading(store)
    try:
        return zarr.open_group(target, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as err:
        raise UsageError(
            f"{store!s} is not a Zarr group; give the path of a written pyramid"
        ) from err


def _array_summary(name: str, arr: zarr.Array) -> ArraySummary:
    shards = getattr(arr, "shards", None)
    return ArraySummary(
        name=name,
        shape=tuple(arr.shape),
        dtype=str(arr.dtype),
        chunks=tuple(arr.chunks),
        shards=tuple(shards) if shards else None,
        dimension_names=tuple(_dims(arr)),
        stored_bytes=int(arr.nbytes_stored()),
    )


def summarize(root: zarr.Group) -> dict[str, Any]:
    """Levels, shapes, chunks/shards, dtypes, CRS, bbox, method and stored bytes of a pyramid."""
    meta = read_pyramid(root)
    levels = []
    for level, group in _groups(root, meta):
        group_attrs = _attrs(group)
        arrays = tuple(
            _array_summary(name, arr) for name, arr in sorted(group.arrays(), key=lambda kv: kv[0])
        )
        levels.append(
            LevelSummary(
                asset=level.asset,
                shape=level.shape or tuple(group_attrs.get("spatial:shape") or ()),
                # The level group's own bbox as written; else the extent of its transform.
                bbox=tuple(group_attrs.get("spatial:bbox") or level.bbox or ()),
                resampling_method=level.resampling_method,
                arrays=arrays,
            )
        )
    return {
        "crs": meta.crs.code if meta.crs is not None and meta.crs.code else "(WKT2 only)",
        "dims": list(meta.dims) if meta.dims is not None else None,
        "bbox": list(meta.bbox) if meta.bbox is not None else None,
        "method": meta.resampling_method,
        "levels": levels,
        "stored_bytes": sum(a.stored_bytes for lv in levels for a in lv.arrays),
        "extents": _extents(root, meta),
    }


def extents(root: zarr.Group) -> dict[str, dict[str, Any]]:
    """Size, first and last value of each non-spatial dim of level 0 (CF times decoded)."""
    try:
        meta = read_multiscales(_attrs(root))
    except MetadataReadError:
        return {}  # a flat store, or not a pyramid at all
    return _extents(root, meta)


def _extents(root: zarr.Group, meta: PyramidMetadata) -> dict[str, dict[str, Any]]:
    import xarray as xr

    spatial = set(meta.dims or ())
    level0 = xr.open_zarr(root.store, group=meta.levels[0].asset, consolidated=False)
    out = {}
    for dim, size in level0.sizes.items():
        if dim in spatial:
            continue
        entry: dict[str, Any] = {"size": int(size)}
        if dim in level0.coords and level0[dim].ndim == 1 and size:
            values = level0[dim].values
            entry["first"], entry["last"] = str(values[0]), str(values[-1])
        out[str(dim)] = entry
    return out


def describe_extent(dim: str, extent: dict[str, Any]) -> str:
    """``time    12 steps, 2020-01-01T00:00:00 .. 2020-01-12T00:00:00``."""
    text = f"{dim:<8}{extent['size']} steps"
    if "first" in extent:
        text += f", {extent['first']} .. {extent['last']}"
    return text
