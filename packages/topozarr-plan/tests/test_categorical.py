"""Categorical rasters: method="mode" and per-variable methods through create_pyramid, write and
as_datatree, against an independent numpy reference on the native windows."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr
from _plan_testing import assert_metadata_valid, make_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from topozarr_plan import create_pyramid
from zarr.storage import MemoryStore

SMALL = {"target_chunk_bytes": 256, "chunks_per_shard": 2}  # many tiles, deep accumulators


def window_reference(values: np.ndarray, factor: int, method: str, fill=None) -> np.ndarray:
    """Reduce every factor x factor native window of a 2-D array with numpy (strict trim)."""
    h, w = (values.shape[0] // factor, values.shape[1] // factor)
    win = values[: h * factor, : w * factor].reshape(h, factor, w, factor).transpose(0, 2, 1, 3)
    win = win.reshape(h, w, factor * factor)
    out = np.empty((h, w), values.dtype)
    for i in range(h):
        for j in range(w):
            v = win[i, j]
            bad = np.isnan(v) if v.dtype.kind == "f" else np.zeros(v.shape, bool)
            if fill is not None:
                bad |= v == fill
            valid = v[~bad]
            if valid.size == 0:
                out[i, j] = fill if fill is not None else (np.nan if v.dtype.kind == "f" else 0)
            elif method == "mode":
                uniq, counts = np.unique(valid, return_counts=True)
                out[i, j] = uniq[np.argmax(counts)]  # sorted: ties go to the smallest
            elif method == "max":
                out[i, j] = valid.max()
            elif method == "mean":
                out[i, j] = valid.astype(np.float64).mean()
            else:  # pragma: no cover
                raise AssertionError(method)
    return out


def mixed_dataset(ny: int = 70, nx: int = 90, seed: int = 0) -> xr.Dataset:
    """float temperature (NaN holes), a uint8 land-cover class map and a uint8 0/1 mask."""
    rng = np.random.default_rng(seed)
    ds = make_dataset(ny, nx, name="temp", seed=seed)
    temp = ds["temp"].values.copy()
    temp[rng.random(temp.shape) < 0.2] = np.nan
    ds["temp"] = ds["temp"].copy(data=temp)
    # Blocky classes with noise: real majorities and plenty of ties.
    classes = np.repeat(np.repeat(rng.integers(0, 6, (ny // 5 + 1, nx // 5 + 1)), 5, 0), 5, 1)
    classes = classes[:ny, :nx].astype("uint8")
    noise = rng.random(classes.shape) < 0.3
    classes[noise] = rng.integers(0, 6, int(noise.sum()))
    ds["landcover"] = (("y", "x"), classes)
    ds["mask"] = (("y", "x"), (rng.random((ny, nx)) < 0.1).astype("uint8"))
    return ds


METHODS = {"temp": "mean", "landcover": "mode", "mask": "max"}


def check_levels(pyramid, store, source: xr.Dataset, methods, fills=None) -> None:
    root = zarr.open_group(store, mode="r")
    fills = fills or {}
    for level, factor in enumerate(pyramid.factors):
        for name, method in methods.items():
            got = root[f"{level}/{name}"][...]
            want = (
                source[name].values
                if factor == 1
                else window_reference(source[name].values, factor, method, fills.get(name))
            )
            assert got.dtype == want.dtype, (level, name)
            if got.dtype.kind == "f":
                np.testing.assert_allclose(got, want, rtol=2e-6, equal_nan=True)
            else:
                np.testing.assert_array_equal(got, want, err_msg=f"{level}/{name}")


@pytest.mark.parametrize("factors", [[1, 2, 4, 8, 16], [1, 4, 32], [1, 3, 9]])
def test_mixed_dataset_each_variable_its_own_method(factors):
    ds = mixed_dataset()
    pyramid = create_pyramid(ds, factors=factors, method=METHODS, **SMALL)
    assert pyramid.method == METHODS
    store = MemoryStore()
    pyramid.write(store)
    check_levels(pyramid, store, ds, METHODS)
    # as_datatree gives the same values and dtypes as write.
    tree = pyramid.as_datatree()
    written = xr.open_datatree(store, engine="zarr", zarr_format=3)
    for level in range(len(factors)):
        for name in METHODS:
            a = written[str(level)].to_dataset()[name].values
            b = tree[str(level)].to_dataset()[name].values
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    assert_metadata_valid(pyramid)


def test_metadata_records_the_shared_method_and_each_differing_one():
    ds = mixed_dataset(32, 32)
    methods = {"landcover": "mode", "mask": "mode"}  # temp: mean by default
    pyramid = create_pyramid(ds, levels=3, method=methods, **SMALL)
    assert pyramid.method == methods
    assert pyramid.method_for("temp") == "mean"
    ms = pyramid.attrs["multiscales"]
    assert ms["resampling_method"] == "mode"  # two of three spatial variables
    assert [e.get("resampling_method") for e in ms["layout"][1:]] == ["mode", "mode"]
    store = MemoryStore()
    pyramid.write(store)
    root = zarr.open_group(store, mode="r")
    for level in (1, 2):
        assert root[f"{level}/temp"].attrs["resampling_method"] == "mean"
        assert "resampling_method" not in root[f"{level}/landcover"].attrs
        assert "resampling_method" not in root[f"{level}/mask"].attrs
    assert "resampling_method" not in root["0/temp"].attrs
    tree = pyramid.as_datatree()
    assert tree["1"].to_dataset()["temp"].attrs["resampling_method"] == "mean"
    assert_metadata_valid(pyramid)


def test_string_method_stays_a_string():
    pyramid = create_pyramid(mixed_dataset(16, 16), levels=2, method="mode")
    assert pyramid.method == "mode"
    assert pyramid.attrs["multiscales"]["resampling_method"] == "mode"


def test_unknown_variable_in_the_dict():
    with pytest.raises(ValueError, match="landcovr"):
        create_pyramid(mixed_dataset(16, 16), levels=2, method={"landcovr": "mode"})


def test_unknown_method():
    with pytest.raises(ValueError, match="'mode'") as err:
        create_pyramid(mixed_dataset(16, 16), levels=2, method={"landcover": "majority"})
    assert "majority" in str(err.value) and "'nearest'" in str(err.value)
    with pytest.raises(ValueError, match="'mode'"):
        create_pyramid(mixed_dataset(16, 16), levels=2, method="majority")


@st.composite
def categorical_cases(draw):
    kind = draw(st.sampled_from(["uint8", "int16", "float32"]))
    ny, nx = draw(st.integers(8, 60)), draw(st.integers(8, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    classes = draw(st.integers(1, 5))
    ds = make_dataset(ny, nx, name="cls")
    fill = None
    if kind == "uint8":
        values = rng.integers(0, classes, (ny, nx)).astype("uint8")
    elif kind == "int16":
        fill = -1
        values = rng.integers(0, classes, (ny, nx)).astype("int16") * 7
        values[rng.random((ny, nx)) < 0.3] = fill
    else:
        values = (rng.integers(0, classes, (ny, nx)) / 4).astype("float32")
        values[rng.random((ny, nx)) < 0.3] = np.nan
    ds["cls"] = ds["cls"].copy(data=values)
    if fill is not None:
        ds["cls"].encoding["_FillValue"] = fill
    dense = draw(st.booleans())
    top = min(ny, nx)
    if dense:
        factors = [2**k for k in range(int(np.log2(top)) + 1)][: draw(st.integers(2, 6))]
    else:
        step = draw(st.integers(3, 4))
        factors = [step**k for k in range(int(np.log(top) / np.log(step)) + 1)][:3]
        if len(factors) < 2:
            factors = [1, 2]
    return ds, factors, fill


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(categorical_cases())
def test_write_mode_every_level_property(case):
    ds, factors, fill = case
    pyramid = create_pyramid(ds, factors=factors, method={"cls": "mode"}, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    check_levels(pyramid, store, ds, {"cls": "mode"}, {"cls": fill})


@pytest.mark.parametrize("how", ["level_by_level", "subset"])
def test_mode_exact_on_the_other_write_paths(how):
    ds = mixed_dataset(64, 64)
    pyramid = create_pyramid(ds, levels=4, method=METHODS, **SMALL)
    store = MemoryStore()
    if how == "level_by_level":
        pyramid.write(store, keep_levels_in_memory=False)
    else:
        pyramid.write(store)
        pyramid.write(store, mode="a", levels=[2, 3])
    check_levels(pyramid, store, ds, METHODS)
