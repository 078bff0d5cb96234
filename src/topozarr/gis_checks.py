"""What GIS tools (GDAL, QGIS, rasterio, rioxarray) need from a pyramid, checked on a store.

GDAL and rioxarray ignore the GeoZarr ``proj:`` attributes: they find a variable's CRS only
through its CF ``grid_mapping`` attribute, which names a variable holding ``crs_wkt`` or
``spatial_ref``. Stores written before topozarr wrote ``grid_mapping`` lack it, so these checks
are warnings: ``topozarr validate`` prints them and keeps its exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

import zarr

__all__ = ["SHARDED_GDAL_NOTE", "grid_mapping_findings", "print_warnings", "sharded_note"]

#: Keys under which CF (``crs_wkt``) and GDAL (``spatial_ref``) look for a CRS's WKT.
_WKT_KEYS = ("crs_wkt", "spatial_ref")
_REBUILD = "GDAL, QGIS and rioxarray find no CRS; rebuild the pyramid with this topozarr"

#: What ``topozarr info`` says about a sharded store (checked against the installed GDAL by
#: tests/test_gdal.py, which fails the day GDAL reads shards).
SHARDED_GDAL_NOTE = (
    "sharded arrays: GDAL up to 3.12 (QGIS, rasterio) cannot read them; "
    "rebuild with `topozarr build --no-shards` for GIS tools"
)


def _layout_assets(root: zarr.Group) -> list[str]:
    multiscales = dict(root.attrs).get("multiscales")
    layout = multiscales.get("layout") if isinstance(multiscales, dict) else None
    return [str(entry.get("asset", "")) for entry in layout or [] if isinstance(entry, dict)]


def _dimension_names(arr: zarr.Array) -> tuple[str, ...]:
    return tuple(str(d) for d in getattr(arr.metadata, "dimension_names", None) or ())


def _crs_of(attrs: dict[str, Any]) -> Any:
    """The pyproj CRS of a grid-mapping variable's attributes, or None when it has no WKT."""
    import pyproj

    for key in _WKT_KEYS:
        if isinstance(attrs.get(key), str) and attrs[key].strip():
            return pyproj.CRS.from_wkt(attrs[key])
    return None


def _array_finding(
    group: zarr.Group, asset: str, name: str, arr: zarr.Array, root_crs: Any
) -> str | None:
    mapping = dict(arr.attrs).get("grid_mapping")
    if not isinstance(mapping, str) or not mapping:
        return f"{asset}/{name}: no CF grid_mapping attribute, so {_REBUILD}"
    target = group.get(mapping)
    if not isinstance(target, zarr.Array):
        return f"{asset}/{name}: grid_mapping {mapping!r} is not an array of level {asset}"
    crs = _crs_of(dict(target.attrs))
    if crs is None:
        return f"{asset}/{mapping}: has no crs_wkt or spatial_ref attribute, so {_REBUILD}"
    if root_crs is not None and crs != root_crs:
        return f"{asset}/{mapping}: its CRS ({crs.name}) differs from proj:wkt2 ({root_crs.name})"
    return None


def grid_mapping_findings(root: zarr.Group) -> list[str]:
    """One line per spatial array of a level that GDAL or rioxarray cannot place on a map.

    A spatial array has both ``spatial:dimensions`` among its dimension names. It needs a
    ``grid_mapping`` attribute naming an array of its level group whose ``crs_wkt`` (or
    ``spatial_ref``) describes the root's ``proj:wkt2`` CRS.
    """
    attrs: dict[str, Any] = dict(root.attrs)
    dims = [str(d) for d in attrs.get("spatial:dimensions") or []]
    wkt2 = attrs.get("proj:wkt2")
    root_crs = _crs_of({"crs_wkt": wkt2}) if isinstance(wkt2, str) else None
    findings: list[str] = []
    for asset in _layout_assets(root):
        group = root.get(asset)
        if not isinstance(group, zarr.Group):
            continue  # topozarr validate reports missing assets itself
        for name, arr in sorted(group.arrays(), key=lambda kv: kv[0]):
            if dims and all(d in _dimension_names(arr) for d in dims):
                finding = _array_finding(group, asset, name, arr, root_crs)
                # Variables sharing one faulty CRS variable get one finding.
                if finding and finding not in findings:
                    findings.append(finding)
    return findings


def print_warnings(findings: Iterable[str], file: TextIO | None = None) -> None:
    """Print each finding as a ``warning:`` line (stdout by default)."""
    for finding in findings:
        print(f"warning: {finding}", file=file or sys.stdout)


def sharded_note(arrays_shards: Iterable[Any]) -> str | None:
    """:data:`SHARDED_GDAL_NOTE` when any of the arrays' shard shapes is set, else None."""
    return SHARDED_GDAL_NOTE if any(arrays_shards) else None
