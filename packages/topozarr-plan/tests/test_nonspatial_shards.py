"""Shards along time/band: as long as the spatial shard's spare bytes allow, whatever the
dim's length, and written correctly by both io paths (whole-shard writes at the array's end)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
import zarr
from _plan_testing import make_dataset
from _write_testing import SMALL, with_holes
from topozarr_plan import create_pyramid


def _coarsen_mean(values: np.ndarray, factor: int) -> np.ndarray:
    da = xr.DataArray(values, dims=("time", "y", "x"))
    if factor == 1:
        return values
    with warnings.catch_warnings():  # all-NaN windows: "Mean of empty slice"
        warnings.simplefilter("ignore", RuntimeWarning)
        return da.coarsen(y=factor, x=factor, boundary="trim").mean().values


@pytest.mark.parametrize("io", ["python", "rust"])
@pytest.mark.parametrize("ntime", [1, 3])
def test_time_shard_longer_than_array(tmp_path, io: str, ntime: int) -> None:  # type: ignore[no-untyped-def]
    ds = with_holes(make_dataset(40, 56, extra={"time": ntime}))
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    path = tmp_path / "p.zarr"
    pyramid.write(str(path), io=io)  # type: ignore[arg-type]
    root = zarr.open_group(str(path), mode="r")
    source = ds["data"].values
    for level, factor in enumerate(pyramid.factors):
        arr = root[f"{level}/data"]
        assert arr.shards == pyramid.encoding[f"/{level}"]["data"]["shards"]
        assert arr.shape[0] == ntime
        np.testing.assert_allclose(arr[...], _coarsen_mean(source, factor), rtol=1e-6)
    # The coarsest level's shard holds more steps than the array has (not clipped to it).
    assert root["2/data"].shards[0] > ntime
    back = xr.open_datatree(str(path), engine="zarr")
    np.testing.assert_allclose(back["2"]["data"].values, _coarsen_mean(source, 4), rtol=1e-6)


def test_same_layout_whatever_the_time_length() -> None:
    layouts = []
    for n in (1, 2, 9):
        encoding = create_pyramid(
            make_dataset(40, 56, extra={"time": n}), levels=3, **SMALL
        ).encoding
        layouts.append({k: (v["data"]["chunks"], v["data"]["shards"]) for k, v in encoding.items()})
    assert layouts[0] == layouts[1] == layouts[2]
