"""Drive the `topozarr` command as a user would: through a subprocess of the installed script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

TOPOZARR = str(Path(sys.executable).parent / "topozarr")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TOPOZARR, *args], capture_output=True, text=True, cwd=cwd, timeout=300, check=False
    )


def _grid(rows: int, cols: int, *, descending: bool = True) -> tuple[np.ndarray, np.ndarray]:
    cell = 1.0
    y = 50.0 - cell * (np.arange(rows) + 0.5)
    x = 10.0 + cell * (np.arange(cols) + 0.5)
    return (y if descending else y[::-1]), x


@pytest.fixture
def netcdf_source(tmp_path: Path) -> Path:
    """A CF NetCDF file whose CRS is declared through grid_mapping / crs_wkt only."""
    import pyproj

    rng = np.random.default_rng(3)
    lat, lon = _grid(40, 60)
    data = rng.normal(100, 20, (40, 60)).astype(np.float32)
    data[rng.random(data.shape) < 0.2] = np.nan
    ds = xr.Dataset(
        {
            "height": (("lat", "lon"), data, {"grid_mapping": "crs"}),
            "crs": ((), 0, {"crs_wkt": pyproj.CRS("EPSG:4326").to_wkt()}),
        },
        coords={"lat": lat, "lon": lon},
    )
    path = tmp_path / "src.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def test_demo_then_info_then_validate(tmp_path: Path) -> None:
    demo = run("demo", "demo.zarr", "--size", "64", "--levels", "4", "--no-progress", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "levels" in demo.stdout and "MiB/s" in demo.stdout

    info = run("info", "demo.zarr", "--json", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["crs"] == "EPSG:4326"
    shapes = [tuple(level["shape"]) for level in summary["levels"]]
    assert shapes[0] == (64, 128)
    assert all(s == (64 // 2**k, 128 // 2**k) for k, s in enumerate(shapes))
    table = run("info", "demo.zarr", cwd=tmp_path)
    assert table.returncode == 0 and "elevation" in table.stdout and "temperature" in table.stdout

    check = run("validate", "demo.zarr", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "valid" in check.stdout


def test_demo_values_match_an_independent_reference(tmp_path: Path) -> None:
    from topozarr.demo import demo_dataset

    assert (
        run(
            "demo", "d.zarr", "--size", "32", "--levels", "3", "--no-progress", cwd=tmp_path
        ).returncode
        == 0
    )
    source = demo_dataset(32)
    level1 = xr.open_zarr(tmp_path / "d.zarr", group="1", consolidated=False)
    want = source.elevation.coarsen(lat=2, lon=2, boundary="trim").mean()
    np.testing.assert_allclose(level1.elevation.values, want.values, rtol=1e-6)


@pytest.mark.parametrize("io", ["python", "rust"])
def test_build_from_netcdf_with_cf_crs(tmp_path: Path, netcdf_source: Path, io: str) -> None:
    out = tmp_path / "out.zarr"
    result = run(
        "build", str(netcdf_source), str(out), "--levels", "3", "--no-progress", "--io", io
    )
    assert result.returncode == 0, result.stderr
    source = xr.open_dataset(netcdf_source, engine="h5netcdf")
    for level, factor in ((1, 2), (2, 4)):
        got = xr.open_zarr(out, group=str(level), consolidated=False).height.values
        want = source.height.coarsen(lat=factor, lon=factor, boundary="trim").mean().values
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert zarr.open_group(out, mode="r").attrs["proj:code"] == "EPSG:4326"
    assert run("validate", str(out)).returncode == 0


def test_build_stats_are_json_on_stdout(tmp_path: Path, netcdf_source: Path) -> None:
    out = tmp_path / "s.zarr"
    result = run(
        "build", str(netcdf_source), str(out), "--factors", "1,4", "--stats", "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["seconds"] > 0
    assert zarr.open_group(out, mode="r")["1/height"].shape == (10, 15)


def test_build_from_geotiff(tmp_path: Path) -> None:
    rioxarray = pytest.importorskip("rioxarray")  # the `geotiff` extra; installed in the dev group
    del rioxarray
    rows, cols = 32, 48
    x = 500000.0 + 30.0 * (np.arange(cols) + 0.5)
    y = 4600000.0 - 30.0 * (np.arange(rows) + 0.5)
    data = np.arange(rows * cols, dtype=np.int16).reshape(rows, cols)
    da = xr.DataArray(data, dims=("y", "x"), coords={"y": y, "x": x}, name="dem")
    da = da.rio.write_crs("EPSG:32633")
    tif = tmp_path / "dem.tif"
    da.rio.to_raster(tif)
    out = tmp_path / "tif.zarr"
    result = run("build", str(tif), str(out), "--levels", "2", "--method", "max", "--no-progress")
    assert result.returncode == 0, result.stderr
    root = zarr.open_group(out, mode="r")
    assert root.attrs["proj:code"] == "EPSG:32633"
    (name,) = [n for n, _ in root["1"].arrays() if n not in ("x", "y", "spatial_ref")]
    got = np.asarray(root[f"1/{name}"][:])
    want = data.reshape(16, 2, 24, 2).max(axis=(1, 3))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["build", "missing.nc", "out.zarr"], "does not exist"),
        (["build", "{src}", "out.zarr", "--variables", "nope"], "unknown variable"),
        (["build", "{src}", "out.zarr", "--factors", "1,3,4"], "3"),
        (["build", "{src}", "out.zarr", "--x-dim", "easting"], "easting"),
        (["build", "{nocrs}", "out.zarr"], "--crs"),
        (["build", "{src}", "out.zarr", "--chunks-per-shard", "3"], "3"),
        (["info", "nowhere.zarr"], "not a Zarr group"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(
    tmp_path: Path, netcdf_source: Path, args: list[str], needle: str
) -> None:
    nocrs = tmp_path / "nocrs.nc"
    lat, lon = _grid(8, 8)
    xr.Dataset(
        {"v": (("lat", "lon"), np.ones((8, 8), np.float32))}, coords={"lat": lat, "lon": lon}
    ).to_netcdf(nocrs, engine="h5netcdf")
    argv = [a.format(src=netcdf_source, nocrs=nocrs) for a in args]
    result = run(*argv, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("topozarr: error:") and needle in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "out.zarr", "--levels", "0"],
        ["demo", "out.zarr", "--size", "0"],
        ["build", "{src}", "out.zarr", "--levels", "0"],
        ["build", "{src}", "out.zarr", "--levels", "-2"],
    ],
)
def test_zero_or_negative_counts_are_refused_not_taken_as_auto(
    tmp_path: Path, netcdf_source: Path, args: list[str]
) -> None:
    # 0 once fell through `or` to the automatic level count and wrote a pyramid.
    result = run(*[a.format(src=netcdf_source) for a in args], cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert f"argument {args[-2]}" in last and f"{args[-1]!r}" in last and ">= 1" in last
    assert not (tmp_path / "out.zarr").exists()


@pytest.mark.parametrize("option", ["--factors", "--levels-only"])
@pytest.mark.parametrize("value", ["", " , ", "1,x"])
def test_integer_lists_must_list_integers(
    tmp_path: Path, netcdf_source: Path, option: str, value: str
) -> None:
    # An empty --factors once fell back to the automatic levels and wrote a pyramid.
    result = run(
        "build", str(netcdf_source), "out.zarr", "--mode", "a", option, value, cwd=tmp_path
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert f"argument {option}" in last and f"{value!r}" in last
    assert not (tmp_path / "out.zarr").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["demo", "out.zarr", "--levels", "0"], "'0'"),
        (["build", "src.nc"], "dst"),
        (["demo", "--bogus"], "--bogus"),
        ([], "command"),
    ],
)
def test_option_errors_are_one_line_with_exit_code_2(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    # argparse's own errors (a bad or missing option) read like the command's other errors.
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("topozarr") and "error:" in lines[0] and needle in lines[0]
    assert "--help" in lines[0] and "usage:" not in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run("--debug", "build", "missing.nc", "out.zarr", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_validate_reports_a_corrupted_store(tmp_path: Path) -> None:
    assert (
        run(
            "demo", "bad.zarr", "--size", "32", "--levels", "3", "--no-progress", cwd=tmp_path
        ).returncode
        == 0
    )
    root = zarr.open_group(tmp_path / "bad.zarr", mode="r+")
    attrs = dict(root.attrs)
    attrs["multiscales"]["layout"][1]["transform"]["scale"] = [3.0, 3.0]
    root.attrs.put(attrs)
    result = run("validate", "bad.zarr", cwd=tmp_path)
    assert result.returncode == 1
    assert "scale" in result.stdout


def test_validate_catches_wrong_values(tmp_path: Path) -> None:
    assert (
        run(
            "demo", "v.zarr", "--size", "32", "--levels", "3", "--no-progress", cwd=tmp_path
        ).returncode
        == 0
    )
    arr = zarr.open_array(tmp_path / "v.zarr" / "1" / "temperature", mode="r+")
    arr[...] = np.asarray(arr[...]) + 1.0
    result = run("validate", "v.zarr", "--samples", "4", cwd=tmp_path)
    assert result.returncode == 1
    assert "temperature" in result.stdout


def test_build_with_a_method_per_variable(tmp_path: Path) -> None:
    import pyproj

    rng = np.random.default_rng(5)
    lat, lon = _grid(48, 64)
    temp = rng.normal(280, 5, (48, 64)).astype(np.float32)
    landcover = rng.integers(0, 4, (48, 64)).astype(np.uint8)
    ds = xr.Dataset(
        {
            "temp": (("lat", "lon"), temp, {"grid_mapping": "crs"}),
            "landcover": (("lat", "lon"), landcover, {"grid_mapping": "crs"}),
            "mask": (("lat", "lon"), (landcover == 0).astype(np.uint8), {"grid_mapping": "crs"}),
            "crs": ((), 0, {"crs_wkt": pyproj.CRS("EPSG:4326").to_wkt()}),
        },
        coords={"lat": lat, "lon": lon},
    )
    src = tmp_path / "src.nc"
    ds.to_netcdf(src, engine="h5netcdf")
    out = tmp_path / "out.zarr"
    result = run(
        "build",
        str(src),
        str(out),
        "--levels",
        "3",
        "--method",
        "landcover=mode,temp=mean,mask=max",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    for level, factor in ((1, 2), (2, 4)):
        got = xr.open_zarr(out, group=str(level), consolidated=False)
        want_temp = ds.temp.coarsen(lat=factor, lon=factor, boundary="trim").mean().values
        np.testing.assert_allclose(got.temp.values, want_temp, rtol=1e-6)
        win = landcover.reshape(48 // factor, factor, 64 // factor, factor).transpose(0, 2, 1, 3)
        counts = np.stack([(win == c).sum(axis=(2, 3)) for c in range(4)])
        np.testing.assert_array_equal(got.landcover.values, counts.argmax(axis=0))
        assert got.landcover.dtype == np.uint8
        np.testing.assert_array_equal(got.mask.values, counts[0] > 0)
    attrs = zarr.open_group(out, mode="r")["1/landcover"].attrs
    assert attrs["resampling_method"] == "mode"
    check = run("validate", str(out))
    assert check.returncode == 0, check.stdout + check.stderr
    bad = run("build", str(src), str(tmp_path / "bad.zarr"), "--method", "landcovr=mode")
    assert bad.returncode == 2 and "landcovr" in bad.stderr
