"""Level-0 affine transform from 1-D cell-centre coordinates, and analytic level grids.

The transform is in rasterio order ``[a, b, c, d, e, f]`` (``x = a*col + c``,
``y = e*row + f``; ``(c, f)`` is the outer corner of cell (0, 0)). Coarser levels are never
derived from float differences of coarsened coordinates: cell size and origin come from
level 0, and level ``k`` coordinates are ``origin + cell_k * (i + 0.5)``, which equals the
window mean of the native cell centres exactly (up to one rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from topozarr_plan.errors import PlanError

__all__ = ["AxisGrid", "axis_grid", "level_coordinate", "transform_from_axes"]

#: Coordinate attribute giving the signed step between consecutive coordinate values. Only
#: consulted for length-1 axes, whose spacing cannot be inferred from the values.
RESOLUTION_ATTR = "resolution"

# Relative tolerance on the spacing of a "regular" axis. Coordinates written as float32 or
# produced by ``np.linspace`` carry a few ulps of noise; anything beyond this is a real
# irregularity (e.g. a Gaussian grid) that no affine transform can describe.
_REL_TOL = 1e-6


@dataclass(frozen=True)
class AxisGrid:
    """A regular axis: ``size`` cells of signed width ``step``, first centre at ``first``."""

    name: str
    size: int
    step: float
    first: float

    @property
    def origin(self) -> float:
        """Outer edge of the first cell (rasterio ``c`` or ``f``)."""
        return self.first - self.step / 2.0

    def level_size(self, factor: int) -> int:
        """Number of cells at cumulative ``factor`` (``xarray.coarsen(boundary="trim")``)."""
        return self.size // factor


def axis_grid(coord: Any, *, name: str, role: str) -> AxisGrid:
    """Check that a 1-D coordinate is regular and return its grid.

    Parameters
    ----------
    coord : xarray.DataArray
        The dimension coordinate (cell centres).
    name : str
        Dimension name, for messages.
    role : {"x", "y"}
        Which spatial axis this is; x must increase (west to east).

    Raises
    ------
    PlanError
        If the coordinate is not numeric, not evenly spaced, has zero spacing, runs east
        to west (x only), or has length 1 without a ``resolution`` attribute.
    """
    values = np.asarray(coord.values)
    if values.ndim != 1:
        raise PlanError(
            f"coordinate {name!r} is {values.ndim}-D; topozarr needs a 1-D coordinate of cell "
            f"centres for the {role} dimension (curvilinear grids must be regridded first)"
        )
    if not (np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)):
        raise PlanError(
            f"coordinate {name!r} has dtype {values.dtype}; the {role} coordinate must be numeric "
            f"cell centres in CRS units"
        )
    size = int(values.shape[0])
    if size == 0:
        raise PlanError(f"dimension {name!r} has length 0; nothing to write")
    v = values.astype(np.float64)
    if not np.all(np.isfinite(v)):
        raise PlanError(f"coordinate {name!r} contains NaN or infinite values; fill or drop them")
    if size == 1:
        res = coord.attrs.get(RESOLUTION_ATTR)
        if res is None or not np.isfinite(float(res)) or float(res) == 0.0:
            raise PlanError(
                f"dimension {name!r} has a single cell, so its cell size cannot be inferred; set "
                f"ds[{name!r}].attrs[{RESOLUTION_ATTR!r}] to the signed step between cell centres "
                f"(e.g. -0.25 for north-up latitude)"
            )
        step = float(res)
    else:
        # The end-to-end span averages out per-step rounding noise of the stored values.
        step = (v[-1] - v[0]) / (size - 1)
        if step == 0.0:
            raise PlanError(f"coordinate {name!r} has zero spacing; cell centres must be distinct")
        diffs = np.diff(v)
        scale = float(np.max(np.abs(v)))
        eps = float(np.finfo(values.dtype).eps) if values.dtype.kind == "f" else 0.0
        tol = _REL_TOL * abs(step) + 4.0 * eps * scale
        worst = float(np.max(np.abs(diffs - step)))
        if worst > tol:
            i = int(np.argmax(np.abs(diffs - step)))
            raise PlanError(
                f"coordinate {name!r} is not evenly spaced (step {diffs[i]!r} at index {i} vs mean "
                f"step {step!r}); topozarr needs a regular grid, so regrid/interpolate the data "
                f"onto evenly spaced {role} cell centres first"
            )
    if role == "x" and step < 0:
        raise PlanError(
            f"coordinate {name!r} decreases (step {step!r}); x must run west to east, so call "
            f"ds.sortby({name!r}) first"
        )
    return AxisGrid(name=name, size=size, step=step, first=float(v[0]))


def transform_from_axes(y: AxisGrid, x: AxisGrid) -> list[float]:
    """Level-0 affine transform ``[a, 0, c, 0, e, f]`` (``e < 0`` for north-up rows)."""
    return [x.step, 0.0, x.origin, 0.0, y.step, y.origin]


def level_coordinate(axis: AxisGrid, factor: int, dtype: np.dtype[Any]) -> np.ndarray:
    """Cell centres of ``axis`` coarsened by cumulative ``factor``.

    ``origin + step*factor*(i + 0.5)`` is the exact mean of the ``factor`` native centres in
    window ``i``; computed in float64 and cast to ``dtype`` (float64 when the source
    coordinate is an integer type, since window means are not integers).
    """
    out_dtype = dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)
    n = axis.level_size(factor)
    cell = axis.step * factor
    return (axis.origin + cell * (np.arange(n, dtype=np.float64) + 0.5)).astype(out_dtype)
