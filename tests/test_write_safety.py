"""Writes never destroy what is not ours, check everything before the first byte, and fail in
the CLI with one line.

- ``mode="w"`` (and ``"w-"``) refuse a target that holds anything but a Zarr store, before any
  I/O, through the API and the CLI; a previous pyramid is still replaced.
- A CF NetCDF with numpy-typed attributes builds, and the attributes round-trip (read back with
  zarr-python and xarray, compared with the source as xarray reads it).
- A storage failure in the middle of a CLI write is one stderr line and exit code 2.
"""

from __future__ import annotations

import errno
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import obstore
import pytest
import xarray as xr
import xproj  # noqa: F401  (registers .proj)
import zarr
from obstore.store import LocalStore as ObstoreLocal
from obstore.store import S3Store
from zarr.storage import LocalStore, MemoryStore, ObjectStore

from topozarr import create_pyramid
from topozarr.cli import main

TOPOZARR = str(Path(sys.executable).parent / "topozarr")
NOTE = "my thesis, no backup"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TOPOZARR, *args], capture_output=True, text=True, cwd=cwd, timeout=300, check=False
    )


def dem(ny: int = 32, nx: int = 48, *, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    z = rng.normal(500.0, 100.0, (ny, nx)).astype(np.float32)
    z[rng.random(z.shape) < 0.1] = np.nan
    ds = xr.Dataset(
        {"elevation": (("lat", "lon"), z, {"units": "m"})},
        coords={
            "lat": 50.0 - 0.5 * (np.arange(ny) + 0.5),
            "lon": 10.0 + 0.5 * (np.arange(nx) + 0.5),
        },
    )
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


def pyramid(levels: int = 2, *, seed: int = 0) -> Any:
    return create_pyramid(dem(seed=seed), levels=levels, x_dim="lon", y_dim="lat")


def user_dir(path: Path) -> Path:
    path.mkdir()
    (path / "notes.txt").write_text(NOTE)
    return path


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("topozarr: error: "), stderr
    return lines[0]


# ----------------------------------------------------------------------------- mode="w"


@pytest.mark.parametrize(("mode", "io"), [("w", "python"), ("w-", "python"), ("w", "rust")])
def test_write_refuses_a_directory_of_user_files(tmp_path: Path, mode: str, io: str) -> None:
    target = user_dir(tmp_path / "mine")
    with pytest.raises(ValueError, match=r"notes\.txt") as info:
        pyramid().write(target, mode=mode, io=io)
    message = str(info.value)
    assert str(target) in message and "remove it yourself" in message and "\n" not in message
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]  # nothing written
    assert (target / "notes.txt").read_text() == NOTE


@pytest.mark.parametrize("entry", ["notes.txt", "scratch/deep/notes.txt"])
def test_write_refuses_a_user_file_inside_a_previous_pyramid(tmp_path: Path, entry: str) -> None:
    target = tmp_path / "p.zarr"
    pyramid(seed=1).write(target)
    before = np.asarray(zarr.open_array(target / "1" / "elevation", mode="r")[...])
    (target / entry).parent.mkdir(parents=True, exist_ok=True)
    (target / entry).write_text(NOTE)
    with pytest.raises(ValueError, match=repr(entry.split("/")[0])):
        pyramid(seed=2).write(target)
    assert (target / entry).read_text() == NOTE
    after = np.asarray(zarr.open_array(target / "1" / "elevation", mode="r")[...])
    np.testing.assert_array_equal(after, before)


def test_empty_directories_hold_nothing_to_lose(tmp_path: Path) -> None:
    # Object stores such as SeaweedFS list the "directories" of deleted objects; a local
    # tree of empty directories is the same thing.
    target = tmp_path / "t"
    (target / "old" / "empty").mkdir(parents=True)
    pyramid().write(target)
    assert zarr.open_group(target, mode="r")["1/elevation"].shape == (16, 24)


def test_write_refuses_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_text(NOTE)
    with pytest.raises(ValueError, match="is a file"):
        pyramid().write(str(target))
    assert target.read_text() == NOTE


def test_write_replaces_a_previous_pyramid(tmp_path: Path) -> None:
    target = tmp_path / "p.zarr"
    pyramid(levels=3, seed=1).write(target)
    (target / ".topozarr-write").mkdir()  # the write journal's reserved prefix is ours
    (target / ".topozarr-write" / "lease").write_text("{}")
    pyramid(levels=2, seed=2).write(target)

    root = zarr.open_group(target, mode="r")
    assert sorted(k for k, _ in root.groups()) == ["0", "1"]  # level 2 of the old one is gone
    source = dem(seed=2).elevation
    got = xr.open_zarr(target, group="1", consolidated=False).elevation.values
    want = source.coarsen(lat=2, lon=2, boundary="trim").mean().values
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("stem", ["zarr", ".zattrs"])
def test_a_metadata_write_killed_midway_leaves_a_replaceable_store(
    tmp_path: Path, stem: str
) -> None:
    # zarr-python's LocalStore writes "zarr.json" to "zarr.<32 hex>.partial" first and
    # renames it; a write killed in between leaves that file at the root.
    target = tmp_path / "p.zarr"
    pyramid(seed=1).write(target)
    temp = target / f"{stem}.{uuid.uuid4().hex}.partial"
    temp.write_text('{"zarr_format": 3, "node_ty')
    pyramid(seed=2).write(target)
    assert not temp.exists()
    source = dem(seed=2).elevation
    got = xr.open_zarr(target, group="1", consolidated=False).elevation.values
    want = source.coarsen(lat=2, lon=2, boundary="trim").mean().values
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("name", ["notes.0123456789abcdef0123456789abcdef.partial",
                                  "zarr.notes.partial", "zarr.json.partial"])  # fmt: skip
def test_a_user_file_named_like_a_temporary_one_is_still_refused(tmp_path: Path, name: str) -> None:
    target = tmp_path / "p.zarr"
    pyramid(seed=1).write(target)
    (target / name).write_text(NOTE)
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        pyramid(seed=2).write(target)
    assert (target / name).read_text() == NOTE


@pytest.mark.parametrize("kind", ["v2 group", "v2 array"])
def test_write_replaces_other_zarr_stores(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "old.zarr"
    if kind == "v2 group":
        old = zarr.open_group(target, mode="w", zarr_format=2)
        old.create_array("a", shape=(4,), dtype="f4")[...] = 1.0
    else:  # an array at the root: its chunk keys ("c/..." or "0.1") are part of it
        arr = zarr.create_array(target, shape=(4, 4), chunks=(2, 2), dtype="f4", zarr_format=2)
        arr[...] = 1.0
    pyramid().write(target)
    assert zarr.open_group(target, mode="r", zarr_format=3)["0/elevation"].shape == (32, 48)


def _memory_with(keys: dict[str, bytes]) -> MemoryStore:
    from zarr.core.buffer import cpu
    from zarr.core.sync import sync

    store = MemoryStore()
    for key, data in keys.items():
        sync(store.set(key, cpu.Buffer.from_bytes(data)))
    return store


@pytest.mark.parametrize("kind", ["local", "memory", "obstore"])
def test_every_store_kind_refuses_foreign_content(tmp_path: Path, kind: str) -> None:
    if kind == "memory":
        store: Any = _memory_with({"notes.txt": NOTE.encode()})
    else:
        user_dir(tmp_path / "t")
        store = (
            LocalStore(tmp_path / "t")
            if kind == "local"
            else ObjectStore(ObstoreLocal(prefix=tmp_path / "t"))
        )
    with pytest.raises(ValueError, match=r"notes\.txt"):
        pyramid().write(store)
    assert sorted(zarr.core.sync.sync(_collect(store.list()))) == ["notes.txt"]


async def _collect(items: Any) -> list[str]:
    return [item async for item in items]


@pytest.mark.s3
def test_s3_prefix_with_foreign_objects_is_refused(s3_server: Any, s3_prefix: str) -> None:
    raw = S3Store(s3_server.bucket, prefix=s3_prefix, **s3_server.store_config())
    obstore.put(raw, "report.csv", NOTE.encode())
    with pytest.raises(ValueError, match=r"report\.csv") as info:
        pyramid().write(ObjectStore(raw))
    assert f"s3://{s3_server.bucket}/{s3_prefix}" in str(info.value)
    assert bytes(obstore.get(raw, "report.csv").bytes()).decode() == NOTE
    listed = [m["path"] for batch in obstore.list(raw) for m in batch]
    assert listed == ["report.csv"]  # nothing written (obstore lists relative to the prefix)

    # A pyramid at another prefix is replaced as before.
    other = ObjectStore(
        S3Store(s3_server.bucket, prefix=f"{s3_prefix}-p", **s3_server.store_config())
    )
    pyramid(levels=3).write(other)
    pyramid(levels=2).write(other)
    pyramid(levels=2).write(other)
    assert sorted(k for k, _ in zarr.open_group(other, mode="r").groups()) == ["0", "1"]


def test_cli_demo_refuses_a_user_directory(tmp_path: Path) -> None:
    user_dir(tmp_path / "mine")
    result = run("demo", "mine", "--size", "32", "--levels", "2", "--no-progress", cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "notes.txt" in one_error_line(result.stderr)
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    assert (tmp_path / "mine" / "notes.txt").read_text() == NOTE


def test_cli_build_refuses_a_user_directory(tmp_path: Path, cf_netcdf: Path) -> None:
    user_dir(tmp_path / "mine")
    result = run("build", str(cf_netcdf), "mine", "--levels", "2", "--no-progress", cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "notes.txt" in one_error_line(result.stderr)
    assert (tmp_path / "mine" / "notes.txt").read_text() == NOTE


# ----------------------------------------------------------------------------- CF attributes


@pytest.fixture
def cf_netcdf(tmp_path: Path) -> Path:
    """A CF NetCDF whose attributes xarray reads back as numpy scalars and arrays."""
    rng = np.random.default_rng(5)
    ny, nx = 32, 48
    temp = rng.normal(280.0, 10.0, (ny, nx)).astype(np.float32)
    temp[rng.random(temp.shape) < 0.1] = np.nan
    classes = rng.choice(np.array([1, 2, 4], np.int8), (ny, nx))
    ds = xr.Dataset(
        {
            "temp": (
                ("lat", "lon"),
                temp,
                {
                    "units": "K",
                    "valid_min": np.float32(200.0),
                    "valid_max": np.float32(350.0),
                    "valid_range": np.array([200.0, 350.0], np.float32),
                    "grid_mapping": "crs",
                },
            ),
            "landcover": (
                ("lat", "lon"),
                classes,
                {
                    "flag_values": np.array([1, 2, 4], np.int8),
                    "flag_meanings": "water forest urban",
                    "valid_range": np.array([1, 4], np.int8),
                    "grid_mapping": "crs",
                },
            ),
            "crs": ((), 0, {"crs_wkt": _wkt()}),
        },
        coords={
            "lat": ("lat", 50.0 - 0.5 * (np.arange(ny) + 0.5), {"units": "degrees_north"}),
            "lon": ("lon", 10.0 + 0.5 * (np.arange(nx) + 0.5), {"units": "degrees_east"}),
        },
        attrs={"title": "cf test", "version": np.int32(3), "scale": np.float64(0.5)},
    )
    path = tmp_path / "cf.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def _wkt() -> str:
    import pyproj

    return str(pyproj.CRS("EPSG:4326").to_wkt())


def _same_attr(got: Any, want: Any) -> None:
    assert not isinstance(got, np.ndarray | np.generic)  # plain JSON, as stored
    if isinstance(want, str):
        assert got == want
    else:
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def _assert_attrs_round_trip(out: Path, src: xr.Dataset, levels: int) -> None:
    assert isinstance(src.temp.attrs["valid_min"], np.floating)  # the case under test
    checked = ("valid_min", "valid_max", "valid_range", "flag_values", "flag_meanings", "units")
    for level in range(levels):
        for name in ("temp", "landcover"):
            stored = json.loads((out / str(level) / name / "zarr.json").read_text())["attributes"]
            via_zarr = zarr.open_array(out / str(level) / name, mode="r").attrs
            via_xarray = xr.open_zarr(out, group=str(level), consolidated=False)[name].attrs
            for key in checked:
                if key not in src[name].attrs:
                    continue
                _same_attr(stored[key], src[name].attrs[key])
                _same_attr(via_zarr[key], src[name].attrs[key])
                np.testing.assert_array_equal(
                    np.asarray(via_xarray[key]), np.asarray(src[name].attrs[key])
                )
    group = zarr.open_group(out / "0", mode="r").attrs
    assert group["version"] == int(src.attrs["version"]) and group["scale"] == 0.5
    assert zarr.open_array(out / "1" / "lat", mode="r").attrs["units"] == "degrees_north"


def test_cf_netcdf_with_numpy_attrs_builds_and_round_trips(tmp_path: Path, cf_netcdf: Path) -> None:
    src = xr.open_dataset(cf_netcdf, engine="h5netcdf")
    ds = src.drop_vars("crs").proj.assign_crs(spatial_ref=src.crs.attrs["crs_wkt"])
    out = tmp_path / "api.zarr"
    create_pyramid(ds, levels=2, x_dim="lon", y_dim="lat", method={"landcover": "mode"}).write(out)
    _assert_attrs_round_trip(out, src, 2)
    got = xr.open_zarr(out, group="1", consolidated=False).temp.values
    want = src.temp.coarsen(lat=2, lon=2, boundary="trim").mean().values
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_cli_builds_a_cf_netcdf_with_numpy_attrs(tmp_path: Path, cf_netcdf: Path) -> None:
    result = run(
        "build", str(cf_netcdf), "out.zarr", "--levels", "2", "--method", "landcover=mode",
        "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    _assert_attrs_round_trip(tmp_path / "out.zarr", xr.open_dataset(cf_netcdf), 2)


# ----------------------------------------------------------------------------- CLI failures


def _fail_chunk_writes(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> list[str]:
    """Make every chunk/shard write of a LocalStore fail (metadata still goes through)."""
    original = LocalStore.set
    failed: list[str] = []

    async def set_(self: LocalStore, key: str, value: Any) -> None:
        if "/c/" in key:
            failed.append(key)
            raise exc
        await original(self, key, value)

    monkeypatch.setattr(LocalStore, "set", set_)
    return failed


DEMO = ["demo", "out.zarr", "--size", "32", "--levels", "2", "--no-progress"]


def test_cli_disk_full_mid_write_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    failed = _fail_chunk_writes(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    assert main(DEMO) == 2
    assert failed  # the failure did happen in the middle of the write
    assert (tmp_path / "out.zarr" / "0" / "zarr.json").exists()
    line = one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line and "out.zarr" in line


def test_cli_debug_adds_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _fail_chunk_writes(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    assert main(["--debug", *DEMO]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("topozarr: error: ")


def test_cli_unexpected_error_is_one_line_naming_its_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    failed: list[str] = []

    async def set_(self: LocalStore, key: str, value: Any) -> None:
        failed.append(key)
        raise RuntimeError("boom")  # not a storage error the writer knows how to explain

    monkeypatch.setattr(LocalStore, "set", set_)
    assert main(DEMO) == 2
    assert failed
    line = one_error_line(capsys.readouterr().err)
    assert "RuntimeError" in line and "boom" in line and "--debug" in line


def test_cli_interrupt_is_one_line_exit_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import topozarr.cli as cli

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_write", interrupted)
    assert main(DEMO) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["topozarr: interrupted"]


def test_engine_and_store_errors_are_reported_as_written() -> None:
    from topozarr_engine import RegionError
    from topozarr_engine.storage import StoreError

    from topozarr.cli import error_line

    cause = OSError(errno.EIO, "Input/output error")
    region = RegionError((slice(0, 4), slice(0, 8)), cause, variable="elevation", level=1)
    line = error_line(region)
    assert line == str(region) and "'elevation'" in line and "level 1" in line
    assert "--debug" not in line  # a message written for the user
    store = StoreError("S3 request failed: PUT s3://b/k (SlowDown)\nobstore: details")
    assert error_line(store) == "S3 request failed: PUT s3://b/k (SlowDown) obstore: details"
    assert error_line(MemoryError()) == "MemoryError"


@pytest.mark.parametrize("fmt", [2, 3])
def test_a_root_array_with_its_chunks_is_a_zarr_store(tmp_path: Path, fmt: int) -> None:
    from topozarr_plan.foreign import foreign_entry

    target = tmp_path / "a.zarr"
    arr = zarr.create_array(target, shape=(4, 4), chunks=(2, 2), dtype="f4", zarr_format=fmt)
    arr[...] = 1.0
    assert foreign_entry(LocalStore(target)) is None
    (target / "notes.txt").write_text(NOTE)
    assert "notes.txt" in str(foreign_entry(LocalStore(target)))
