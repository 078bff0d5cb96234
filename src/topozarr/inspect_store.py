"""Read a written pyramid back: a summary for `topozarr info`.

`topozarr validate` reads the store its own way (each node's zarr.json): see validate_store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import zarr

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


def _layout(root: zarr.Group) -> list[dict[str, Any]]:
    """The multiscales layout entries of the root group, or [] when there are none."""
    multiscales = _attrs(root).get("multiscales")
    return list(multiscales.get("layout") or []) if isinstance(multiscales, dict) else []


def _dims(arr: zarr.Array) -> list[str]:
    return [str(d) for d in getattr(arr.metadata, "dimension_names", None) or ()]


def _groups(root: zarr.Group) -> list[tuple[dict[str, Any], zarr.Group]]:
    """(layout entry, level group) for every layout asset that exists as a group."""
    out = []
    for entry in _layout(root):
        node = root.get(str(entry.get("asset", "")))
        if isinstance(node, zarr.Group):
            out.append((entry, node))
    return out


def open_root(store: Any) -> zarr.Group:
    """Open the pyramid's root group read-only, with a one-line error when it isn't one.

    ``s3://bucket/prefix`` is read through obstore with the ``AWS_*`` environment variables.
    """
    target = store
    if isinstance(store, str) and store.lower().startswith(("s3://", "s3a://")):
        from topozarr_plan.stores import s3_zarr_store  # lazy: it imports xarray

        target = s3_zarr_store(store, read_only=True)
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
    attrs = _attrs(root)
    if not _layout(root):
        raise UsageError("the store has no multiscales layout; is it a topozarr pyramid?")
    default_method = attrs["multiscales"].get("resampling_method")
    levels = []
    for entry, group in _groups(root):
        group_attrs = _attrs(group)
        arrays = tuple(
            _array_summary(name, arr) for name, arr in sorted(group.arrays(), key=lambda kv: kv[0])
        )
        levels.append(
            LevelSummary(
                asset=str(entry["asset"]),
                shape=tuple(entry.get("spatial:shape") or group_attrs.get("spatial:shape") or ()),
                bbox=tuple(group_attrs.get("spatial:bbox", ())),
                resampling_method=entry.get("resampling_method", default_method),
                arrays=arrays,
            )
        )
    return {
        "crs": attrs.get("proj:code") or "(WKT2 only)",
        "dims": attrs.get("spatial:dimensions"),
        "bbox": attrs.get("spatial:bbox"),
        "method": default_method,
        "levels": levels,
        "stored_bytes": sum(a.stored_bytes for lv in levels for a in lv.arrays),
        "extents": extents(root),
    }


def extents(root: zarr.Group) -> dict[str, dict[str, Any]]:
    """Size, first and last value of each non-spatial dim of level 0 (CF times decoded)."""
    import xarray as xr

    layout = _layout(root)
    spatial = set(_attrs(root).get("spatial:dimensions") or ())
    if not layout:
        return {}
    level0 = xr.open_zarr(root.store, group=str(layout[0]["asset"]), consolidated=False)
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
