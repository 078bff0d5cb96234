"""Every validation error names the bad value and the fix, before any I/O."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from _plan_testing import make_dataset
from topozarr_plan import PlanError, create_pyramid


@pytest.fixture
def ds() -> xr.Dataset:
    return make_dataset(32, 48)


def test_plan_error_is_value_error() -> None:
    assert issubclass(PlanError, ValueError)


def test_no_crs_mentions_assign_crs(ds: xr.Dataset) -> None:
    with pytest.raises(PlanError, match=r"proj\.assign_crs"):
        create_pyramid(ds.drop_vars("spatial_ref"), levels=1)


def test_no_crs_hints_at_cf_coordinate(ds: xr.Dataset) -> None:
    plain = ds.drop_vars("spatial_ref").assign_coords(crs=xr.Variable((), 0, {"crs_wkt": "x"}))
    with pytest.raises(PlanError, match=r"'crs'.*crs_wkt"):
        create_pyramid(plain, levels=1)


@pytest.mark.parametrize("levels", [0, -1, 1.5, True, "2", np.float64(2.0)])
def test_bad_levels(ds: xr.Dataset, levels: object) -> None:
    with pytest.raises(PlanError, match="levels must be an integer >= 1"):
        create_pyramid(ds, levels)  # type: ignore[arg-type]


def test_numpy_integer_levels_accepted(ds: xr.Dataset) -> None:
    assert create_pyramid(ds, np.int64(2)).factors == [1, 2]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("factors", "match"),
    [
        ([], "empty"),
        ([2, 4], "start at 1"),
        ([0, 1], "start at 1"),
        ([1, 2, 2], "strictly increasing"),
        ([1, 4, 2], "strictly increasing"),
        ([1, 3, 6, 8], "divide"),
        ([1, 2.0], "integers"),
        ([1, True], "integers"),
        ("1,2", "list of integers"),
        (3, "list of integers"),
    ],
)
def test_bad_factors(ds: xr.Dataset, factors: object, match: str) -> None:
    with pytest.raises(PlanError, match=match):
        create_pyramid(ds, factors=factors)  # type: ignore[arg-type]


def test_factors_tuple_accepted(ds: xr.Dataset) -> None:
    assert create_pyramid(ds, factors=(1, 2, 8)).factors == [1, 2, 8]  # type: ignore[arg-type]


@pytest.mark.parametrize("target", [0, -5, 1.5, "1MB", None])
def test_bad_target_chunk_bytes(ds: xr.Dataset, target: object) -> None:
    with pytest.raises(PlanError, match="target_chunk_bytes"):
        create_pyramid(ds, levels=1, target_chunk_bytes=target)  # type: ignore[arg-type]


@pytest.mark.parametrize("cps", [1, 2, 4, 8, 16, 32, None])
def test_good_chunks_per_shard(ds: xr.Dataset, cps: object) -> None:
    create_pyramid(ds, levels=2, chunks_per_shard=cps)  # type: ignore[arg-type]


def test_bad_method(ds: xr.Dataset) -> None:
    with pytest.raises(PlanError, match=r"'median'.*use one of"):
        create_pyramid(ds, levels=2, method="median")  # type: ignore[arg-type]


def test_nearest_accepted(ds: xr.Dataset) -> None:
    assert create_pyramid(ds, levels=2, method="nearest").method == "nearest"  # type: ignore[arg-type]


def test_missing_dims(ds: xr.Dataset) -> None:
    with pytest.raises(PlanError, match=r"x_dim='lon' is not a dimension.*'y', 'x'"):
        create_pyramid(ds, levels=1, x_dim="lon")
    with pytest.raises(PlanError, match="y_dim='lat'"):
        create_pyramid(ds, levels=1, y_dim="lat")
    with pytest.raises(PlanError, match="must differ"):
        create_pyramid(ds, levels=1, x_dim="x", y_dim="x")


def test_missing_coordinate_variable(ds: xr.Dataset) -> None:
    with pytest.raises(PlanError, match="dimension 'x' has no coordinate variable"):
        create_pyramid(ds.drop_vars("x"), levels=1)


def test_two_d_coordinate_named_as_x_dim(ds: xr.Dataset) -> None:
    lon2d = xr.broadcast(ds.x, ds.y)[0].transpose("y", "x")
    curvi = ds.assign_coords(lon=lon2d)
    with pytest.raises(PlanError, match="2-D coordinate"):
        create_pyramid(curvi, levels=1, x_dim="lon")


def test_non_uniform_coordinates(ds: xr.Dataset) -> None:
    x = ds.x.values.copy()
    x[10:] += 0.01
    with pytest.raises(PlanError, match=r"'x' is not evenly spaced.*regrid"):
        create_pyramid(ds.assign_coords(x=x), levels=1)


def test_float32_coordinate_noise_tolerated() -> None:
    ds = make_dataset(64, 64, crs="EPSG:3857", res=30.0, x0=500_000.0, y_top=4_000_000.0)
    ds = ds.assign_coords(x=ds.x.astype("float32"), y=ds.y.astype("float32"))
    create_pyramid(ds, levels=3)


def test_descending_x_rejected(ds: xr.Dataset) -> None:
    with pytest.raises(PlanError, match=r"sortby\('x'\)"):
        create_pyramid(ds.isel(x=slice(None, None, -1)), levels=1)


def test_non_numeric_coordinate(ds: xr.Dataset) -> None:
    bad = ds.assign_coords(x=[f"c{i}" for i in range(ds.sizes["x"])])
    with pytest.raises(PlanError, match="must be numeric"):
        create_pyramid(bad, levels=1)


def test_length_one_axis_needs_resolution() -> None:
    ds = make_dataset(1, 16)
    with pytest.raises(PlanError, match="resolution"):
        create_pyramid(ds, levels=1)
    ds["y"].attrs["resolution"] = -0.25
    p = create_pyramid(ds, levels=1)
    assert p.attrs["spatial:transform"][4] == -0.25


def test_no_spatial_variable(ds: xr.Dataset) -> None:
    only_1d = ds.drop_vars("data").assign(profile=ds.x * 2)
    with pytest.raises(PlanError, match="no data variable has both spatial dimensions"):
        create_pyramid(only_1d, levels=1)


def test_unsupported_dtype(ds: xr.Dataset) -> None:
    with pytest.raises(PlanError, match=r"dtype bool.*astype\(.uint8.\)"):
        create_pyramid(ds.assign(mask=ds.data > 0), levels=1)
    with pytest.raises(PlanError, match="complex64"):
        create_pyramid(ds.assign(c=ds.data.astype("complex64")), levels=1)


def test_empty_level(ds: xr.Dataset) -> None:
    with pytest.raises(PlanError, match=r"level 6 \(factor 64\) would be empty.*'y'.*at most 6"):
        create_pyramid(ds, levels=7)


@pytest.mark.parametrize(
    "name", ["a/b", "a\\b", ".hidden", "..", "", "__meta", "tab\tname", "zarr.json"]
)
def test_unsafe_variable_names(ds: xr.Dataset, name: str) -> None:
    bad = ds.assign({name: ds.data})
    with pytest.raises(PlanError, match="cannot be used as a Zarr array path"):
        create_pyramid(bad, levels=1)


def test_non_string_name(ds: xr.Dataset) -> None:
    bad = ds.assign({7: ds.data})
    with pytest.raises(PlanError, match="int, not a str"):
        create_pyramid(bad, levels=1)


def test_layer_hints_validation(ds: xr.Dataset) -> None:
    from topozarr_metadata import ZarrLayerVarConfig

    with pytest.raises(PlanError, match="'nope'"):
        create_pyramid(ds, levels=1, layer_hints={"nope": ZarrLayerVarConfig()})
    with pytest.raises(PlanError, match="ZarrLayerVarConfig"):
        create_pyramid(ds, levels=1, layer_hints={"data": {"clim": (0, 1)}})  # type: ignore[dict-item]


def test_int_fill_value_out_of_range() -> None:
    ds = make_dataset(16, 16, dtype="uint8")
    ds["data"].attrs["_FillValue"] = -1
    with pytest.raises(PlanError, match="cannot represent"):
        create_pyramid(ds, levels=1)


def test_not_a_dataset(ds: xr.Dataset) -> None:
    with pytest.raises(TypeError, match="to_dataset"):
        create_pyramid(ds.data, levels=1)  # type: ignore[arg-type]


def test_argument_errors_come_before_dataset_errors(ds: xr.Dataset) -> None:
    # A bad argument is reported even when the dataset is also unusable.
    with pytest.raises(PlanError, match="power of 2"):
        create_pyramid(ds.drop_vars("spatial_ref"), levels=1, chunks_per_shard=3)  # type: ignore[arg-type]
