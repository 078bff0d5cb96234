"""`topozarr info`'s summary (inspect_store) against the store as zarr-python reads it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import xproj  # noqa: F401  (registers the .proj accessor)
import zarr

from topozarr import create_pyramid
from topozarr.errors import UsageError
from topozarr.inspect_store import extents, open_root, summarize

ROWS, COLS, CELL = 24, 40, 0.5


@pytest.fixture
def pyramid_store(tmp_path: Path) -> Path:
    """A 3-level pyramid (factors 1, 2, 4) of a small north-up grid with a time dim."""
    rng = np.random.default_rng(7)
    lat = 60.0 - CELL * (np.arange(ROWS) + 0.5)
    lon = -10.0 + CELL * (np.arange(COLS) + 0.5)
    time = np.array(["2021-01-01", "2021-01-02"], dtype="datetime64[ns]")
    data = rng.normal(0, 1, (2, ROWS, COLS)).astype(np.float32)
    ds = xr.Dataset(
        {"t2m": (("time", "lat", "lon"), data)},
        coords={"time": time, "lat": lat, "lon": lon},
    ).proj.assign_crs(spatial_ref="EPSG:4326")
    path = tmp_path / "p.zarr"
    create_pyramid(ds, factors=[1, 2, 4], x_dim="lon", y_dim="lat", method="max").write(path)
    return path


def _node(path: Path, key: str) -> dict[str, Any]:
    """One node's zarr.json, read with the json module (not through our readers)."""
    return json.loads((path / key / "zarr.json").read_text())  # type: ignore[no-any-return]


def test_summary_matches_what_zarr_reads_back(pyramid_store: Path) -> None:
    info = summarize(open_root(str(pyramid_store)))
    root = _node(pyramid_store, "")["attributes"]
    assert info["crs"] == root["proj:code"] == "EPSG:4326"
    assert info["dims"] == ["lat", "lon"]
    assert info["bbox"] == root["spatial:bbox"]
    assert info["method"] == "max"
    assert [lv.asset for lv in info["levels"]] == ["0", "1", "2"]
    for k, level in enumerate(info["levels"]):
        arr = zarr.open_array(pyramid_store, path=f"{k}/t2m", mode="r")
        assert level.shape == arr.shape[1:] == (ROWS // 2**k, COLS // 2**k)
        assert level.bbox == tuple(_node(pyramid_store, str(k))["attributes"]["spatial:bbox"])
        assert level.resampling_method == "max"
        t2m = next(a for a in level.arrays if a.name == "t2m")
        assert (t2m.shape, t2m.dtype, t2m.dimension_names) == (
            arr.shape,
            str(arr.dtype),
            ("time", "lat", "lon"),
        )
    assert info["extents"] == {
        "time": {
            "size": 2,
            "first": "2021-01-01T00:00:00.000000000",
            "last": "2021-01-02T00:00:00.000000000",
        }
    }


@pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")
def test_levels_without_spatial_shape_are_sized_from_the_layout_scale(pyramid_store: Path) -> None:
    # A layout that states geometry only on level 0 (legal: spatial:* is optional per entry,
    # and level groups need not restate it): the reader derives each level from its scale.
    group = zarr.open_group(pyramid_store, mode="r+")
    attrs = dict(group.attrs)
    for entry in attrs["multiscales"]["layout"][1:]:
        del entry["spatial:shape"], entry["spatial:transform"]
    group.attrs.put(attrs)
    for k in (1, 2):
        level = zarr.open_group(pyramid_store, path=str(k), mode="r+")
        level.attrs.put({a: v for a, v in level.attrs.items() if a != "spatial:shape"})
    zarr.consolidate_metadata(pyramid_store)  # readers take the consolidated copy first
    assert (
        "spatial:shape"
        not in _node(pyramid_store, "")["consolidated_metadata"]["metadata"]["1"]["attributes"]
    )
    info = summarize(open_root(str(pyramid_store)))
    shapes = [zarr.open_array(pyramid_store, path=f"{k}/t2m", mode="r").shape[1:] for k in range(3)]
    assert [lv.shape for lv in info["levels"]] == shapes


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({}, "no 'multiscales' key"),
        ({"multiscales": [{"datasets": []}]}, "legacy ndpyramid"),
        ({"multiscales": {"layout": []}}, "non-empty 'layout'"),
    ],
)
def test_a_store_without_a_readable_layout_is_one_line(
    tmp_path: Path, attrs: dict[str, Any], reason: str
) -> None:
    zarr.open_group(tmp_path / "g.zarr", mode="w", attributes=attrs)
    root = open_root(str(tmp_path / "g.zarr"))
    with pytest.raises(UsageError, match="is it a topozarr pyramid") as err:
        summarize(root)
    assert reason in str(err.value) and "\n" not in str(err.value)
    assert extents(root) == {}
