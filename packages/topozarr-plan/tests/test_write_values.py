"""Pyramid.write values: every level against xarray coarsen(boundary="trim") of the source
(methods, dtypes and fills, odd sizes, extra dims, level subsets)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr
from _plan_testing import make_dataset
from _write_testing import SMALL, assert_levels, int_with_fill, is_published, reference, with_holes
from topozarr_plan import create_pyramid
from topozarr_plan.level_layout import non_spatial_encoding
from zarr.storage import MemoryStore


def test_float_mean_with_nan_memory_store():
    ds = with_holes(make_dataset(100, 120))
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    store = MemoryStore()
    assert pyramid.write(store, max_workers=2) is None
    assert_levels(pyramid, store)
    root = zarr.open_group(store, mode="r")
    assert dict(root.attrs) == pyramid.attrs or set(pyramid.attrs) <= set(root.attrs)
    arr = root["1/data"]
    assert np.isnan(arr.fill_value)
    assert arr.metadata.dimension_names == ("y", "x")
    assert tuple(arr.chunks) == tuple(pyramid.encoding["/1"]["data"]["chunks"])
    assert tuple(arr.shards) == tuple(pyramid.encoding["/1"]["data"]["shards"])
    assert root.metadata.consolidated_metadata is not None
    # Level group attrs and coordinates come from the templates.
    level1 = xr.open_zarr(store, group="1", zarr_format=3)
    np.testing.assert_array_equal(level1["x"].values, pyramid.level_templates[1]["x"].values)
    for key, value in pyramid.level_templates[1].attrs.items():
        assert level1.attrs[key] == value


def test_int16_fill_mean():
    ds = int_with_fill(make_dataset(64, 80), "int16", -9999)
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    assert_levels(pyramid, store, fill=-9999)
    assert zarr.open_group(store, mode="r")["2/data"].fill_value == -9999


def test_uint8_max():
    ds = make_dataset(64, 64, dtype="uint8")
    pyramid = create_pyramid(ds, levels=5, method="max", **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    assert_levels(pyramid, store, method="max")


@pytest.mark.parametrize("dtype", ["float32", "int16"])
def test_sum(dtype):
    ds = make_dataset(64, 64)
    ds = with_holes(ds) if dtype == "float32" else int_with_fill(ds, dtype, -1)
    pyramid = create_pyramid(ds, levels=4, method="sum", **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    assert_levels(pyramid, store, method="sum", fill=None if dtype == "float32" else -1)


def test_min():
    ds = with_holes(make_dataset(48, 80))
    pyramid = create_pyramid(ds, levels=3, method="min", **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    assert_levels(pyramid, store, method="min")


@pytest.mark.parametrize("factors", [[1, 4, 16], [1, 3, 9]])
def test_sparse_factors(factors):
    ds = with_holes(make_dataset(90, 110))
    pyramid = create_pyramid(ds, factors=factors, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    assert_levels(pyramid, store)


def test_time_cube():
    ds = with_holes(make_dataset(40, 56, extra={"time": 3}))
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    root = zarr.open_group(store, mode="r")
    for level, factor in enumerate(pyramid.factors):
        expected = reference(ds, "data", factor, "mean")
        np.testing.assert_allclose(root[f"{level}/data"][...], expected, rtol=2e-6, equal_nan=True)
    assert "time" in zarr.open_group(store, path="1", mode="r")


def test_odd_sizes():
    ds = with_holes(make_dataset(53, 77))
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    assert_levels(pyramid, store)


def test_write_matches_as_datatree():
    ds = with_holes(make_dataset(64, 72))
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    tree = pyramid.as_datatree()
    written = xr.open_datatree(store, engine="zarr", zarr_format=3)
    for level in range(3):
        a = written[str(level)].to_dataset()["data"].values
        b = tree[str(level)].to_dataset()["data"].values
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=2e-6, equal_nan=True)


def test_float_with_numeric_fill_value():
    ds = with_holes(make_dataset(48, 64))
    values = ds["data"].values.copy()
    values[40:, 40:] = -9999.0
    ds["data"] = ds["data"].copy(data=values)
    ds["data"].encoding["_FillValue"] = -9999.0
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    root = zarr.open_group(store, mode="r")
    assert root["1/data"].fill_value == -9999.0
    for level, factor in enumerate(pyramid.factors):
        da = ds["data"].where(ds["data"] != -9999.0)
        if factor > 1:
            da = da.coarsen({"y": factor, "x": factor}, boundary="trim").mean()
        # Windows with no valid cell hold the fill value, NaN holes included.
        expected = np.where(np.isnan(da.values), -9999.0, da.values) if factor > 1 else values
        np.testing.assert_allclose(root[f"{level}/data"][...], expected, rtol=2e-6, equal_nan=True)


@pytest.mark.parametrize("kind", ["float", "int"])
def test_layout_matches_xarray_to_zarr(kind):
    """The spatial arrays' metadata is what xarray's own to_zarr would write."""
    ds = make_dataset(40, 48, extra={"time": 2})
    ds["elev"] = ds["data"].isel(time=0).astype("int16")
    ds["elev"].encoding["_FillValue"] = -9999
    if kind == "int":
        ds = ds.drop_vars("data")
    pyramid = create_pyramid(ds, levels=2, **SMALL)
    ours = MemoryStore()
    pyramid.write(ours)
    for level in (0, 1):
        template = pyramid.level_templates[level]
        enc = {}
        for name in pyramid.encoding["/0"]:
            e = dict(pyramid.encoding[f"/{level}"][name])
            fill = pyramid.fill_values[name]
            e.update(fill_value=fill, _FillValue=fill)
            enc[name] = e
        # Coordinates along time get a fixed chunk length (appends keep the layout).
        enc.update(non_spatial_encoding(template.drop_vars(list(enc)), ("x", "y")))
        theirs = MemoryStore()
        template.to_zarr(
            theirs, group=str(level), compute=False, consolidated=False, zarr_format=3, encoding=enc
        )
        g_ours = zarr.open_group(ours, path=str(level), mode="r")
        g_theirs = zarr.open_group(theirs, path=str(level), mode="r")
        assert dict(g_ours.attrs) == dict(g_theirs.attrs)
        assert sorted(g_ours.array_keys()) == sorted(g_theirs.array_keys())
        for name in g_theirs.array_keys():
            a, b = g_ours[name], g_theirs[name]
            assert dict(a.attrs) == dict(b.attrs), name
            assert a.metadata.dimension_names == b.metadata.dimension_names
            assert (a.shape, a.dtype, a.chunks, a.shards) == (b.shape, b.dtype, b.chunks, b.shards)
            assert a.fill_value == b.fill_value or (
                np.isnan(a.fill_value) and np.isnan(b.fill_value)
            )
        reopened = xr.open_zarr(ours, group=str(level), zarr_format=3)
        assert set(reopened.coords) == set(template.coords)


def test_dask_source_with_lazy_non_spatial_variables():
    pytest.importorskip("dask")
    ds = with_holes(make_dataset(48, 64, extra={"time": 2}))
    ds["time_weight"] = ("time", np.array([0.25, 0.75]))
    ds = ds.chunk({"time": 1, "y": 16, "x": 32})
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    for level, factor in enumerate(pyramid.factors):
        got = xr.open_zarr(store, group=str(level), zarr_format=3)
        np.testing.assert_array_equal(got["time_weight"].values, [0.25, 0.75])
        expected = reference(ds.compute(), "data", factor, "mean")
        np.testing.assert_allclose(got["data"].values, expected, rtol=2e-6, equal_nan=True)


def test_transposed_dims_and_extra_trailing_dim():
    ds = with_holes(make_dataset(40, 56, extra={"band": 2}))
    ds = ds.transpose("x", "band", "y")
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    root = zarr.open_group(store, mode="r")
    for level, factor in enumerate(pyramid.factors):
        expected = reference(ds, "data", factor, "mean")
        got = root[f"{level}/data"]
        assert got.metadata.dimension_names == ("x", "band", "y")
        np.testing.assert_allclose(got[...], expected, rtol=2e-6, equal_nan=True)


EXACT_CASES = [
    pytest.param("float32", None, id="float32-mean-nan"),
    pytest.param("int16", -9999, id="int16-mean-fill"),
]


def _exact_case(dtype, fill):
    # Odd sizes (trimmed edges), holes everywhere and a whole missing block: a mean of means
    # (or an integer mean rounded per level) differs from the reference on such data.
    ds = with_holes(make_dataset(150, 110), frac=0.35)
    if fill is not None:
        values = ds["data"].values
        ds = int_with_fill(ds.fillna(fill), dtype, fill, frac=0.0)
        assert np.isnan(values).any()
    return ds


@pytest.mark.parametrize(("dtype", "fill"), EXACT_CASES)
def test_level_subset_rewrite_is_exact(dtype, fill):
    ds = _exact_case(dtype, fill)
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    for level in (1, 3):
        zarr.open_group(store, mode="r+")[f"{level}/data"][...] = 0  # damage both
    stats = pyramid.write(store, mode="a", levels=[1, 3], stats=True)
    assert stats["3"]["path"] == "single-pass"
    assert_levels(pyramid, store, fill=fill)
    assert is_published(store)


@pytest.mark.parametrize(("dtype", "fill"), EXACT_CASES)
def test_level_subset_without_other_levels_is_exact(dtype, fill):
    ds = _exact_case(dtype, fill)
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    store = MemoryStore()
    stats = pyramid.write(store, levels=[2], stats=True)  # computed from the source
    # Level 0 is read but not written: its reads count for level 2.
    assert stats["2"]["bytes_read"] == ds["data"].nbytes and stats["2"]["read_s"] > 0
    root = zarr.open_group(store, mode="r")
    expected = reference(ds, "data", pyramid.factors[2], "mean", fill)
    got = root["2/data"][...]
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=2e-6, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, expected)
    assert "0" not in root and not is_published(store)


@pytest.mark.parametrize(("dtype", "fill"), EXACT_CASES)
def test_keep_levels_in_memory_false_is_exact(dtype, fill):
    ds = _exact_case(dtype, fill)
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    store = MemoryStore()
    stats = pyramid.write(store, keep_levels_in_memory=False, stats=True)
    assert stats["2"]["path"] == "level-by-level"
    assert_levels(pyramid, store, fill=fill)
    assert is_published(store)


@pytest.mark.parametrize(("workers", "split"), [(1, True), (4, False)])
def test_the_kernel_splits_tiles_only_when_the_write_runs_fewer_tile_threads_than_cpus(
    monkeypatch, workers, split
):
    # On a 4-CPU machine: one tile thread leaves cores for the kernel to split each tile over;
    # four keep every core busy already. Decided by the write's own thread count.
    from topozarr_engine import kernel, pyramid_writer

    monkeypatch.setattr(pyramid_writer, "cpu_count", lambda: 4)
    seen: list[bool] = []
    tile = kernel.pyramid_tile

    def spy(*args, **kwargs):
        seen.append(kwargs["parallel"])
        return tile(*args, **kwargs)

    monkeypatch.setattr(kernel, "pyramid_tile", spy)
    ds = with_holes(make_dataset(100, 120))
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    store = MemoryStore()
    pyramid.write(store, max_workers=workers)
    assert_levels(pyramid, store)
    assert seen and set(seen) == {split}
