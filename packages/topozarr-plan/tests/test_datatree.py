"""Pyramid.as_datatree: lazy, exact, equal to an independent xarray reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from _plan_testing import make_dataset, requires_dask
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from topozarr_plan import create_pyramid

METHODS = ["mean", "max", "min", "sum", "nearest"]


def float_source(chunks: dict[str, int] | None = None) -> xr.Dataset:
    ds = make_dataset(67, 45, extra={"time": 2})
    v = ds["data"].values
    rng = np.random.default_rng(1)
    v[rng.random(v.shape) < 0.2] = np.nan
    v[:, :8, :8] = np.nan  # a window that is all-missing up to factor 8
    ds["data"].values = v
    return ds.chunk(chunks) if chunks else ds


def int_source(chunks: dict[str, int] | None = None, dtype: str = "int16") -> xr.Dataset:
    ds = make_dataset(67, 45, dtype=dtype)
    v = ds["data"].values
    rng = np.random.default_rng(2)
    fill = -99 if np.dtype(dtype).kind == "i" else 199
    v[rng.random(v.shape) < 0.2] = fill
    v[:8, :8] = fill
    # Exact halves to exercise rounding half to even.
    v[8:10, 8:10] = [[1, 2], [2, 2]]  # mean 1.75 -> 2
    v[10:12, 8:10] = [[1, 2], [1, 2]]  # mean 1.5 -> 2
    v[12:14, 8:10] = [[2, 3], [2, 3]]  # mean 2.5 -> 2
    ds["data"].values = v
    ds["data"].attrs["_FillValue"] = fill
    return ds.chunk(chunks) if chunks else ds


def reference(ds: xr.Dataset, method: str, factor: int, fill: Any) -> np.ndarray:
    """Independent reference: xarray coarsen(boundary="trim") of the source by ``factor``."""
    da = ds["data"].load()
    dtype = da.dtype
    window = {"y": factor, "x": factor}
    if method == "nearest":
        ny, nx = (da.sizes["y"] // factor) * factor, (da.sizes["x"] // factor) * factor
        return da.isel(y=slice(0, ny, factor), x=slice(0, nx, factor)).values
    if dtype.kind == "f":
        c = da.coarsen(window, boundary="trim")
        return getattr(c, method)().values.astype(dtype)
    valid = da != fill if fill is not None else xr.ones_like(da, dtype=bool)
    masked = da.astype("float64").where(valid)
    counts = valid.coarsen(window, boundary="trim").sum().values
    c = masked.coarsen(window, boundary="trim")
    if method == "sum":
        return (
            da.where(valid, 0)
            .coarsen(window, boundary="trim")
            .sum()
            .values.astype(np.add.reduce(np.zeros(1, dtype)).dtype)
        )
    if method == "mean":
        out = np.round(c.sum().values / np.maximum(counts, 1))  # half to even
    else:
        out = getattr(c, method)().values
    return np.where(counts > 0, out, fill).astype(dtype)


def _check(ds: xr.Dataset, method: str, factors: list[int]) -> None:
    p = create_pyramid(ds, factors=factors, method=method)  # type: ignore[arg-type]
    dt = p.as_datatree()
    assert dict(dt.attrs) == p.attrs
    assert list(dt.children) == [str(k) for k in range(len(factors))]
    for level, factor in enumerate(factors):
        node = dt[str(level)]
        for key, value in p.group_attrs[level].items():
            assert node.attrs[key] == value
        got = node["data"]
        expected = (
            reference(ds, method, factor, p.fill_values["data"])
            if factor > 1
            else ds["data"].values
        )
        assert got.dtype == p.level_templates[level]["data"].dtype == expected.dtype
        if expected.dtype.kind == "f" and method in ("mean", "sum"):
            # Accumulation order / precision may differ from xarray's float reduction.
            np.testing.assert_allclose(got.values, expected, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(got.values, expected)
        np.testing.assert_array_equal(node["x"].values, p.level_templates[level]["x"].values)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("chunks", [None, pytest.param({"y": 20, "x": 16}, marks=requires_dask)])
def test_float_with_nan(method: str, chunks: dict[str, int] | None) -> None:
    _check(float_source(chunks), method, [1, 2, 4, 8])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("chunks", [None, pytest.param({"y": 20, "x": 16}, marks=requires_dask)])
def test_int_with_fill_value(method: str, chunks: dict[str, int] | None) -> None:
    _check(int_source(chunks), method, [1, 2, 4, 8])


@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64", "uint16"])
def test_other_int_dtypes_mean(dtype: str) -> None:
    _check(int_source(dtype=dtype), "mean", [1, 2, 8])


def test_int_without_fill_rounds_half_to_even() -> None:
    ds = make_dataset(4, 4, dtype="int32")
    ds["data"].values = np.array(
        [[1, 2, 2, 3], [1, 2, 2, 3], [0, 0, -1, -2], [0, 1, -1, -2]], dtype="int32"
    )
    p = create_pyramid(ds, levels=2)
    assert p.fill_values["data"] is None
    np.testing.assert_array_equal(p.as_datatree()["1"]["data"].values, [[2, 2], [0, -2]])


def test_sparse_factors_and_float_fill_attr() -> None:
    ds = float_source()
    ds["data"] = ds["data"].fillna(-9999.0)
    ds["data"].attrs["_FillValue"] = -9999.0
    p = create_pyramid(ds, factors=[1, 4, 16], method="mean")
    dt = p.as_datatree()
    masked = ds.where(ds["data"] != -9999.0)
    for level, factor in ((1, 4), (2, 16)):
        ref = masked["data"].coarsen(y=factor, x=factor, boundary="trim").mean().fillna(-9999.0)
        np.testing.assert_allclose(dt[str(level)]["data"].values, ref.values, rtol=1e-6)
        assert dt[str(level)]["data"].encoding["_FillValue"] == -9999.0


@requires_dask
def test_lazy_for_dask_source() -> None:
    import dask.array as da

    ds = float_source({"y": 20, "x": 16})
    p = create_pyramid(ds, levels=3)
    dt = p.as_datatree()
    for level in range(3):
        data = dt[str(level)]["data"].data
        assert isinstance(data, da.Array)
        enc = p.encoding[f"/{level}"]["data"]
        unit = enc["shards"]
        for axis_chunks, u in zip(data.chunks, unit, strict=True):
            assert all(c % u == 0 for c in axis_chunks[:-1])


@requires_dask
def test_lazy_zarr_source(tmp_path: Any) -> None:
    ds = float_source()
    path = tmp_path / "src.zarr"
    ds.drop_vars("spatial_ref").to_zarr(path, zarr_format=3, consolidated=False)
    src = xr.open_zarr(path, consolidated=False, chunks=None).proj.assign_crs(
        spatial_ref="EPSG:4326"
    )
    p = create_pyramid(src, levels=3)
    dt = p.as_datatree()
    # Lazy: the level arrays are dask graphs, nothing computed yet.
    import dask.array as da

    assert isinstance(dt["2"]["data"].data, da.Array)
    np.testing.assert_allclose(
        dt["1"]["data"].values, reference(ds, "mean", 2, p.fill_values["data"]), rtol=1e-6
    )


def test_eager_without_dask(monkeypatch: pytest.MonkeyPatch) -> None:
    import topozarr_plan.datatree as mod

    monkeypatch.setattr(mod, "_have_dask", lambda: False)
    ds = int_source()
    p = create_pyramid(ds, levels=3)
    dt = p.as_datatree()
    for level, factor in enumerate(p.factors[1:], start=1):
        assert isinstance(dt[str(level)]["data"].data, np.ndarray)
        np.testing.assert_array_equal(
            dt[str(level)]["data"].values, reference(ds, "mean", factor, -99)
        )


def test_carried_variables_in_tree() -> None:
    ds = float_source()
    ds = ds.assign(
        time_bnds=(("time", "nv"), np.array([[0, 1], [1, 2]])), prof=("x", np.arange(45))
    )
    p = create_pyramid(ds, levels=2)
    dt = p.as_datatree()
    # A profile along x is coarsened along x (integer mean: the exact mean, half to even).
    expected = np.round(ds["prof"].coarsen(x=2, boundary="trim").mean().values).astype(np.int64)
    np.testing.assert_array_equal(dt["1"]["prof"].values, expected)
    np.testing.assert_array_equal(dt["1"]["time_bnds"].values, ds["time_bnds"].values)


@pytest.fixture(scope="module")
def client() -> Any:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.mark.parametrize("source", ["float", "int"])
def test_to_zarr_on_distributed(client: Any, tmp_path: Any, source: str) -> None:
    ds = float_source({"y": 20, "x": 16}) if source == "float" else int_source({"y": 32, "x": 32})
    p = create_pyramid(ds, levels=4, target_chunk_bytes=256, chunks_per_shard=2)
    dt = p.as_datatree()
    store = tmp_path / "pyramid.zarr"
    dt.to_zarr(store, zarr_format=3, consolidated=False, encoding=p.encoding)
    g = zarr.open_group(store, mode="r")
    assert dict(g.attrs)["multiscales"] == p.attrs["multiscales"]
    back = xr.open_datatree(store, engine="zarr", consolidated=False, mask_and_scale=False)
    for level, factor in enumerate(p.factors):
        arr = g[f"{level}/data"]
        enc = p.encoding[f"/{level}"]["data"]
        assert arr.chunks == enc["chunks"] and arr.shards == enc["shards"]
        assert tuple(arr.metadata.dimension_names) == ds["data"].dims
        fv = p.fill_values["data"]
        if fv is not None and not np.isnan(fv):
            assert arr.fill_value == fv
        elif fv is not None:
            assert np.isnan(arr.fill_value)
        expected = reference(ds, "mean", factor, fv) if factor > 1 else ds["data"].values
        np.testing.assert_allclose(back[str(level)]["data"].values, expected, rtol=1e-6)
        assert dict(g[str(level)].attrs)["spatial:shape"] == list(arr.shape[-2:])


def test_transposed_spatial_dims() -> None:
    ds = float_source().transpose("x", "time", "y")
    p = create_pyramid(ds, levels=3, method="max")
    dt = p.as_datatree()
    assert p.encoding["/1"]["data"]["chunks"][1] == 1
    for level, factor in enumerate(p.factors[1:], start=1):
        expected = reference(ds, "max", factor, None)
        np.testing.assert_array_equal(dt[str(level)]["data"].values, expected)
        assert dt[str(level)]["data"].dims == ("x", "time", "y")


@requires_dask
@settings(max_examples=25, deadline=None)
@given(
    ny=st.integers(2, 40),
    nx=st.integers(2, 40),
    cy=st.integers(1, 17),
    cx=st.integers(1, 17),
    nlevels=st.integers(1, 4),
    method=st.sampled_from(METHODS),
    dtype=st.sampled_from(["float32", "float64", "int16", "uint8"]),
    seed=st.integers(0, 2**16),
)
def test_property_matches_reference(ny, nx, cy, cx, nlevels, method, dtype, seed) -> None:  # type: ignore[no-untyped-def]
    top = 2 ** (nlevels - 1)
    assume(ny >= top and nx >= top)
    ds = make_dataset(ny, nx, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    v = ds["data"].values
    fill = np.nan if dtype.startswith("float") else 7
    v[rng.random(v.shape) < 0.3] = fill
    ds["data"].values = v
    if not dtype.startswith("float"):
        ds["data"].attrs["_FillValue"] = 7
    ds = ds.chunk({"y": cy, "x": cx})
    p = create_pyramid(ds, levels=nlevels, method=method, target_chunk_bytes=64)
    dt = p.as_datatree()
    for level, factor in enumerate(p.factors):
        got = dt[str(level)]["data"].values
        if factor == 1:
            np.testing.assert_array_equal(got, ds["data"].values)
            continue
        expected = reference(ds, method, factor, p.fill_values["data"])
        assert got.dtype == expected.dtype
        if expected.dtype.kind == "f" and method in ("mean", "sum"):
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
        else:
            np.testing.assert_array_equal(got, expected)


@requires_dask
def test_to_zarr_unsharded(tmp_path: Any) -> None:
    ds = int_source({"y": 10, "x": 10})
    p = create_pyramid(ds, levels=3, chunks_per_shard=None, target_chunk_bytes=512)
    dt = p.as_datatree()
    dt.to_zarr(tmp_path / "u.zarr", zarr_format=3, consolidated=False, encoding=p.encoding)
    g = zarr.open_group(tmp_path / "u.zarr", mode="r")
    for level, factor in enumerate(p.factors):
        arr = g[f"{level}/data"]
        assert arr.shards is None and arr.chunks == p.encoding[f"/{level}"]["data"]["chunks"]
        assert arr.fill_value == -99
        expected = reference(ds, "mean", factor, -99) if factor > 1 else ds["data"].values
        np.testing.assert_array_equal(arr[...], expected)
