"""The native source reader: used only when it reads what xarray reads, and a pyramid written
through it equals one written through xarray (every level read back with zarr-python)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import xarray as xr
import zarr
from _plan_testing import make_dataset, requires_dask
from topozarr_plan import create_pyramid
from topozarr_plan import passes as passes_module
from topozarr_plan.source_reader import ENV_VAR, NativeSource, native_array, native_reader

SMALL = {"target_chunk_bytes": 1024, "chunks_per_shard": 2}


def _on_disk(ds: xr.Dataset, path, chunks: dict[str, int], **to_zarr) -> xr.Dataset:
    """``ds`` stored as Zarr and opened lazily without dask, as ``xr.open_zarr`` users do."""
    name = next(iter(ds.data_vars))
    enc = {name: {"chunks": tuple(chunks.get(d, n) for d, n in ds[name].sizes.items())}}
    enc[name].update(to_zarr.pop("encoding", {}))
    ds.drop_vars("spatial_ref").to_zarr(path, encoding=enc, consolidated=False, **to_zarr)
    opened = xr.open_zarr(path, chunks=None, consolidated=False)
    return opened.proj.assign_crs(spatial_ref="EPSG:4326")


def _with_holes(ds: xr.Dataset) -> xr.Dataset:
    values = ds["data"].values.copy()
    values[np.random.default_rng(1).random(values.shape) < 0.2] = np.nan
    values[..., :32, :32] = np.nan  # whole source chunks of NaN: never stored
    return ds.copy(data={"data": values})


@pytest.mark.parametrize("zarr_format", [3, 2])
@pytest.mark.parametrize(
    ("dtype", "extra"),
    [("float32", {}), ("int16", {}), ("uint8", {}), ("float64", {"time": 3})],
)
def test_reads_what_xarray_reads(tmp_path, dtype, extra, zarr_format):
    ds = make_dataset(45, 61, dtype=dtype, extra=extra)
    if dtype == "float32":
        ds = _with_holes(ds)
    src = _on_disk(ds, tmp_path / "s.zarr", {"y": 16, "x": 16, "time": 2}, zarr_format=zarr_format)
    var = src["data"].variable
    reader = native_reader(var)
    assert isinstance(reader, NativeSource)
    assert (reader.shape, reader.dtype, reader.ndim) == (var.shape, var.dtype, var.ndim)
    across = tuple(slice(n // 3, n - 1) for n in var.shape)  # crosses chunk edges
    for key in [tuple(slice(0, n) for n in var.shape), across]:
        got = reader[key]
        np.testing.assert_array_equal(got, var[key].values)
        np.testing.assert_array_equal(got, zarr.open_array(tmp_path / "s.zarr", path="data")[key])
    again = pickle.loads(pickle.dumps(reader))
    np.testing.assert_array_equal(again[across], var[across].values)


def _zarr_var(tmp_path, **kwargs) -> xr.Variable:
    ds = make_dataset(32, 32, dtype=kwargs.pop("dtype", "float32"))
    return _on_disk(ds, tmp_path / "s.zarr", {"y": 16, "x": 16}, **kwargs)["data"].variable


@requires_dask
def test_not_for_a_dask_backed_variable(tmp_path):
    ds = _on_disk(make_dataset(32, 32), tmp_path / "s.zarr", {"y": 16, "x": 16})
    assert native_reader(ds.chunk({"y": 16})["data"].variable) is None


def test_not_for_an_in_memory_variable(tmp_path):
    assert native_reader(make_dataset(32, 32)["data"].variable) is None
    assert native_reader(_zarr_var(tmp_path).load()) is None


def test_not_for_scale_factor_or_add_offset(tmp_path):
    var = _zarr_var(tmp_path, encoding={"scale_factor": 0.5, "add_offset": 1.0})
    assert native_reader(var) is None


def test_not_for_an_int_masked_by_its_fill_value(tmp_path):
    var = _zarr_var(tmp_path, dtype="int16", encoding={"_FillValue": -9})
    assert var.dtype.kind == "f"  # xarray masks it into floats
    assert native_reader(var) is None


def test_not_for_a_float_masked_by_a_number(tmp_path):
    var = _zarr_var(tmp_path, encoding={"_FillValue": np.float32(-9999.0)})
    assert native_reader(var) is None


def test_not_for_a_selection_or_a_flip(tmp_path):
    var = _zarr_var(tmp_path)
    assert native_reader(var) is not None
    assert native_reader(var.isel(y=slice(1, None))) is None
    assert native_reader(var.isel(y=slice(None, None, -1))) is None
    assert native_reader(var.transpose("x", "y")) is None


def test_disabled_by_the_environment(tmp_path, monkeypatch):
    var = _zarr_var(tmp_path)
    monkeypatch.setenv(ENV_VAR, "0")
    assert native_reader(var) is None


def _spy(monkeypatch) -> list[object]:
    """Record what the writer's passes got from ``native_reader``."""
    seen: list[object] = []

    def spy(var):
        reader = native_reader(var)
        seen.append(reader)
        return reader

    monkeypatch.setattr(passes_module, "native_reader", spy)
    return seen


@pytest.mark.parametrize("io", ["python", "rust"])
@pytest.mark.parametrize(("dtype", "method"), [("float32", "mean"), ("int16", "max")])
def test_native_write_equals_the_xarray_write(tmp_path, monkeypatch, io, dtype, method):
    ds = make_dataset(75, 93, dtype=dtype, extra={"time": 2})
    if dtype == "float32":
        ds = _with_holes(ds)
    src = _on_disk(ds, tmp_path / "s.zarr", {"y": 32, "x": 32, "time": 1})
    pyramid = create_pyramid(src, levels=4, method=method, **SMALL)
    seen = _spy(monkeypatch)
    stats = pyramid.write(tmp_path / "native.zarr", io=io, stats=True)
    assert seen and all(isinstance(r, NativeSource) for r in seen)
    assert stats["0"]["read_s"] > 0  # the read is still timed
    monkeypatch.setenv(ENV_VAR, "0")
    seen.clear()
    pyramid.write(tmp_path / "xarray.zarr", io=io)
    assert seen and all(r is None for r in seen)
    native = zarr.open_group(tmp_path / "native.zarr", mode="r")
    plain = zarr.open_group(tmp_path / "xarray.zarr", mode="r")
    for level in range(len(pyramid.factors)):
        a, b = native[f"{level}/data"], plain[f"{level}/data"]
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a[...], b[...], err_msg=f"level {level}")


def test_an_array_in_a_group(tmp_path):
    ds = make_dataset(40, 40).drop_vars("spatial_ref")
    ds.to_zarr(tmp_path / "s.zarr", group="g/h", consolidated=False)
    var = xr.open_zarr(tmp_path / "s.zarr", group="g/h", chunks=None, consolidated=False)["data"]
    reader = native_reader(var.variable)
    assert reader is not None
    np.testing.assert_array_equal(reader[(slice(3, 37), slice(0, 40))], var[3:37].values)


def test_not_for_a_memory_store():
    store = zarr.storage.MemoryStore()
    make_dataset(32, 32).drop_vars("spatial_ref").to_zarr(store, consolidated=False)
    var = xr.open_zarr(store, chunks=None, consolidated=False)["data"].variable
    assert native_reader(var) is None


def test_a_stored_sharded_level_reads_what_zarr_python_reads(tmp_path, monkeypatch):
    # The cluster's stage 2 reads the level 0 stage 1 stored: sharded, with absent shards.
    store = zarr.storage.LocalStore(tmp_path / "p.zarr")
    root = zarr.create_group(store)
    level = root.create_array(
        "0/data", shape=(70, 90), chunks=(8, 16), shards=(16, 32), dtype="float32",
        fill_value=np.nan,
    )  # fmt: skip
    values = np.random.default_rng(5).normal(size=(70, 90)).astype(np.float32)
    values[values > 1.5] = np.nan
    values[:16, :32] = np.nan  # an all-fill shard, not stored
    level[...] = values
    reader = native_array(zarr.open_array(store, path="0/data", mode="r"))
    assert reader is not None
    np.testing.assert_array_equal(reader[(slice(0, 70), slice(0, 90))], level[...])
    np.testing.assert_array_equal(reader[(slice(5, 41), slice(17, 89))], level[5:41, 17:89])
    memory = zarr.create_array(zarr.storage.MemoryStore(), shape=(4, 4), dtype="f4")
    assert native_array(memory) is None
    monkeypatch.setenv(ENV_VAR, "0")
    assert native_array(zarr.open_array(store, path="0/data", mode="r")) is None
