"""Level templates: real coordinates, cleaned attrs, placeholder data, carried variables."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import xarray as xr
import zarr
from _plan_testing import make_dataset, requires_dask
from topozarr_plan import create_pyramid
from topozarr_plan.templates import fill_value_for, output_dtype, placeholder


def test_level_coordinates() -> None:
    ds = make_dataset(101, 67)
    p = create_pyramid(ds, factors=[1, 2, 8])
    np.testing.assert_array_equal(p.level_templates[0].x.values, ds.x.values)
    np.testing.assert_array_equal(p.level_templates[0].y.values, ds.y.values)
    for level, factor in enumerate(p.factors):
        tpl = p.level_templates[level]
        for dim in ("x", "y"):
            ref = ds[dim].coarsen({dim: factor}, boundary="trim").mean()
            np.testing.assert_allclose(tpl[dim].values, ref.values, rtol=0, atol=1e-9)
            assert tpl[dim].attrs == ds[dim].attrs
        assert tpl["data"].shape == (ds.sizes["y"] // factor, ds.sizes["x"] // factor)


@requires_dask
def test_placeholders_are_lazy_and_typed() -> None:
    import dask.array as da

    ds = make_dataset(64, 64, extra={"time": 3})
    p = create_pyramid(ds, levels=3)
    for level, tpl in p.level_templates.items():
        var = tpl["data"]
        assert isinstance(var.data, da.Array)
        assert var.dtype == np.float32
        assert var.dims == ("time", "y", "x")
        enc = p.encoding[f"/{level}"]["data"]
        # A shard may be longer than the array along time (see encoding.py).
        assert var.data.chunksize == tuple(
            min(s, n) for s, n in zip(enc["shards"], var.shape, strict=True)
        )


def test_numpy_placeholder_without_dask(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith("dask"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    arr = placeholder((65536, 65536), np.dtype("float32"), (1024, 2048))
    assert arr.shape == (65536, 65536) and arr.strides == (0, 0)
    assert arr.base is not None and arr.base.nbytes == 4


def test_stale_geo_attrs_dropped_and_group_attrs_added() -> None:
    ds = make_dataset(32, 32)
    ds.attrs.update(
        {
            "title": "t",
            "proj:code": "EPSG:9999",
            "spatial:transform": [1, 0, 0, 0, 1, 0],
            "multiscales": {"layout": []},
            "zarr_conventions": [],
        }
    )
    ds["data"].attrs.update({"proj:wkt2": "x", "spatial:dimensions": ["a", "b"]})
    p = create_pyramid(ds, levels=2)
    for level, tpl in p.level_templates.items():
        assert tpl.attrs["title"] == "t"
        for key, value in p.group_attrs[level].items():
            assert tpl.attrs[key] == value
        assert tpl.attrs["proj:code"] == "EPSG:4326"
        assert "multiscales" not in tpl.attrs
        assert tpl["data"].attrs == {
            "units": "K",
            "long_name": "test",
            "grid_mapping": "spatial_ref",
        }
    assert "title" not in p.attrs


@pytest.mark.parametrize(
    ("dtype", "where", "key", "value", "expected"),
    [
        ("float32", None, None, None, "nan"),
        ("float32", "attrs", "_FillValue", -9999.0, -9999.0),
        ("float64", "attrs", "missing_value", -1.0, -1.0),
        ("float32", "encoding", "_FillValue", 1e20, 1e20),
        ("int16", None, None, None, None),
        ("int16", "attrs", "_FillValue", -32768, -32768),
        ("uint8", "encoding", "_FillValue", 255, 255),
        ("int32", "attrs", "missing_value", [-1, -2], -1),
    ],
)
def test_fill_values(dtype, where, key, value, expected) -> None:  # type: ignore[no-untyped-def]
    ds = make_dataset(16, 16, dtype=dtype)
    if where:
        getattr(ds["data"], where)[key] = value
    fv = fill_value_for("data", ds["data"])
    if expected == "nan":
        assert isinstance(fv, float) and np.isnan(fv)
    else:
        assert fv == expected
    p = create_pyramid(ds, levels=2)
    got = p.fill_values["data"]
    assert (np.isnan(got) and expected == "nan") if expected == "nan" else got == expected
    for tpl in p.level_templates.values():
        assert "_FillValue" not in tpl["data"].attrs and "missing_value" not in tpl["data"].attrs
        if expected is None:
            assert "_FillValue" not in tpl["data"].encoding
        elif expected != "nan":
            assert tpl["data"].encoding["_FillValue"] == expected


def test_encoding_fill_wins_over_attrs() -> None:
    ds = make_dataset(8, 8)
    ds["data"].encoding["_FillValue"] = -1.0
    ds["data"].attrs["missing_value"] = -2.0
    assert fill_value_for("data", ds["data"]) == -1.0


def test_output_dtype() -> None:
    assert output_dtype(np.dtype("uint8"), "sum", 1) == np.uint8
    assert output_dtype(np.dtype("uint8"), "sum", 2) == np.uint64
    assert output_dtype(np.dtype("int16"), "sum", 4) == np.int64
    assert output_dtype(np.dtype("float32"), "sum", 4) == np.float32
    assert output_dtype(np.dtype("int16"), "mean", 4) == np.int16
    ds = make_dataset(16, 16, dtype="int16")
    p = create_pyramid(ds, levels=3, method="sum")
    assert [p.level_templates[k]["data"].dtype for k in range(3)] == [
        np.int16,
        np.int64,
        np.int64,
    ]


def test_carried_variables() -> None:
    ds = make_dataset(32, 32, extra={"time": 2})
    ds = ds.assign(
        time_bnds=(("time", "nv"), np.array([[0, 1], [1, 2]])),
        y_bnds=(("y", "nv"), np.stack([ds.y.values - 0.125, ds.y.values + 0.125], axis=1)),
        profile=("x", np.arange(32.0)),
    )
    ds = ds.assign_coords(
        lat2d=(("y", "x"), np.broadcast_to(ds.y.values[:, None], (32, 32)).copy()),
        label=("time", ["a", "b"]),
    )
    p = create_pyramid(ds, levels=3)
    t0 = p.level_templates[0]
    xr.testing.assert_identical(t0["y_bnds"].variable, ds["y_bnds"].variable)
    np.testing.assert_array_equal(t0["lat2d"].values, ds["lat2d"].values)
    for level in (1, 2):
        tpl = p.level_templates[level]
        assert "y_bnds" not in tpl and "lat2d" not in tpl.coords
        # A profile along x is reduced like the rasters (test_profiles.py checks its values).
        assert tpl["profile"].shape == (32 // 2**level,)
    for tpl in p.level_templates.values():
        np.testing.assert_array_equal(tpl["time_bnds"].values, ds["time_bnds"].values)
        assert list(tpl["label"].values) == ["a", "b"]
        assert "time_bnds" in tpl.data_vars and "label" in tpl.coords
    assert list(p.encoding["/0"]) == ["data", "profile"]


def test_crs_coordinate_in_every_level() -> None:
    ds = make_dataset(32, 32, crs="EPSG:3857", res=30.0, x0=0.0, y_top=0.0)
    p = create_pyramid(ds, levels=3)
    for tpl in p.level_templates.values():
        assert tpl.proj.crs == ds.proj.crs
        assert "crs_wkt" in tpl["spatial_ref"].attrs
        assert tpl["spatial_ref"].ndim == 0


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:32633"])
def test_grid_mapping_names_the_crs_coordinate(crs: str) -> None:
    # A CRS coordinate not called spatial_ref, and a stale grid_mapping left by the source.
    ds = make_dataset(32, 32, crs=crs).rename({"spatial_ref": "crs"})
    ds["data"].attrs["grid_mapping"] = "gone"
    ds["band2"] = ds["data"] * 2
    p = create_pyramid(ds, levels=3)
    want = pyproj.CRS.from_user_input(crs)
    for tpl in p.level_templates.values():
        assert {tpl[v].attrs["grid_mapping"] for v in ("data", "band2")} == {"crs"}
        assert "spatial_ref" not in tpl.variables
        for key in ("crs_wkt", "spatial_ref"):  # CF's key, and GDAL's older one
            assert pyproj.CRS.from_wkt(tpl["crs"].attrs[key]) == want
        assert pyproj.CRS.from_cf(tpl["crs"].attrs) == want


def test_source_storage_encoding_not_carried(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds = make_dataset(64, 64, extra={"time": 2})
    ds.time.encoding["units"] = "days since 2000-01-01"
    path = tmp_path / "src.zarr"
    ds.to_zarr(path, zarr_format=3, consolidated=False, encoding={"data": {"chunks": (1, 16, 16)}})
    src = xr.open_zarr(path, consolidated=False, chunks=None).proj.assign_crs(
        spatial_ref="EPSG:4326", allow_override=True
    )
    p = create_pyramid(src, levels=2)
    for tpl in p.level_templates.values():
        for var in tpl.variables.values():
            assert not {"chunks", "preferred_chunks", "compressors", "shards"} & set(var.encoding)


@requires_dask
def test_template_writes_metadata_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds = make_dataset(300, 200, extra={"time": 2})
    p = create_pyramid(ds, levels=3)
    store = tmp_path / "t.zarr"
    for level, tpl in p.level_templates.items():
        tpl.to_zarr(
            store,
            group=str(level),
            mode="a",
            compute=False,
            zarr_format=3,
            consolidated=False,
            encoding=p.encoding[f"/{level}"],
        )
    g = zarr.open_group(store, mode="r")
    for level in p.level_templates:
        arr = g[f"{level}/data"]
        enc = p.encoding[f"/{level}"]["data"]
        assert arr.chunks == enc["chunks"] and arr.shards == enc["shards"]
        assert arr.nchunks_initialized == 0
        assert g[str(level)].attrs["spatial:shape"] == list(arr.shape[1:])


def test_gdal_geotransform_restated_per_level() -> None:
    ds = make_dataset(32, 32, res=0.5, x0=0.0, y_top=10.0)
    ds["spatial_ref"].attrs["GeoTransform"] = "0.0 0.5 0.0 10.0 0.0 -0.5"
    p = create_pyramid(ds, levels=3)
    gts = [p.level_templates[k]["spatial_ref"].attrs["GeoTransform"] for k in range(3)]
    assert gts == [
        "0.0 0.5 0.0 10.0 0.0 -0.5",
        "0.0 1.0 0.0 10.0 0.0 -1.0",
        "0.0 2.0 0.0 10.0 0.0 -2.0",
    ]


def test_coarsening_method_literal_lists_the_kernels_methods() -> None:
    from typing import get_args

    from topozarr_engine.kernel import METHODS
    from topozarr_plan.types import CoarseningMethod

    assert get_args(CoarseningMethod) == tuple(METHODS)


def test_an_unknown_method_has_no_output_dtype() -> None:
    with pytest.raises(ValueError, match="'median'"):
        output_dtype(np.dtype("uint8"), "median", 2)
