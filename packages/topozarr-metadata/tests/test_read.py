"""read_multiscales(): typed round trip, derived geometry, legacy warnings, level choice."""

from __future__ import annotations

import copy
import dataclasses
import warnings
from typing import Any

import pytest
from topozarr_metadata import (
    CrsMetadata,
    LegacyConventionWarning,
    LevelMetadata,
    MetadataReadError,
    PyramidMetadata,
    ZarrLayerVarConfig,
    group_document,
    multiscale_attrs,
    read_multiscales,
)

TRANSFORM = [0.17578125, 0.0, -180.0, 0.0, -0.17578125, 90.0]


@pytest.fixture
def root(crs) -> dict[str, Any]:
    return multiscale_attrs(
        shape=(1024, 2048),
        transform=TRANSFORM,
        factors=[1, 2, 4],
        dims=("lat", "lon"),
        crs_wkt2=crs["EPSG:4326"]["wkt2"],
        crs_code="EPSG:4326",
        level_methods=["mean", "mode"],
        layer_hints={"elevation": ZarrLayerVarConfig(clim=(-10, 10), colormap="RdBu")},
    )


def _read_quietly(attrs: Any) -> PyramidMetadata:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a v0.1 document must not warn
        return read_multiscales(attrs)


def test_round_trip(root, crs) -> None:
    meta = _read_quietly(root)
    assert meta.crs == CrsMetadata(code="EPSG:4326", wkt2=crs["EPSG:4326"]["wkt2"])
    assert meta.dims == ("lat", "lon")
    assert meta.registration == "pixel"
    assert meta.resampling_method == "mean"
    assert meta.bbox == (-180.0, -90.0, 180.0, 90.0)
    assert meta.legacy is False
    assert dict(meta.hints) == {
        "elevation": ZarrLayerVarConfig(clim=(-10.0, 10.0), colormap="RdBu")
    }
    assert meta.levels == (
        LevelMetadata(
            index=0,
            asset="0",
            shape=(1024, 2048),
            transform=tuple(TRANSFORM),  # type: ignore[arg-type]
            bbox=(-180.0, -90.0, 180.0, 90.0),
            factor=1.0,
            derived_from=None,
            resampling_method="mean",
            scale=(1.0, 1.0),
            translation=(0.0, 0.0),
        ),
        LevelMetadata(
            index=1,
            asset="1",
            shape=(512, 1024),
            transform=(0.3515625, 0.0, -180.0, 0.0, -0.3515625, 90.0),
            bbox=(-180.0, -90.0, 180.0, 90.0),
            factor=2.0,
            derived_from="0",
            resampling_method="mean",
            scale=(2.0, 2.0),
            translation=(0.0, 0.0),
        ),
        LevelMetadata(
            index=2,
            asset="2",
            shape=(256, 512),
            transform=(0.703125, 0.0, -180.0, 0.0, -0.703125, 90.0),
            bbox=(-180.0, -90.0, 180.0, 90.0),
            factor=4.0,
            derived_from="1",
            resampling_method="mode",
            scale=(2.0, 2.0),
            translation=(0.0, 0.0),
        ),
    )
    assert meta.level("1") is meta.levels[1]
    with pytest.raises(KeyError, match="no level with asset '9'"):
        meta.level("9")


def test_reads_node_document(root) -> None:
    assert _read_quietly(group_document(root)) == _read_quietly(root)


def test_frozen(root) -> None:
    meta = _read_quietly(root)
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.levels = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.levels[0].asset = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        meta.hints["x"] = ZarrLayerVarConfig()  # type: ignore[index]


def test_sparse_and_south_up(crs) -> None:
    attrs = multiscale_attrs(
        shape=(1000, 1000),
        transform=[30.0, 0.0, 500000.0, 0.0, 30.0, 4000000.0],
        factors=[1, 4, 16],
        dims=("y", "x"),
        crs_wkt2=crs["EPSG:32633"]["wkt2"],
    )
    meta = _read_quietly(attrs)
    assert [lvl.factor for lvl in meta.levels] == [1.0, 4.0, 16.0]
    assert [lvl.scale for lvl in meta.levels] == [(1.0, 1.0), (4.0, 4.0), (4.0, 4.0)]
    assert [lvl.shape for lvl in meta.levels] == [(1000, 1000), (250, 250), (62, 62)]
    assert meta.levels[2].bbox == (500000.0, 4000000.0, 500000.0 + 480 * 62, 4000000.0 + 480 * 62)
    assert meta.crs is not None and meta.crs.code is None
    assert meta.hints == {}


def test_star_graph_official_example(example) -> None:
    doc = example("spatial-v0.1/multiscales.json")
    meta = _read_quietly(doc)
    assert [lvl.asset for lvl in meta.levels] == ["r10m", "r20m", "r60m"]
    assert [lvl.derived_from for lvl in meta.levels] == [None, "r10m", "r10m"]
    assert [lvl.factor for lvl in meta.levels] == [1.0, 2.0, 6.0]
    assert meta.levels[2].shape == (200, 200)
    assert meta.crs == CrsMetadata(code="EPSG:32633", wkt2=None)
    assert meta.dims == ("Y", "X")
    assert meta.bbox == (500000.0, 4988000.0, 512000.0, 5000000.0)
    assert meta.resampling_method is None


def test_geometry_derived_from_scale_when_levels_lack_spatial(root) -> None:
    for entry in root["multiscales"]["layout"]:
        del entry["spatial:shape"]
        del entry["spatial:transform"]
    meta = _read_quietly(root)  # level 0 falls back to the root spatial:* keys
    assert [lvl.shape for lvl in meta.levels] == [(1024, 2048), (512, 1024), (256, 512)]
    assert meta.levels[2].transform == (0.703125, 0.0, -180.0, 0.0, -0.703125, 90.0)
    assert [lvl.factor for lvl in meta.levels] == [1.0, 2.0, 4.0]


def test_levels_without_any_geometry() -> None:
    attrs = {"multiscales": {"layout": [{"asset": "a"}, {"asset": "b", "derived_from": "a"}]}}
    meta = _read_quietly(attrs)
    assert meta.levels[1].shape is None and meta.levels[1].transform is None
    assert meta.levels[1].factor is None and meta.levels[1].bbox is None
    assert meta.crs is None and meta.dims is None and meta.bbox is None
    with pytest.raises(ValueError, match="no level has a spatial:transform"):
        meta.level_for_resolution(1.0)


# --- level choice ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("res", "asset"),
    [
        (0.17578125, "0"),  # exactly level 0's cell size
        (0.2, "0"),
        (0.3515625, "1"),  # exactly level 1's
        (0.5, "1"),
        (0.703125, "2"),
        (10.0, "2"),  # coarser than everything: coarsest level that fits
        (0.01, "0"),  # finer than everything: the finest level
        (0.3515625 * (1 - 1e-12), "1"),  # float noise tolerated
    ],
)
def test_level_for_resolution(root, res: float, asset: str) -> None:
    assert _read_quietly(root).level_for_resolution(res).asset == asset


def test_level_for_resolution_order_independent(root) -> None:
    layout = root["multiscales"]["layout"]
    layout.reverse()
    meta = _read_quietly(root)
    assert meta.level_for_resolution(0.5).asset == "1"
    assert meta.level_for_resolution(0.01).asset == "0"


@pytest.mark.parametrize("res", [0, -1.0, float("nan"), float("inf"), True, "1"])
def test_level_for_resolution_rejects(root, res: Any) -> None:
    with pytest.raises(ValueError, match="res must be a positive finite number"):
        _read_quietly(root).level_for_resolution(res)


# --- legacy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "multiscales-draft-v1/power-of-2-pyramid.json",
        "multiscales-draft-v1/sentinel-2-multiresolution.json",
        "geo-proj-draft-v1/multiscales.json",
    ],
)
def test_draft_documents_read_with_warning(example, name: str) -> None:
    doc = example(name)
    with pytest.warns(LegacyConventionWarning, match="draft URL"):
        meta = read_multiscales(doc)
    assert meta.legacy is True
    assert len(meta.levels) >= 2


def test_draft_name_only_warns(root) -> None:
    root["zarr_conventions"][1]["name"] = "proj:"
    with pytest.warns(LegacyConventionWarning, match="draft name") as record:
        assert read_multiscales(root).legacy
    assert record[0].filename == __file__


def test_obsolete_group_keys_warn() -> None:
    attrs = {
        "multiscales": {
            "layout": [
                {"group": "0", "spatial:shape": [4, 4], "spatial:transform": [1, 0, 0, 0, -1, 4]},
                {"group": "1", "from_group": "0", "transform": {"scale": [2.0, 2.0]}},
            ]
        }
    }
    with pytest.warns(LegacyConventionWarning, match="'group'") as record:
        meta = read_multiscales(attrs)
    assert all(w.filename == __file__ for w in record)  # points at the caller
    assert [lvl.asset for lvl in meta.levels] == ["0", "1"]
    assert meta.levels[1].derived_from == "0"
    assert meta.levels[1].shape == (2, 2)


# --- errors -------------------------------------------------------------------------------------


def _layout(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"multiscales": {"layout": list(entries)}}


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({}, "no 'multiscales' key"),
        ({"multiscales": [{"datasets": []}]}, "legacy ndpyramid"),
        ({"multiscales": {"layout": []}}, "non-empty 'layout'"),
        (_layout({"asset": ""}), r"layout\[0\]\.asset must be a non-empty string"),
        (_layout("x"), r"layout\[0\] must be an object"),
        (_layout({"asset": "a"}, {"asset": "a"}), "assets must be unique"),
        (_layout({"asset": "a"}, {"asset": "b", "derived_from": "c"}), "not in the layout"),
        (
            _layout({"asset": "a", "derived_from": "b"}, {"asset": "b", "derived_from": "a"}),
            "derived_from cycle",
        ),
        (_layout({"asset": "a", "spatial:shape": [0, 1]}), "positive integers"),
        (_layout({"asset": "a", "spatial:transform": [1, 0, 0]}), "array of 6 finite numbers"),
        (_layout({"asset": "a", "transform": 2}), r"transform must be an object"),
        ({**_layout({"asset": "a"}), "proj:code": 4326}, "proj:code must be a string"),
        ({**_layout({"asset": "a"}), "spatial:dimensions": ["y"]}, "two names"),
        ({**_layout({"asset": "a"}), "spatial:registration": "corner"}, "'pixel' or 'node'"),
        ({**_layout({"asset": "a"}), "zarr-layer": {"v": {"clim": [2, 1]}}}, "clim low"),
    ],
)
def test_read_errors(attrs: dict[str, Any], message: str) -> None:
    with pytest.raises(MetadataReadError, match=message):
        read_multiscales(copy.deepcopy(attrs))


def test_node_registration_level_bbox(root) -> None:
    root["spatial:registration"] = "node"
    meta = _read_quietly(root)
    assert meta.registration == "node"
    assert meta.levels[0].bbox == (-180.0, -90.0 + 0.17578125, 180.0 - 0.17578125, 90.0)
