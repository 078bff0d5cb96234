"""Grid geometry of pyramid levels, computed analytically from level 0.

A level with cumulative factor ``F`` (level 0 has ``F = 1``) is obtained by *trim*
coarsening of level 0: ``H = floor(H0 / F)``, ``W = floor(W0 / F)``, pixel size
``(a0 * F, e0 * F)`` and the same origin ``(c0, f0)``. Nothing here is derived from
float differences of coordinates.

Transforms are 6-sequences ``[a, b, c, d, e, f]`` in rasterio/Affine order:
``x = a*col + b*row + c`` and ``y = d*col + e*row + f``, with ``(c, f)`` the outer
corner of cell ``(0, 0)``. Only axis-aligned grids (``b == d == 0``) are accepted;
``e < 0`` is north-up (row 0 at the top), ``e > 0`` south-up.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LevelGeometry",
    "bbox_of",
    "check_crs",
    "check_dims",
    "check_factor",
    "check_factors",
    "check_method",
    "check_shape",
    "check_transform",
    "level_geometry",
    "step_factors",
]

Transform = tuple[float, float, float, float, float, float]
BBox = tuple[float, float, float, float]

_CODE = re.compile(r"^[^:]+:[^:]+$")
_WKT1_KEYWORDS = ("GEOGCS[", "PROJCS[", "GEOCCS[", "COMPD_CS[", "LOCAL_CS[", "VERT_CS[")


@dataclass(frozen=True)
class LevelGeometry:
    """Absolute georeferencing of one pyramid level.

    Attributes
    ----------
    shape
        ``(height, width)`` = sizes along ``(y, x)``.
    transform
        ``(a, b, c, d, e, f)`` of this level (rasterio order), floats.
    bbox
        ``(xmin, ymin, xmax, ymax)``: the outer edges of the grid (pixel registration).
    """

    shape: tuple[int, int]
    transform: Transform
    bbox: BBox


def _as_list(value: object) -> list[Any] | None:
    """Items of a sized, iterable, non-string, non-mapping value (tuple, list, ndarray)."""
    if isinstance(value, str | bytes | Mapping):
        return None
    if not (isinstance(value, Sized) and isinstance(value, Iterable)):
        return None
    try:
        return list(value)
    except TypeError:  # e.g. a 0-d numpy array
        return None


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_shape(shape: object, *, name: str = "shape") -> tuple[int, int]:
    """Validate a ``(height, width)`` pair of positive integers.

    Raises
    ------
    ValueError
        If ``shape`` is not a 2-sequence of integers >= 1.
    """
    items = _as_list(shape)
    if items is None or len(items) != 2:
        raise ValueError(
            f"{name} must be a 2-sequence (height, width) of the y and x sizes, got {shape!r}"
        )
    if not all(_is_int(v) for v in items):
        raise ValueError(f"{name} must hold integers (height, width), got {shape!r}")
    h, w = int(items[0]), int(items[1])
    if h < 1 or w < 1:
        raise ValueError(
            f"{name} must be positive, got {shape!r}; every level needs at least one row and column"
        )
    return (h, w)


def check_transform(transform: object) -> Transform:
    """Validate an axis-aligned affine transform and return it as 6 floats.

    A 9-element sequence (e.g. a rasterio ``Affine``, which iterates as
    ``a, b, c, d, e, f, 0, 0, 1``) is accepted when its last row is ``0, 0, 1``.

    Raises
    ------
    ValueError
        For a wrong length, non-finite entries, a zero pixel size (``a == 0`` or
        ``e == 0``) or a rotation/shear (``b != 0`` or ``d != 0``).
    """
    items = _as_list(transform)
    if items is None:
        raise ValueError(
            f"transform must be a sequence [a, b, c, d, e, f] (rasterio order), got {transform!r}"
        )
    values = items
    if len(values) == 9 and all(_is_real(v) for v in values) and values[6:] == [0, 0, 1]:
        values = values[:6]
    if len(values) != 6:
        raise ValueError(
            f"transform must have 6 entries [a, b, c, d, e, f] (rasterio order), "
            f"got {len(values)}: {transform!r}"
        )
    if not all(_is_real(v) and math.isfinite(v) for v in values):
        raise ValueError(f"transform entries must be finite numbers, got {transform!r}")
    a, b, c, d, e, f = (float(v) for v in values)
    if a == 0 or e == 0:
        raise ValueError(
            f"degenerate transform {transform!r}: pixel width a={a} and height e={e} must be "
            "non-zero (use e < 0 for north-up rows, e > 0 for south-up)"
        )
    if b != 0 or d != 0:
        raise ValueError(
            f"rotated/sheared transform {transform!r}: b={b} and d={d} must be 0; "
            "warp the data to an axis-aligned grid first"
        )
    return (a, 0.0, c, 0.0, e, f)


def check_factor(factor: object) -> int:
    """Validate one cumulative coarsening factor (an integer >= 1)."""
    if not _is_int(factor) or int(factor) < 1:  # type: ignore[call-overload]
        raise ValueError(
            f"factor must be an integer >= 1 (1 = level 0, 2 = half resolution, ...), got {factor!r}"
        )
    return int(factor)  # type: ignore[call-overload]


def check_factors(factors: object) -> tuple[int, ...]:
    """Validate a list of cumulative factors, finest first.

    The list must start at 1, be strictly increasing, and each factor must divide
    the next (so each step is an integer coarsening of the previous level).

    Raises
    ------
    ValueError
        Naming the offending value and how to fix it.
    """
    items = _as_list(factors)
    if not items:
        raise ValueError(
            f"factors must be a non-empty sequence of cumulative integer factors such as "
            f"[1, 2, 4], got {factors!r}"
        )
    out = []
    for i, value in enumerate(items):
        if not _is_int(value) or int(value) < 1:
            raise ValueError(f"factors[{i}] must be an integer >= 1, got {value!r} in {items!r}")
        out.append(int(value))
    if out[0] != 1:
        raise ValueError(
            f"factors must start at 1 (level 0 is the source grid), got {out!r}; "
            f"prepend 1, e.g. {[1, *out]!r}"
        )
    for i in range(1, len(out)):
        prev, cur = out[i - 1], out[i]
        if cur <= prev:
            raise ValueError(
                f"factors must be strictly increasing, got {cur} after {prev} in {out!r}; "
                "sort them and drop duplicates"
            )
        if cur % prev:
            raise ValueError(
                f"factor {cur} is not a multiple of the previous factor {prev} in {out!r}; "
                "each level must coarsen the previous one by an integer step "
                f"(e.g. use {prev * max(2, round(cur / prev))})"
            )
    return tuple(out)


def step_factors(factors: Sequence[int]) -> tuple[int, ...]:
    """Per-step factors relative to the previous level (``[1, 4, 16] -> (1, 4, 4)``)."""
    checked = check_factors(factors)
    return (1, *(checked[i] // checked[i - 1] for i in range(1, len(checked))))


def check_dims(dims: object) -> tuple[str, str]:
    """Validate spatial dimension names ordered ``(y, x)``."""
    items = _as_list(dims)
    if items is None or len(items) != 2:
        raise ValueError(
            f"dims must be a 2-sequence of dimension names ordered [y, x], e.g. ('lat', 'lon'), "
            f"got {dims!r}"
        )
    if not all(isinstance(d, str) and d for d in items):
        raise ValueError(f"dims must hold two non-empty strings [y, x], got {dims!r}")
    if items[0] == items[1]:
        raise ValueError(f"dims must name two different dimensions [y, x], got {dims!r}")
    return (items[0], items[1])


def check_crs(crs_wkt2: object, crs_code: object) -> tuple[str, str | None]:
    """Validate the CRS given as WKT2 (required) and an optional ``AUTHORITY:CODE``."""
    if not isinstance(crs_wkt2, str) or not crs_wkt2.strip():
        raise ValueError(
            f"crs_wkt2 must be a non-empty WKT2 string (e.g. pyproj CRS.to_wkt()), got {crs_wkt2!r}"
        )
    if crs_wkt2.lstrip().upper().startswith(_WKT1_KEYWORDS):
        raise ValueError(
            f"crs_wkt2 looks like WKT1 ({crs_wkt2[:20]!r}...); pass WKT2 "
            "(e.g. pyproj CRS.to_wkt('WKT2_2019'))"
        )
    if crs_code is not None and (not isinstance(crs_code, str) or not _CODE.match(crs_code)):
        raise ValueError(
            f"crs_code must look like 'AUTHORITY:CODE' (e.g. 'EPSG:4326'), got {crs_code!r}; "
            "pass None when the CRS has no authority code"
        )
    return crs_wkt2, crs_code


def check_method(method: object, *, name: str = "method") -> str:
    """Validate a resampling method name (any non-empty string)."""
    if not isinstance(method, str) or not method:
        raise ValueError(f"{name} must be a non-empty string such as 'mean', got {method!r}")
    return method


def bbox_of(
    shape: tuple[int, int], transform: Sequence[float], *, registration: str = "pixel"
) -> BBox:
    """Extent ``(xmin, ymin, xmax, ymax)`` of an axis-aligned grid, as ``spatial:bbox``.

    With ``registration="pixel"`` (PixelIsArea) it spans the outer cell edges; with
    ``"node"`` (PixelIsPoint) the transform and bbox refer to border-cell centres,
    so the extent spans ``shape - 1`` cells.
    """
    h, w = shape
    if registration == "node":
        h, w = h - 1, w - 1
    a, _, c, _, e, f = transform
    x0, x1 = c, c + a * w
    y0, y1 = f, f + e * h
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def level_geometry(shape: Sequence[int], transform: Sequence[float], factor: int) -> LevelGeometry:
    """Shape, transform and bbox of the level with cumulative ``factor``.

    Parameters
    ----------
    shape
        Level-0 ``(height, width)``.
    transform
        Level-0 ``[a, b, c, d, e, f]`` (rasterio order), axis-aligned.
    factor
        Cumulative factor of the level relative to level 0 (1 = level 0).

    Returns
    -------
    LevelGeometry
        ``shape = (H0 // factor, W0 // factor)`` (trailing rows/columns that do not
        fill a whole window are trimmed), ``transform = (a0*factor, 0, c0, 0,
        e0*factor, f0)`` and the bbox of that grid.

    Raises
    ------
    ValueError
        For invalid inputs, or when the level would have no rows or columns.

    Examples
    --------
    >>> level_geometry((1024, 2048), [0.17578125, 0, -180, 0, -0.17578125, 90], 2).shape
    (512, 1024)
    """
    h0, w0 = check_shape(shape)
    a, _, c, _, e, f = check_transform(transform)
    k = check_factor(factor)
    h, w = h0 // k, w0 // k
    if h < 1 or w < 1:
        raise ValueError(
            f"factor {k} would make an empty level: level-0 shape {(h0, w0)} // {k} = {(h, w)}; "
            f"use factors no larger than {min(h0, w0)} (the smaller level-0 size)"
        )
    # F*W and F*H are exact integers, so each edge is one rounding away from level 0.
    x1 = c + a * (k * w)
    y1 = f + e * (k * h)
    bbox = (min(c, x1), min(f, y1), max(c, x1), max(f, y1))
    return LevelGeometry(shape=(h, w), transform=(a * k, 0.0, c, 0.0, e * k, f), bbox=bbox)
