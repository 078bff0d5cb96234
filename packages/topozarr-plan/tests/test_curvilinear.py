"""2-D (curvilinear) latitude/longitude grids are refused with a message to regrid first."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from _plan_testing import make_dataset
from topozarr_plan import PlanError, create_pyramid


def _curvilinear() -> xr.Dataset:
    ny, nx = 8, 10
    j, i = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    lon = -30.0 + 0.5 * i + 0.1 * j  # a rotated, sheared grid: no 1-D x/y describes it
    lat = 60.0 - 0.5 * j + 0.05 * i
    ds = xr.Dataset(
        {"sst": (("y", "x"), np.zeros((ny, nx), np.float32))},
        coords={
            "lat": (("y", "x"), lat, {"standard_name": "latitude"}),
            "lon": (("y", "x"), lon, {"standard_name": "longitude"}),
        },
    )
    return ds


def test_curvilinear_without_crs_is_refused_first() -> None:
    # The grid, not the missing CRS, is what the user must fix first.
    with pytest.raises(PlanError, match=r"'lat' is a 2-D coordinate.*regrid"):
        create_pyramid(_curvilinear(), levels=2)


def test_two_d_lon_as_x_dim_is_refused() -> None:
    with pytest.raises(PlanError, match="regrid"):
        create_pyramid(_curvilinear(), levels=2, x_dim="lon", y_dim="lat")


def test_regular_projected_grid_with_auxiliary_lat_lon_is_accepted() -> None:
    # Daymet-style: 1-D regular x/y in a projected CRS, 2-D lat/lon alongside.
    ds = make_dataset(16, 16, crs="EPSG:3857", res=1000.0, x0=0.0, y_top=0.0)
    yy, xx = np.meshgrid(ds.y.values, ds.x.values, indexing="ij")
    ds = ds.assign_coords(lat=(("y", "x"), yy / 1e5), lon=(("y", "x"), xx / 1e5))
    pyramid = create_pyramid(ds, levels=2)
    np.testing.assert_array_equal(pyramid.level_templates[0]["lat"].values, yy / 1e5)
