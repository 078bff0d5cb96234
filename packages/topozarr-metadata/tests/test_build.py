"""Builders: the worked example of docs/metadata.md, schema validity over many cases, errors."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from topozarr_metadata import (
    CONVENTIONS,
    LevelGeometry,
    ZarrLayerVarConfig,
    flat_attrs,
    group_document,
    layer_hints_attrs,
    level_geometry,
    level_group_attrs,
    multiscale_attrs,
)

# --- docs/metadata.md (CMOs, worked example), transcribed by hand: the independent reference ------

MULTISCALES_CMO = {
    "schema_url": "https://raw.githubusercontent.com/zarr-conventions/multiscales/refs/tags/v0.1/schema.json",
    "spec_url": "https://github.com/zarr-conventions/multiscales/blob/v0.1/README.md",
    "uuid": "d35379db-88df-4056-af3a-620245f8e347",
    "name": "multiscales",
    "description": "Multiscale layout of zarr datasets",
}
PROJ_CMO = {
    "schema_url": "https://raw.githubusercontent.com/zarr-conventions/proj/refs/tags/v0.1/schema.json",
    "spec_url": "https://github.com/zarr-conventions/proj/blob/v0.1/README.md",
    "uuid": "f17cb550-5864-4468-aeb7-f3180cfb622f",
    "name": "proj",
    "description": "Coordinate reference system information for geospatial data",
}
SPATIAL_CMO = {
    "schema_url": "https://raw.githubusercontent.com/zarr-conventions/spatial/refs/tags/v0.1/schema.json",
    "spec_url": "https://github.com/zarr-conventions/spatial/blob/v0.1/README.md",
    "uuid": "689b58e2-cf7b-45e0-9fff-9cfc0883d6b4",
    "name": "spatial",
    "description": "Spatial coordinate information",
}

WORKED_ROOT_JSON = """
{"zarr_format": 3, "node_type": "group", "attributes": {
  "zarr_conventions": ["<multiscales CMO>", "<proj CMO>", "<spatial CMO>"],
  "multiscales": {"resampling_method": "mean", "layout": [
    {"asset": "0", "transform": {"scale": [1.0, 1.0], "translation": [0.0, 0.0]},
     "spatial:shape": [1024, 2048], "spatial:transform": [0.17578125, 0.0, -180.0, 0.0, -0.17578125, 90.0]},
    {"asset": "1", "derived_from": "0", "transform": {"scale": [2.0, 2.0], "translation": [0.0, 0.0]},
     "resampling_method": "mean",
     "spatial:shape": [512, 1024], "spatial:transform": [0.3515625, 0.0, -180.0, 0.0, -0.3515625, 90.0]},
    {"asset": "2", "derived_from": "1", "transform": {"scale": [2.0, 2.0], "translation": [0.0, 0.0]},
     "resampling_method": "mean",
     "spatial:shape": [256, 512], "spatial:transform": [0.703125, 0.0, -180.0, 0.0, -0.703125, 90.0]}]},
  "proj:code": "EPSG:4326",
  "proj:wkt2": "<WKT2>",
  "spatial:dimensions": ["lat", "lon"],
  "spatial:transform": [0.17578125, 0.0, -180.0, 0.0, -0.17578125, 90.0],
  "spatial:shape": [1024, 2048],
  "spatial:bbox": [-180.0, -90.0, 180.0, 90.0],
  "spatial:registration": "pixel"}}
"""

WORKED_LEVEL1_JSON = """
{"zarr_format": 3, "node_type": "group", "attributes": {
  "zarr_conventions": ["<proj CMO>", "<spatial CMO>"],
  "proj:code": "EPSG:4326", "proj:wkt2": "<WKT2>",
  "spatial:dimensions": ["lat", "lon"],
  "spatial:transform": [0.3515625, 0.0, -180.0, 0.0, -0.3515625, 90.0],
  "spatial:shape": [512, 1024], "spatial:bbox": [-180.0, -90.0, 180.0, 90.0],
  "spatial:registration": "pixel"}}
"""

WORKED_TRANSFORM = [0.17578125, 0, -180, 0, -0.17578125, 90]


def _fill(doc_text: str, wkt2: str) -> dict[str, Any]:
    cmos = {
        "<multiscales CMO>": MULTISCALES_CMO,
        "<proj CMO>": PROJ_CMO,
        "<spatial CMO>": SPATIAL_CMO,
    }
    attrs = json.loads(doc_text)["attributes"]
    attrs["zarr_conventions"] = [cmos[c] for c in attrs["zarr_conventions"]]
    attrs["proj:wkt2"] = wkt2
    return attrs


def _types_equal(a: Any, b: Any) -> bool:
    """Equality that also requires identical JSON types (1.0 is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_types_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_types_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _worked(wkt2: str, **extra: Any) -> dict[str, Any]:
    return multiscale_attrs(
        shape=(1024, 2048),
        transform=WORKED_TRANSFORM,
        factors=[1, 2, 4],
        dims=("lat", "lon"),
        crs_wkt2=wkt2,
        crs_code="EPSG:4326",
        **extra,
    )


def test_cmos_match_rules() -> None:
    assert dict(CONVENTIONS["multiscales"]) == MULTISCALES_CMO
    assert dict(CONVENTIONS["proj"]) == PROJ_CMO
    assert dict(CONVENTIONS["spatial"]) == SPATIAL_CMO


def test_worked_example_root_exact(crs: dict[str, dict[str, str]]) -> None:
    wkt2 = crs["EPSG:4326"]["wkt2"]
    built = _worked(wkt2)
    expected = _fill(WORKED_ROOT_JSON, wkt2)
    assert built == expected
    assert _types_equal(built, expected)
    # Key order as in the worked example (cosmetic, but keeps zarr.json diffs readable).
    assert list(built) == list(expected)
    assert "zarr-layer" not in built


def test_worked_example_level_group_exact(crs: dict[str, dict[str, str]]) -> None:
    wkt2 = crs["EPSG:4326"]["wkt2"]
    built = level_group_attrs(
        shape=(1024, 2048),
        transform=WORKED_TRANSFORM,
        factor=2,
        dims=("lat", "lon"),
        crs_wkt2=wkt2,
        crs_code="EPSG:4326",
    )
    expected = _fill(WORKED_LEVEL1_JSON, wkt2)
    assert _types_equal(built, expected)


def test_worked_example_validates_against_official_schemas(crs, schema_errors) -> None:
    wkt2 = crs["EPSG:4326"]["wkt2"]
    root = _worked(wkt2)
    for name in ("multiscales", "proj", "spatial", "zarr-conventions"):
        assert schema_errors(name, root) == []


def test_builders_return_fresh_objects(crs) -> None:
    wkt2 = crs["EPSG:4326"]["wkt2"]
    a = _worked(wkt2)
    a["zarr_conventions"][0]["uuid"] = "x"
    assert _worked(wkt2)["zarr_conventions"][0]["uuid"] == MULTISCALES_CMO["uuid"]
    assert CONVENTIONS["multiscales"]["uuid"] == MULTISCALES_CMO["uuid"]


def test_group_document_wraps() -> None:
    assert group_document({"a": 1}) == {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {"a": 1},
    }


# --- grid of cases: orientation x CRS x factors -------------------------------------------------

# CRS -> (level-0 shape, pixel size, x origin, north edge, south edge)
GRIDS = {
    "EPSG:4326": ((1500, 3000), 0.12, -180.0, 90.0, -90.0),
    "EPSG:3857": ((1000, 1200), 1000.0, -600000.0, 7000000.0, 6000000.0),
    "EPSG:32633": ((1537, 1301), 10.0, 500000.0, 5000000.0, 4984630.0),
}
FACTOR_SETS = [
    *([2**i for i in range(n)] for n in range(1, 9)),
    [1, 4, 16],
    [1, 3, 12, 24],
    [1, 2, 8, 64],
]


def _grid(code: str, orientation: str) -> tuple[tuple[int, int], list[float]]:
    shape, px, x0, north, south = GRIDS[code]
    if orientation == "north-up":
        return shape, [px, 0.0, x0, 0.0, -px, north]
    return shape, [px, 0.0, x0, 0.0, px, south]


@pytest.mark.parametrize("factors", FACTOR_SETS, ids=lambda f: "-".join(map(str, f)))
@pytest.mark.parametrize("code", sorted(GRIDS))
@pytest.mark.parametrize("orientation", ["north-up", "south-up"])
def test_builders_validate_against_every_v01_schema(
    orientation: str, code: str, factors: list[int], crs, schema_errors
) -> None:
    shape, transform = _grid(code, orientation)
    wkt2, authority = crs[code]["wkt2"], crs[code]["code"]
    dims = ("lat", "lon") if code == "EPSG:4326" else ("y", "x")
    root = multiscale_attrs(
        shape=shape,
        transform=transform,
        factors=factors,
        dims=dims,
        crs_wkt2=wkt2,
        crs_code=authority,
        layer_hints={"elevation": ZarrLayerVarConfig(clim=(0, 4000), colormap="viridis")},
    )
    for name in ("multiscales", "proj", "spatial", "zarr-conventions"):
        assert schema_errors(name, root) == [], name
    layout = root["multiscales"]["layout"]
    assert len(layout) == len(factors)
    for i, k in enumerate(factors):
        group = level_group_attrs(
            shape=shape, transform=transform, factor=k, dims=dims, crs_wkt2=wkt2, crs_code=authority
        )
        for name in ("proj", "spatial", "zarr-conventions"):
            assert schema_errors(name, group) == [], (name, i)
        assert group["spatial:transform"] == layout[i]["spatial:transform"]
        assert group["spatial:shape"] == layout[i]["spatial:shape"]
        # analytic geometry: trim shape, scaled pixel, shared origin
        assert layout[i]["spatial:shape"] == [shape[0] // k, shape[1] // k]
        a, b, c, d, e, f = layout[i]["spatial:transform"]
        assert (a, b, c, d, e, f) == (transform[0] * k, 0.0, transform[2], 0.0, transform[4] * k, f)
        assert f == transform[5]
        if i:
            step = float(k // factors[i - 1])
            assert layout[i]["transform"] == {"scale": [step, step], "translation": [0.0, 0.0]}
            assert layout[i]["derived_from"] == layout[i - 1]["asset"]
            xmin, ymin, xmax, ymax = group["spatial:bbox"]
            assert xmin < xmax and ymin < ymax
    flat = flat_attrs(
        shape=shape, transform=transform, dims=dims, crs_wkt2=wkt2, crs_code=authority
    )
    for name in ("proj", "spatial", "zarr-conventions"):
        assert schema_errors(name, flat) == [], name


def test_sparse_factors_scale_is_per_step(crs) -> None:
    root = multiscale_attrs(
        shape=(1024, 1024),
        transform=[10, 0, 0, 0, -10, 10240],
        factors=[1, 4, 16],
        dims=("y", "x"),
        crs_wkt2=crs["EPSG:3857"]["wkt2"],
    )
    scales = [e["transform"]["scale"] for e in root["multiscales"]["layout"]]
    assert scales == [[1.0, 1.0], [4.0, 4.0], [4.0, 4.0]]
    assert [e["spatial:shape"] for e in root["multiscales"]["layout"]] == [
        [1024, 1024],
        [256, 256],
        [64, 64],
    ]
    assert "proj:code" not in root  # no code given -> omitted, wkt2 kept
    assert root["proj:wkt2"] == crs["EPSG:3857"]["wkt2"]


def test_south_up_bbox(crs) -> None:
    geom = level_geometry((180, 360), [1.0, 0.0, -180.0, 0.0, 1.0, -90.0], 4)
    assert geom == LevelGeometry(
        shape=(45, 90),
        transform=(4.0, 0.0, -180.0, 0.0, 4.0, -90.0),
        bbox=(-180.0, -90.0, 180.0, 90.0),
    )


def test_trimmed_level_bbox_shrinks() -> None:
    geom = level_geometry((1537, 1301), [10, 0, 500000, 0, -10, 5000000], 4)
    assert geom.shape == (384, 325)
    assert geom.bbox == (500000.0, 5000000.0 - 10 * 4 * 384, 500000.0 + 10 * 4 * 325, 5000000.0)


def test_affine_like_nine_tuple_accepted() -> None:
    nine = (0.5, 0.0, 10.0, 0.0, -0.5, 20.0, 0.0, 0.0, 1.0)
    assert level_geometry((4, 4), nine, 1).transform == (0.5, 0.0, 10.0, 0.0, -0.5, 20.0)


@given(
    h=st.integers(1, 5000),
    w=st.integers(1, 5000),
    px=st.floats(1e-6, 1e5),
    c=st.floats(-1e7, 1e7),
    f=st.floats(-1e7, 1e7),
    south_up=st.booleans(),
    k=st.integers(1, 64),
)
def test_level_geometry_properties(h, w, px, c, f, south_up, k) -> None:
    if h // k < 1 or w // k < 1:
        with pytest.raises(ValueError, match="empty level"):
            level_geometry((h, w), [px, 0, c, 0, px if south_up else -px, f], k)
        return
    e = px if south_up else -px
    geom = level_geometry((h, w), [px, 0, c, 0, e, f], k)
    base = level_geometry((h, w), [px, 0, c, 0, e, f], 1)
    assert geom.shape == (h // k, w // k)
    assert geom.transform[2] == c and geom.transform[5] == f
    assert geom.transform[0] == px * k and geom.transform[4] == e * k
    xmin, ymin, xmax, ymax = geom.bbox
    bxmin, bymin, bxmax, bymax = base.bbox
    assert xmin == c == bxmin
    assert (ymin if south_up else ymax) == f
    tol = 1e-9 * max(1.0, abs(c), abs(f), px * max(h, w))
    assert xmax <= bxmax + tol and ymin >= bymin - tol and ymax <= bymax + tol
    assert math.isclose(xmax - xmin, px * k * (w // k), rel_tol=1e-9, abs_tol=tol)


# --- hints ---------------------------------------------------------------------------------------


def test_layer_hints_only_when_given(crs) -> None:
    wkt2 = crs["EPSG:4326"]["wkt2"]
    assert "zarr-layer" not in _worked(wkt2, layer_hints=None)
    assert "zarr-layer" not in _worked(wkt2, layer_hints={})
    root = _worked(
        wkt2,
        layer_hints={
            "elevation": ZarrLayerVarConfig(clim=(-100, 4000), colormap="terrain"),
            "mask": ZarrLayerVarConfig(),
        },
    )
    assert root["zarr-layer"] == {
        "elevation": {"clim": [-100.0, 4000.0], "colormap": "terrain"},
        "mask": {},
    }
    assert list(root)[-1] == "zarr-layer"
    assert layer_hints_attrs({"t": ZarrLayerVarConfig(colormap="magma")}) == {
        "zarr-layer": {"t": {"colormap": "magma"}}
    }


def test_level_methods(crs) -> None:
    wkt2 = crs["EPSG:4326"]["wkt2"]
    root = _worked(wkt2, method="mean", level_methods=["mode", "max"])
    assert [e.get("resampling_method") for e in root["multiscales"]["layout"]] == [
        None,
        "mode",
        "max",
    ]
    assert root["multiscales"]["resampling_method"] == "mean"
    same = _worked(wkt2, method="mean", level_methods=["ignored", "mode", "max"])
    assert same == root


def test_custom_assets(crs) -> None:
    root = _worked(crs["EPSG:4326"]["wkt2"], assets=["full", "half", "quarter"])
    layout = root["multiscales"]["layout"]
    assert [e["asset"] for e in layout] == ["full", "half", "quarter"]
    assert [e.get("derived_from") for e in layout] == [None, "full", "half"]


# --- errors ------------------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "shape": (1024, 2048),
    "transform": WORKED_TRANSFORM,
    "factors": [1, 2, 4],
    "dims": ("lat", "lon"),
    "crs_wkt2": 'GEOGCRS["WGS 84"]',
    "crs_code": "EPSG:4326",
}

ERROR_CASES = [
    ({"shape": (0, 10)}, r"shape must be positive, got \(0, 10\)"),
    ({"shape": (-3, 10)}, r"shape must be positive"),
    ({"shape": (10,)}, r"shape must be a 2-sequence \(height, width\)"),
    ({"shape": (10.5, 10)}, r"shape must hold integers"),
    ({"factors": [2, 4]}, r"factors must start at 1 .*prepend 1, e\.g\. \[1, 2, 4\]"),
    ({"factors": [1, 4, 2]}, r"strictly increasing, got 2 after 4 in \[1, 4, 2\]"),
    ({"factors": [1, 2, 2]}, r"strictly increasing, got 2 after 2"),
    ({"factors": [1, 2, 3]}, r"factor 3 is not a multiple of the previous factor 2"),
    ({"factors": []}, r"factors must be a non-empty sequence"),
    ({"factors": [1, 2.0]}, r"factors\[1\] must be an integer >= 1, got 2\.0"),
    (
        {"factors": [1, 2, 4096]},
        r"factor 4096 would make an empty level.*\(0, 0\).*no larger than 1024",
    ),
    ({"transform": [0, 0, -180, 0, -0.1, 90]}, r"degenerate transform .*a=0\.0"),
    ({"transform": [0.1, 0, -180, 0, 0, 90]}, r"degenerate transform .*e=0\.0"),
    ({"transform": [0.1, 0.01, -180, 0, -0.1, 90]}, r"rotated/sheared transform .*b=0\.01"),
    ({"transform": [0.1, 0, -180, 0.02, -0.1, 90]}, r"rotated/sheared transform .*d=0\.02"),
    ({"transform": [0.1, 0, -180, 0, -0.1]}, r"transform must have 6 entries .*got 5"),
    ({"transform": [0.1, 0, float("nan"), 0, -0.1, 90]}, r"transform entries must be finite"),
    ({"transform": "0.1 0 0 0 -0.1 0"}, r"transform must be a sequence \[a, b, c, d, e, f\]"),
    ({"dims": "latlon"}, r"dims must be a 2-sequence of dimension names ordered \[y, x\]"),
    ({"dims": ("time", "lat", "lon")}, r"dims must be a 2-sequence .*'time'"),
    ({"dims": ("lat", "lat")}, r"dims must name two different dimensions"),
    ({"dims": ("lat", "")}, r"dims must hold two non-empty strings"),
    ({"crs_wkt2": ""}, r"crs_wkt2 must be a non-empty WKT2 string"),
    ({"crs_wkt2": 'GEOGCS["WGS 84"]'}, r"crs_wkt2 looks like WKT1"),
    ({"crs_code": "4326"}, r"crs_code must look like 'AUTHORITY:CODE' .*got '4326'"),
    ({"method": ""}, r"method must be a non-empty string"),
    ({"level_methods": ["mode"]}, r"level_methods must give one method per coarsened level \(2\)"),
    ({"level_methods": ["x", "mode", ""]}, r"level_methods\[2\] must be a non-empty string"),
    ({"assets": ["a", "b"]}, r"assets must name one group per factor \(3\)"),
    ({"assets": ["a", "/b", "c"]}, r"asset '/b' is not a relative group path"),
    ({"assets": ["a", "../b", "c"]}, r"asset '\.\./b' is not a relative group path"),
    ({"assets": ["a", "a", "c"]}, r"assets must be unique"),
    ({"layer_hints": {"v": {"clim": [0, 1]}}}, r"layer hint for 'v' must be a ZarrLayerVarConfig"),
]


@pytest.mark.parametrize(("change", "message"), ERROR_CASES, ids=[m for _, m in ERROR_CASES])
def test_multiscale_attrs_errors(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        multiscale_attrs(**{**GOOD, **change})


@pytest.mark.parametrize(
    ("factor", "message"),
    [
        (0, r"factor must be an integer >= 1 .*got 0"),
        (True, r"factor must be an integer >= 1 .*got True"),
        (2048, r"factor 2048 would make an empty level"),
    ],
)
def test_level_group_attrs_errors(factor: Any, message: str) -> None:
    kwargs = {k: v for k, v in GOOD.items() if k != "factors"}
    with pytest.raises(ValueError, match=message):
        level_group_attrs(**kwargs, factor=factor)


def test_flat_attrs_errors() -> None:
    kwargs = {k: v for k, v in GOOD.items() if k != "factors"}
    with pytest.raises(ValueError, match=r"shape must be positive"):
        flat_attrs(**{**kwargs, "shape": (0, 1)})
    with pytest.raises(ValueError, match=r"layer hint keys must be variable names"):
        flat_attrs(**kwargs, layer_hints={1: ZarrLayerVarConfig()})  # type: ignore[dict-item]


def test_level_geometry_errors() -> None:
    with pytest.raises(ValueError, match=r"degenerate transform"):
        level_geometry((2, 2), [1, 0, 0, 0, 0, 0], 1)
    with pytest.raises(ValueError, match=r"factor must be an integer >= 1 .*got 1\.5"):
        level_geometry((2, 2), [1, 0, 0, 0, -1, 0], 1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clim": (1, 1)}, r"clim low must be below high, got \(1, 1\)"),
        ({"clim": (5, 1)}, r"clim low must be below high"),
        ({"clim": (0, float("inf"))}, r"clim must hold two finite numbers"),
        ({"clim": (0, 1, 2)}, r"clim must be a pair \(low, high\)"),
        ({"clim": "0,1"}, r"clim must be a pair"),
        ({"colormap": ""}, r"colormap must be a non-empty name"),
        ({"colormap": 3}, r"colormap must be a non-empty name"),
    ],
)
def test_zarr_layer_var_config_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ZarrLayerVarConfig(**kwargs)


def test_zarr_layer_var_config_normalises() -> None:
    cfg = ZarrLayerVarConfig(clim=[0, 10], colormap="viridis")  # type: ignore[arg-type]
    assert cfg.clim == (0.0, 10.0)
    assert isinstance(cfg.clim[0], float)
    with pytest.raises(AttributeError):
        cfg.colormap = "magma"  # type: ignore[misc]


def test_numpy_inputs_accepted(crs) -> None:
    np = pytest.importorskip("numpy")
    root = multiscale_attrs(
        shape=np.zeros((1024, 2048)).shape,
        transform=np.array(WORKED_TRANSFORM, dtype=np.float64),
        factors=np.array([1, 2, 4]),
        dims=np.array(["lat", "lon"]).tolist(),
        crs_wkt2=crs["EPSG:4326"]["wkt2"],
        crs_code="EPSG:4326",
    )
    assert _types_equal(root, _worked(crs["EPSG:4326"]["wkt2"]))
    geom = level_geometry(
        (np.int64(10), np.int32(20)), np.array([1.0, 0, 0, 0, -1, 10]), np.int64(2)
    )
    assert geom.shape == (5, 10) and type(geom.shape[0]) is int
    assert all(type(v) is float for v in geom.transform + geom.bbox)


def test_layer_hints_attrs_errors() -> None:
    with pytest.raises(ValueError, match=r"layer hints must be a mapping of variable name"):
        layer_hints_attrs([("v", ZarrLayerVarConfig())])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"layer hint keys must be variable names"):
        layer_hints_attrs({"": ZarrLayerVarConfig()})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], r"'zarr-layer' must be an object of per-variable hints"),
        ({"v": 1}, r"'zarr-layer'\.v must be an object"),
        ({"v": {"clim": "0,1"}}, r"'zarr-layer'\.v\.clim must be \[low, high\]"),
        ({"v": {"colormap": ""}}, r"colormap must be a non-empty name"),
    ],
)
def test_parse_layer_hints_errors(value: Any, message: str) -> None:
    from topozarr_metadata.hints import parse_layer_hints

    with pytest.raises(ValueError, match=message):
        parse_layer_hints(value)


def test_cmo_unknown_name() -> None:
    from topozarr_metadata.conventions import cmo

    assert cmo("proj") == PROJ_CMO
    with pytest.raises(ValueError, match=r"unknown convention 'geo-proj'; use one of"):
        cmo("geo-proj")
