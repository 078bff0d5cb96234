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


@pytest.mark.slow
@pytest.mark.parametrize("io", ["python", "rust"])
def test_killed_append_reads_as_the_old_pyramid_and_resumes(tmp_path: Path, io: str) -> None:
    import os
    import random

    from test_resume import Zygote

    ds = cube(nt=12, ny=64, nx=96).drop_vars("count")  # the child decodes int16 + fill to float
    src = tmp_path / "src.zarr"
    ds.drop_vars("spatial_ref").to_zarr(src, zarr_format=3, consolidated=False)
    whole = tmp_path / "whole.zarr"
    pyramid_of(ds).write(str(whole))
    old = tmp_path / "old.zarr"
    pyramid_of(ds.isel(time=slice(0, 7))).write(str(old))
    rng = random.Random(11 if io == "python" else 12)
    zygote = Zygote(dict(os.environ))
    config = {
        "source": str(src),
        "variable": "temp",
        "read_log": str(tmp_path / "reads.log"),
        "read_delay": 0.01,
        "isel": {"time": [7, 12]},
        "create": {"x_dim": "lon", "y_dim": "lat", **CREATE},
        "write": {"append_dim": "time", "io": io, "max_workers": 2, "max_region_bytes": 4096},
    }
    kills = 0
    try:
        for trial in range(4):
            store = tmp_path / f"grown-{trial}.zarr"
            pyramid_of(ds.isel(time=slice(0, 7))).write(str(store))
            config["store"] = str(store)
            config["write"]["resume"] = False
            outcome, _ = zygote.run(config, tmp_path, kill_after=rng.uniform(0.05, 0.6))
            if outcome == "killed":
                kills += 1
                extending = (store / ".topozarr-write" / "extending").exists()
                if not extending:  # before the arrays grow: the old pyramid, untouched
                    assert_same(store, old, consolidated=False)
                assert_same(store, old, consolidated=True)  # what xarray reads
                config["write"]["resume"] = True
                outcome, _ = zygote.run(config, tmp_path, kill_after=None)
            assert outcome == "done"
            assert_same(store, whole, consolidated=False)
            assert not (store / ".topozarr-write").exists()
    finally:
        zygote.close()
    assert kills >= 2


def assert_same(got: Path, want: Path, *, consolidated: bool) -> None:
    for level in range(CREATE["levels"]):
        a = xr.open_zarr(str(want), group=str(level), consolidated=False).load()
        if consolidated:
            b = xr.open_zarr(str(got), group=str(level), consolidated=True).load()
        else:
            b = xr.open_zarr(str(got), group=str(level), consolidated=False).load()
        xr.testing.assert_identical(b, a)


def test_cli_append_and_time_extent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from topozarr.cli import main

    ds = cube(nt=9).drop_vars(["spatial_ref", "count"])
    first, second = tmp_path / "a.nc", tmp_path / "b.nc"
    ds.isel(time=slice(0, 6)).to_netcdf(first, engine="h5netcdf")
    ds.isel(time=slice(6, 9)).to_netcdf(second, engine="h5netcdf")
    out, whole_nc, whole = tmp_path / "out.zarr", tmp_path / "all.nc", tmp_path / "all.zarr"
    ds.to_netcdf(whole_nc, engine="h5netcdf")
    common = ["--crs", "EPSG:4326", "--levels", "3", "--no-progress"]
    assert main(["build", str(first), str(out), *common]) == 0
    assert main(["build", str(second), str(out), "--append-dim", "time", *common]) == 0
    assert main(["build", str(whole_nc), str(whole), *common]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "time    9 steps, 2020-01-01T00:00:00.000000000 .. 2020-01-09T00:00:00" in info
    assert main(["validate", str(out)]) == 0
    assert "time    9 steps" in capsys.readouterr().out
    for level in range(3):
        a = xr.open_zarr(str(whole), group=str(level), consolidated=False).load()
        b = xr.open_zarr(str(out), group=str(level), consolidated=False).load()
        xr.testing.assert_identical(b, a)
    # Appending the same steps again: the time coordinate would not increase.
    assert main(["build", str(second), str(out), "--append-dim", "time", *common]) == 2
    assert "not after the stored last value" in capsys.readouterr().err
