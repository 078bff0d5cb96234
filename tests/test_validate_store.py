"""`topozarr validate` checks what readers read: each node's zarr.json, shard objects, values.

Each test writes a small pyramid with ``create_pyramid(...).write``, damages it on disk the way
a failed upload or a hand edit would, and expects a finding that names the damaged node or
object (and exit code 1 from the command).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr

from topozarr import create_pyramid
from topozarr.cli import main
from topozarr.errors import UsageError
from topozarr.validate_store import validate_store

ROWS, COLS = 64, 96


def _dataset() -> xr.Dataset:
    import xproj  # noqa: F401 - registers the .proj accessor

    rng = np.random.default_rng(1)
    lat = 40.0 - 0.5 * (np.arange(ROWS) + 0.5)
    lon = 5.0 + 0.5 * (np.arange(COLS) + 0.5)
    elevation = rng.normal(500, 100, (ROWS, COLS)).astype(np.float32)
    elevation[:20, :30] = np.nan  # a nodata corner: its level-0 shard holds data, not all
    temperature = rng.normal(280, 5, (2, ROWS, COLS)).astype(np.float32)
    landcover = rng.integers(0, 4, (ROWS, COLS)).astype(np.uint8)
    ds = xr.Dataset(
        {
            "elevation": (("lat", "lon"), elevation),
            "temperature": (("time", "lat", "lon"), temperature),
            "landcover": (("lat", "lon"), landcover),
        },
        coords={"lat": lat, "lon": lon, "time": [0, 1]},
    )
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-level pyramid with several shards per array (16x16 chunks, 2x2 chunks per shard)."""
    path = tmp_path_factory.mktemp("validate") / "clean.zarr"
    pyramid = create_pyramid(
        _dataset(),
        levels=3,
        x_dim="lon",
        y_dim="lat",
        method={"elevation": "mean", "temperature": "mean", "landcover": "mode"},
        target_chunk_bytes=16 * 16 * 4,
        chunks_per_shard=2,
    )
    pyramid.write(path, progress=False)
    return path


@pytest.fixture
def store(written: Path, tmp_path: Path) -> Path:
    """A fresh copy of the written pyramid, for one test to damage."""
    return Path(shutil.copytree(written, tmp_path / "p.zarr"))


def _edit_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["validate", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_clean_store_is_valid(written: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_store(written) == []
    assert validate_store(written, full=True) == []
    for args in ([], ["--full"]):
        code, out = _cli(capsys, str(written), *args)
        assert code == 0, out
        lines = out.strip().splitlines()
        assert lines[0] == f"{written}: valid"
        # Then the extent of each non-spatial dim, as zarr-python reads it.
        steps = zarr.open_array(str(written / "0" / "time"), mode="r")
        values = steps[...]
        assert lines[1:] == [f"  time    {steps.shape[0]} steps, {values[0]} .. {values[-1]}"]


def test_a_missing_store_cannot_be_validated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match="not a Zarr group"):
        validate_store(tmp_path / "nothing.zarr")
    code, out = _cli(capsys, str(tmp_path / "nothing.zarr"))
    assert code == 2
    assert out.count("\n") == 1 and "nothing.zarr" in out


def test_an_unreadable_root_cannot_be_validated(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = store / "zarr.json"
    root.write_text(root.read_text()[:100])
    code, out = _cli(capsys, str(store))
    assert code == 2
    assert out.startswith("topozarr: error:") and "zarr.json" in out
    assert "Traceback" not in out


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        doc[key] = value

    return edit


def _set_attr(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        doc["attributes"][key] = value

    return edit


# (node damaged, edit of its own zarr.json, the finding's path starts with)
LEVEL_DAMAGE = {
    "shape": ("1/elevation", _set("shape", [31, 48]), "1/elevation#/shape"),
    "dtype": ("1/elevation", _set("data_type", "float64"), "1/elevation#/data_type"),
    "fill_value": ("1/elevation", _set("fill_value", -9999.0), "1/elevation#/fill_value"),
    "dimension_names": (
        "2/elevation",
        _set("dimension_names", ["lon", "lat"]),
        "2/elevation#/dimension_names",
    ),
    "extra dimension": ("1/temperature", _set("shape", [3, 32, 48]), "1/temperature#/shape"),
    "proj:code in a level group": ("1", _set_attr("proj:code", "EPSG:3857"), "1#/proj:code"),
    "spatial:shape in a level group": (
        "2",
        _set_attr("spatial:shape", [15, 24]),
        "2#/spatial:shape",
    ),
}


@pytest.mark.parametrize("case", sorted(LEVEL_DAMAGE))
def test_a_damaged_level_zarr_json_is_found(
    store: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    node, edit, where = LEVEL_DAMAGE[case]
    _edit_json(store / node / "zarr.json", edit)
    paths = [f.path for f in validate_store(store)]
    assert any(p.startswith(where) for p in paths), paths
    # The root's consolidated copy still holds the good metadata (a check that read only it
    # would pass), and the node disagreeing with it is a finding of its own.
    assert f"{node}#" in paths
    code, out = _cli(capsys, str(store))
    assert code == 1 and where in out


def test_a_level_zarr_json_that_is_not_json_is_found(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = store / "1" / "elevation" / "zarr.json"
    doc.write_text(doc.read_text()[:-40])
    findings = validate_store(store)
    assert any(f.path == "1/elevation#" and "not valid JSON" in f.message for f in findings)
    code, out = _cli(capsys, str(store))
    assert code == 1 and "1/elevation#" in out and "Traceback" not in out


def test_a_missing_level_group_is_found(store: Path) -> None:
    (store / "2" / "zarr.json").unlink()
    findings = validate_store(store)
    assert any(f.path == "2#" and "not in the store" in f.message for f in findings)


def _object(store: Path, key: str) -> Path:
    path = store / key
    assert path.is_file(), f"the fixture no longer writes {key}"
    return path


@pytest.mark.parametrize("keep", [0, 7, 0.5])
def test_a_truncated_shard_is_found(
    store: Path, keep: float, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "0/elevation/c/1/2"
    path = _object(store, key)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    findings = validate_store(store)
    assert [f.path for f in findings if "truncated" in f.message or "decode" in f.message] == [key]
    code, out = _cli(capsys, str(store))
    assert code == 1 and out.startswith(f"{key}: ")


def _readable_as_before(array: zarr.Array, before: np.ndarray) -> bool:
    try:
        return bool(np.array_equal(np.asarray(array[...]), before, equal_nan=True))
    except Exception:
        return False


@pytest.mark.parametrize("key", ["0/elevation/c/1/1", "1/elevation/c/0/1", "1/temperature/c/1/0/1"])
@pytest.mark.parametrize("where", ["index", "chunk"])
def test_flipped_bytes_in_a_shard_are_found_with_full(store: Path, key: str, where: str) -> None:
    path = _object(store, key)
    array = zarr.open_array(store / key.split("/c/")[0], mode="r")
    before = np.asarray(array[...])
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(7)
    # The index (and its crc32c) is the last 4 * 16 + 4 bytes; chunk data comes first.
    span = (len(data) - 68, len(data)) if where == "index" else (0, len(data) - 68)
    for pos in rng.integers(*span, size=4):
        data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    # Precondition, with zarr-python as the witness: the damage changes what a reader gets.
    assert not _readable_as_before(array, before)
    findings = validate_store(store, full=True)
    assert any(key in str(f) for f in findings), findings
    if where == "index":  # the index checksum pins it without any value recomputation
        assert any(f.path == key for f in validate_store(store))


def test_flipped_bytes_that_decode_silently_are_found_by_values(store: Path) -> None:
    # blosc-lz4 has no checksum: find a flip that decodes without error to other values.
    key = "0/elevation/c/1/1"
    path = _object(store, key)
    array = zarr.open_array(store / "0" / "elevation", mode="r")
    before = np.asarray(array[...])
    original = path.read_bytes()
    for pos in range(len(original) // 2, len(original) - 68):
        data = bytearray(original)
        data[pos] ^= 0x80
        path.write_bytes(bytes(data))
        try:
            after = np.asarray(array[...])
        except Exception:
            continue
        if np.nanmax(np.abs(after - before)) > 1.0:
            break
    else:
        pytest.fail("no silent flip found")
    findings = validate_store(store, full=True)
    assert any(key in f.message for f in findings), findings


@pytest.mark.parametrize("key", ["0/elevation/c/1/1", "1/elevation/c/0/1", "2/temperature/c/0/0/0"])
def test_a_deleted_shard_that_held_data_is_found_with_full(store: Path, key: str) -> None:
    _object(store, key).unlink()
    # Missing objects are legal (all-fill regions are not written), so only values tell.
    assert not any(key in str(f) for f in validate_store(store, samples=0))
    findings = validate_store(store, full=True)
    assert any(key in str(f) for f in findings), findings
    if key.startswith("0/"):
        assert any(f"{key} (object missing)" in f.message for f in findings)


def test_a_shard_of_fill_values_may_be_missing(written: Path, tmp_path: Path) -> None:
    # A level-0 shard whose cells are all NaN: writing it as missing is what the writer does.
    store = Path(shutil.copytree(written, tmp_path / "p.zarr"))
    array = zarr.open_array(store / "0" / "elevation", mode="r+")
    array[:32, :32] = np.nan
    coarse = {1: np.nan, 2: np.nan}
    for level, value in coarse.items():
        f = 2**level
        zarr.open_array(store / str(level) / "elevation", mode="r+")[: 32 // f, : 32 // f] = value
    assert not (store / "0" / "elevation" / "c" / "0" / "0").exists()
    assert validate_store(store, full=True) == []


# (array, cell) changed through zarr-python; level 0 shows in every coarser level.
CHANGED_CELLS = [
    ("0/elevation", (40, 70)),
    ("1/elevation", (20, 3)),
    ("2/elevation", (15, 23)),
    ("1/temperature", (1, 9, 40)),
    ("0/temperature", (0, 63, 0)),
    ("2/landcover", (3, 4)),
    ("0/landcover", (0, 0)),
]


@pytest.mark.parametrize(("name", "cell"), CHANGED_CELLS)
def test_one_changed_cell_is_found_with_full(
    store: Path, name: str, cell: tuple[int, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    array = zarr.open_array(store / name, mode="r+")
    old = np.asarray(array[cell])
    if name == "0/landcover":
        # One cell rarely changes a mode: give the level-2 window under it one class instead.
        window = tuple(slice(c - c % 4, c - c % 4 + 4) for c in cell)
        array[window] = (int(old) + 1) % 4
    elif name.endswith("landcover"):
        array[cell] = 9  # a class that is not in the data, so never the mode
    else:
        array[cell] = old + 250.0
    findings = validate_store(store, full=True)
    assert findings, f"changing {name}{list(cell)} went unnoticed"
    assert all("differ" in f.message for f in findings), findings
    level = name.partition("/")[0]
    key = array.metadata.encode_chunk_key(
        tuple(c // e for c, e in zip(cell, array.metadata.chunk_grid.chunk_shape, strict=True))
    )
    named = [f for f in findings if f"{name}/{key}" in str(f)]
    assert named, (f"{name}/{key}", findings)
    if level != "0":
        assert named[0].path == f"{name}/{key}"
    code, out = _cli(capsys, str(store), "--full")
    assert code == 1 and f"{name}/{key}" in out


@pytest.mark.parametrize("method", ["mean", "max", "min", "sum"])
def test_reference_reductions_match_xarray_coarsen(method: str) -> None:
    from topozarr import reference_reduce as ref

    rng = np.random.default_rng(3)
    values = rng.normal(0, 10, (3, 12, 18))
    values[rng.random(values.shape) < 0.3] = np.nan
    values[0, :4, :4] = np.nan  # an all-missing window
    missing = ref.missing_mask(values, np.nan)
    windows, mask = ref.windows(values, missing, (3, 4), 4)
    got = ref.reduce_windows(windows, mask, method, np.nan)
    coarse = xr.DataArray(values, dims=("t", "y", "x")).coarsen(y=4, x=4, boundary="trim")
    want = getattr(coarse, method)().values  # NaN-skipping by default for floats
    if method == "sum":  # xarray sums an all-NaN window to 0 too
        want = np.nan_to_num(want)
    np.testing.assert_allclose(got, want)


def test_reference_mode_is_the_most_frequent_valid_value_smallest_on_ties() -> None:
    from collections import Counter

    from topozarr import reference_reduce as ref

    rng = np.random.default_rng(4)
    values = rng.integers(0, 4, (8, 12)).astype(np.uint8)
    missing = ref.missing_mask(values, 3)  # class 3 is the fill value: never the mode
    windows, mask = ref.windows(values, missing, (4, 6), 2)
    got = ref.reduce_windows(windows, mask, "mode", 3)
    for (i, j), value in np.ndenumerate(got):
        cells = [int(v) for v in values[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].ravel() if v != 3]
        counts = Counter(cells)
        want = min(counts, key=lambda c: (-counts[c], c)) if cells else 3
        assert value == want, (i, j, cells)


def test_a_profile_beside_the_rasters_is_valid(tmp_path: Path) -> None:
    """A variable over x only (coarsened along it) is not a misnamed raster."""
    import xproj  # noqa: F401

    from topozarr import create_pyramid

    rng = np.random.default_rng(4)
    ds = xr.Dataset(
        {
            "elev": (("time", "y", "x"), rng.random((3, 64, 64)).astype("f4")),
            "prof": (("time", "x"), rng.random((3, 64)).astype("f4")),
        },
        coords={"time": np.arange(3), "y": np.arange(64.0)[::-1] + 0.5, "x": np.arange(64.0) + 0.5},
    ).proj.assign_crs(spatial_ref="EPSG:32633")
    path = tmp_path / "p.zarr"
    create_pyramid(ds, levels=3).write(str(path))
    assert zarr.open_array(str(path / "2" / "prof"), mode="r").shape == (3, 16)
    assert validate_store(path, full=True) == []


def _int_sum_pyramid(tmp_path: Path) -> Path:
    import xproj  # noqa: F401

    rng = np.random.default_rng(6)
    ds = xr.Dataset(
        {"count": (("y", "x"), rng.integers(0, 1000, (48, 64)).astype("int32"))},
        coords={"y": np.arange(48.0)[::-1] + 0.5, "x": np.arange(64.0) + 0.5},
    ).proj.assign_crs(spatial_ref="EPSG:32633")
    path = tmp_path / "sum.zarr"
    create_pyramid(ds, levels=3, method="sum").write(str(path))
    return path


def test_an_integer_sum_pyramid_is_valid(tmp_path: Path) -> None:
    """Coarse levels of an integer sum are 64-bit (numpy's sum dtype), not level 0's dtype."""
    path = _int_sum_pyramid(tmp_path)
    level0 = zarr.open_array(str(path / "0" / "count"), mode="r")
    level2 = zarr.open_array(str(path / "2" / "count"), mode="r")
    assert (level0.dtype, level2.dtype) == (np.dtype("int32"), np.add.reduce(level0[:2, :2]).dtype)
    assert validate_store(path, full=True) == []


def test_a_method_topozarr_cannot_recompute_is_reported(tmp_path: Path) -> None:
    path = _int_sum_pyramid(tmp_path)
    doc_path = path / "zarr.json"
    doc = json.loads(doc_path.read_text())
    doc["attributes"]["multiscales"]["resampling_method"] = "bilinear"
    for entry in doc["attributes"]["multiscales"]["layout"]:
        entry.pop("resampling_method", None)
    doc_path.write_text(json.dumps(doc))
    messages = [f.message for f in validate_store(path, full=True)]
    assert any("'bilinear' is not a method topozarr can recompute" in m for m in messages)
    # Never checked as if it were a mean: no value finding claims a mismatch.
    assert not any("differ from the" in m for m in messages)
