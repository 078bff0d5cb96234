"""Appending time steps: three appends equal one write of the concatenated source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import xproj  # noqa: F401
import zarr
from topozarr_plan.errors import PlanError

from topozarr import create_pyramid

CREATE = {"levels": 3, "target_chunk_bytes": 1024, "chunks_per_shard": 2}


def cube(nt: int = 12, ny: int = 48, nx: int = 64, seed: int = 5) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    temp = rng.normal(280, 10, (nt, ny, nx)).astype("float32")
    temp[rng.random(temp.shape) < 0.15] = np.nan
    temp[:, :16, :16] = np.nan
    count = rng.integers(0, 500, (nt, ny, nx)).astype("int16")
    count[rng.random(count.shape) < 0.1] = -1
    ds = xr.Dataset(
        {
            "temp": (("time", "lat", "lon"), temp, {"units": "K"}),
            "count": (("time", "lat", "lon"), count),
            "weight": (("time",), rng.random(nt)),
        },
        coords={
            "time": pd.date_range("2020-01-01", periods=nt, freq="D"),
            "lat": 90 - (np.arange(ny) + 0.5) * 180 / ny,
            "lon": -180 + (np.arange(nx) + 0.5) * 360 / nx,
        },
    )
    ds["count"].encoding["_FillValue"] = -1
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


def pyramid_of(ds: xr.Dataset) -> Any:
    return create_pyramid(ds, x_dim="lon", y_dim="lat", **CREATE)


def documents(root: Path) -> dict[str, dict[str, Any]]:
    return {
        p.relative_to(root).as_posix(): json.loads(p.read_text())
        for p in sorted(root.rglob("zarr.json"))
    }


def without_shape(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    doc.pop("shape", None)
    if "consolidated_metadata" in doc:
        doc["consolidated_metadata"] = {
            "metadata": {
                k: without_shape(v) for k, v in doc["consolidated_metadata"]["metadata"].items()
            }
        }
    return doc


@pytest.mark.parametrize("io", ["python", "rust"])
def test_three_appends_equal_one_write(tmp_path: Path, io: str) -> None:
    ds = cube()
    whole = tmp_path / "whole.zarr"
    pyramid_of(ds).write(str(whole), io=io)
    grown = tmp_path / "grown.zarr"
    pyramid_of(ds.isel(time=slice(0, 5))).write(str(grown), io=io)
    for part in (slice(5, 9), slice(9, 12)):
        stats = pyramid_of(ds.isel(time=part)).write(
            str(grown), append_dim="time", io=io, stats=True
        )
        assert stats is not None and stats["0"]["path"] == "append"
    a, b = documents(whole), documents(grown)
    assert sorted(a) == sorted(b)
    for key in a:
        assert without_shape(b[key]) == without_shape(a[key]), key
        assert b[key].get("shape") == a[key].get("shape"), key
    za = zarr.open_group(str(whole), mode="r", use_consolidated=False)
    zb = zarr.open_group(str(grown), mode="r", use_consolidated=False)
    for level in range(CREATE["levels"]):
        for name in ("temp", "count", "time", "lat", "lon", "weight"):
            x, y = za[f"{level}/{name}"][...], zb[f"{level}/{name}"][...]
            np.testing.assert_array_equal(y, x, err_msg=f"{level}/{name}")
        xa = xr.open_zarr(str(whole), group=str(level), consolidated=False)
        xb = xr.open_zarr(str(grown), group=str(level), consolidated=False)
        xr.testing.assert_identical(xb.load(), xa.load())
    assert not (grown / ".topozarr-write").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ds: ds.isel(lat=slice(0, 40)), "another grid"),
        (lambda ds: ds.assign(temp=ds.temp.astype("float64")), "float64"),
        (lambda ds: ds.assign_coords(time=ds.time - np.timedelta64(30, "D")), "not after"),
        (lambda ds: ds.drop_vars("count"), "variables"),
        (lambda ds: ds.isel(time=[1, 0]), "do not increase"),
    ],
)
def test_incompatible_appends_are_refused_before_any_write(
    tmp_path: Path, change: Any, message: str
) -> None:
    ds = cube()
    path = tmp_path / "p.zarr"
    pyramid_of(ds.isel(time=slice(0, 6))).write(str(path))
    before = {p: p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()}
    new = change(ds.isel(time=slice(6, 12)))
    with pytest.raises(PlanError, match=message):
        pyramid_of(new).write(str(path), append_dim="time")
    after = {p: p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()}
    assert after == before
