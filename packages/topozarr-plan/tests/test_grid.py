"""Level-0 transform from cell centres; analytic level coordinates."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from _plan_testing import make_dataset
from topozarr_plan.grid import axis_grid, level_coordinate, transform_from_axes


def _transform(ds: xr.Dataset) -> list[float]:
    return transform_from_axes(
        axis_grid(ds["y"], name="y", role="y"), axis_grid(ds["x"], name="x", role="x")
    )


def test_north_up_rules_example() -> None:
    # The worked example of docs/metadata.md: 1024 x 2048 global EPSG:4326, descending latitude.
    ds = make_dataset(1024, 2048, res=0.17578125, x0=-180.0, y_top=90.0)
    assert _transform(ds) == [0.17578125, 0.0, -180.0, 0.0, -0.17578125, 90.0]


def test_south_up_has_positive_e() -> None:
    ds = make_dataset(40, 80, north_up=False, res=0.5, x0=0.0, y_top=10.0)
    a, _, c, _, e, f = _transform(ds)
    assert (a, c) == (0.5, 0.0)
    assert e == 0.5 and f == pytest.approx(-10.0)


def test_metres() -> None:
    ds = make_dataset(10, 10, crs="EPSG:3857", res=30.0, x0=500_000.0, y_top=4_000_000.0)
    assert _transform(ds) == pytest.approx([30.0, 0, 500_000.0, 0, -30.0, 4_000_000.0])


def test_linspace_noise_averages_out() -> None:
    x = np.linspace(0.05, 359.95, 3600)
    g = axis_grid(xr.DataArray(x, dims="x"), name="x", role="x")
    assert g.step == pytest.approx(0.1, rel=1e-12)
    assert g.origin == pytest.approx(0.0, abs=1e-9)


def test_integer_coordinates() -> None:
    g = axis_grid(xr.DataArray(np.arange(5) * 10 + 5, dims="x"), name="x", role="x")
    assert (g.step, g.origin) == (10.0, 0.0)
    coarse = level_coordinate(g, 2, np.dtype("int64"))
    assert coarse.dtype == np.float64
    np.testing.assert_array_equal(coarse, [10.0, 30.0])


@pytest.mark.parametrize("north_up", [True, False])
@pytest.mark.parametrize("factor", [2, 4, 16])
def test_level_coordinates_are_window_means(north_up: bool, factor: int) -> None:
    ds = make_dataset(101, 67, north_up=north_up, res=0.3)
    for dim, role in (("y", "y"), ("x", "x")):
        g = axis_grid(ds[dim], name=dim, role=role)
        expected = ds[dim].coarsen({dim: factor}, boundary="trim").mean().values
        got = level_coordinate(g, factor, ds[dim].dtype)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
        assert len(got) == ds.sizes[dim] // factor
