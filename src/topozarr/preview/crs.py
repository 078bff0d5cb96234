"""What the bundled zarr-layer (0.5.0) needs to place a pyramid: its CRS and its outline.

zarr-layer 0.5 draws EPSG:4326 and EPSG:3857 natively and any other CRS given as a proj4
string (reprojected on the GPU). It does not read ``proj:*`` itself, so the server resolves the
CRS here and passes ``crs`` or ``proj4`` to the layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from topozarr.errors import TopozarrError

_NATIVE = {"EPSG:4326": "EPSG:4326", "OGC:CRS84": "EPSG:4326", "EPSG:3857": "EPSG:3857"}
_MERCATOR_RADIUS = 6378137.0
# Web Mercator stops at ~85.05°: views are clamped there.
MAX_MERCATOR_LAT = 85.0


@dataclass(frozen=True)
class LayerCrs:
    """How zarr-layer is told the CRS: ``crs`` (native) or ``proj4`` (reprojected)."""

    label: str
    crs: str | None = None
    proj4: str | None = None
    transformer: Any = None  # pyproj Transformer to EPSG:4326 for the outline, when proj4


class UndrawableCrs(TopozarrError, ValueError):
    """The store's CRS is one the bundled zarr-layer cannot draw."""


def layer_crs(attrs: Mapping[str, Any]) -> LayerCrs:
    """Resolve the ``proj:*`` attributes to what zarr-layer 0.5 takes.

    Raises
    ------
    UndrawableCrs
        No ``proj:*`` attribute, or a CRS that neither is native nor has a proj4 form.
    """
    code = attrs.get("proj:code")
    if isinstance(code, str) and code.upper() in _NATIVE:
        return LayerCrs(label=code, crs=_NATIVE[code.upper()])
    declared = code or attrs.get("proj:wkt2") or attrs.get("proj:projjson")
    if declared is None:
        raise UndrawableCrs(
            "the pyramid declares no CRS (no proj:code, proj:wkt2 or proj:projjson); rebuild it "
            "with `topozarr build --crs EPSG:4326` (or the source's CRS)"
        )
    label = code if isinstance(code, str) else "the declared CRS"
    try:
        import pyproj

        source = pyproj.CRS.from_user_input(declared)
        proj4 = source.to_proj4()
        if not proj4:
            raise ValueError("no proj4 form")
        to_lonlat = pyproj.Transformer.from_crs(source, "EPSG:4326", always_xy=True)
    except Exception as err:  # pyproj missing, or a CRS proj4 cannot express
        raise UndrawableCrs(
            f"the bundled zarr-layer 0.5.0 cannot draw {label} ({' '.join(str(err).split())}): "
            "it draws EPSG:4326, EPSG:3857 and CRSs with a proj4 form; rebuild the pyramid "
            "from a source reprojected to EPSG:4326 or EPSG:3857"
        ) from None
    return LayerCrs(label=source.to_string(), proj4=proj4, transformer=to_lonlat)


def outline_lonlat(crs: LayerCrs, bounds: tuple[float, float, float, float]) -> list[list[float]]:
    """The data's edge as a closed lon/lat ring (densified, so curved edges stay curved)."""
    west, south, east, north = bounds
    n = 32
    xs = [west + (east - west) * i / n for i in range(n + 1)]
    ys = [south + (north - south) * i / n for i in range(n + 1)]
    ring = (
        [(x, south) for x in xs]
        + [(east, y) for y in ys[1:]]
        + [(x, north) for x in reversed(xs[:-1])]
        + [(west, y) for y in reversed(ys[:-1])]
    )
    if crs.crs == "EPSG:4326":
        points = ring
    elif crs.crs == "EPSG:3857":
        points = [_inverse_mercator(x, y) for x, y in ring]
    else:
        lon, lat = crs.transformer.transform([p[0] for p in ring], [p[1] for p in ring])
        points = list(zip(lon, lat, strict=True))
    return [[float(x), max(-90.0, min(90.0, float(y)))] for x, y in points]


def _inverse_mercator(x: float, y: float) -> tuple[float, float]:
    lon = math.degrees(x / _MERCATOR_RADIUS)
    lat = math.degrees(2 * math.atan(math.exp(y / _MERCATOR_RADIUS)) - math.pi / 2)
    return lon, lat


def view_bounds(ring: list[list[float]]) -> list[list[float]]:
    """``[[west, south], [east, north]]`` around a ring, clamped to what Mercator shows."""
    lons = [p[0] for p in ring if math.isfinite(p[0])]
    lats = [p[1] for p in ring if math.isfinite(p[1])]
    clamp = MAX_MERCATOR_LAT
    return [
        [max(-180.0, min(lons)), max(-clamp, min(lats))],
        [min(180.0, max(lons)), min(clamp, max(lats))],
    ]
