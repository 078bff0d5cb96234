"""validate(): valid output has no findings; each corrupted rule is reported."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from topozarr_metadata import (
    Finding,
    ZarrLayerVarConfig,
    flat_attrs,
    group_document,
    level_group_attrs,
    multiscale_attrs,
    validate,
)

SHAPE = (1024, 2048)
TRANSFORM = [0.17578125, 0.0, -180.0, 0.0, -0.17578125, 90.0]
FACTORS = [1, 2, 4]
DIMS = ("lat", "lon")


@pytest.fixture
def store(crs) -> dict[str, Any]:
    """Root attrs, level group attrs and dimension_names of the worked example in docs/metadata.md."""
    wkt2 = crs["EPSG:4326"]["wkt2"]
    common = {"shape": SHAPE, "transform": TRANSFORM, "dims": DIMS, "crs_wkt2": wkt2}
    root = multiscale_attrs(
        **common,
        factors=FACTORS,
        crs_code="EPSG:4326",
        layer_hints={"elevation": ZarrLayerVarConfig(clim=(0, 1), colormap="viridis")},
    )
    levels = {
        str(i): level_group_attrs(**common, factor=k, crs_code="EPSG:4326")
        for i, k in enumerate(FACTORS)
    }
    names: dict[str, list[str]] = {}
    for i in range(len(FACTORS)):
        names[f"{i}/elevation"] = ["lat", "lon"]
        names[f"{i}/lat"] = ["lat"]
        names[f"{i}/lon"] = ["lon"]
    return {"attrs": root, "level_attrs": levels, "dimension_names": names}


def run(store: dict[str, Any]) -> list[Finding]:
    return validate(
        store["attrs"], level_attrs=store["level_attrs"], dimension_names=store["dimension_names"]
    )


def paths(findings: list[Finding]) -> list[str]:
    return [f.path for f in findings]


def test_valid_store_has_no_findings(store) -> None:
    assert run(store) == []
    assert validate(store["attrs"]) == []
    assert validate(group_document(store["attrs"])) == []


def test_flat_store_has_no_findings(crs) -> None:
    attrs = flat_attrs(
        shape=(10, 20),
        transform=[1, 0, 0, 0, 1, 0],
        dims=("y", "x"),
        crs_wkt2=crs["EPSG:3857"]["wkt2"],
        crs_code="EPSG:3857",
        layer_hints={"t": ZarrLayerVarConfig(colormap="magma")},
    )
    assert validate(attrs, dimension_names={"t": ["time", "y", "x"], "y": ["y"]}) == []
    bad = copy.deepcopy(attrs)
    bad["spatial:bbox"] = [0.0, 0.0, 20.0, 11.0]
    assert paths(validate(bad)) == ["#/spatial:bbox"]
    assert paths(validate(attrs, dimension_names={"t": ["time", "row", "x"]})) == [
        "t#/dimension_names"
    ]
    # Beside a raster, a profile along x and time bounds are fine; alone, they are flagged.
    beside = {"t": ["time", "y", "x"], "p": ["time", "x"], "time_bnds": ["time", "nv"]}
    assert validate(attrs, dimension_names=beside) == []
    alone = {"p": ["time", "x"], "time_bnds": ["time", "nv"]}
    assert paths(validate(attrs, dimension_names=alone)) == [
        "p#/dimension_names",
        "time_bnds#/dimension_names",
    ]


def test_finding_is_frozen_and_printable() -> None:
    f = Finding("#/a", "b")
    assert str(f) == "#/a: b"
    with pytest.raises(AttributeError):
        f.path = "x"  # type: ignore[misc]


# --- one corruption per rule -------------------------------------------------------------------


def _wrong_scale(s: dict[str, Any]) -> None:
    s["attrs"]["multiscales"]["layout"][1]["transform"]["scale"] = [3.0, 3.0]


def _wrong_root_bbox(s: dict[str, Any]) -> None:
    s["attrs"]["spatial:bbox"] = [-180.0, -90.0, 180.0, 89.0]


def _wrong_level_bbox(s: dict[str, Any]) -> None:
    s["level_attrs"]["2"]["spatial:bbox"] = [-180.0, -90.0, 179.0, 90.0]


def _translation_half(s: dict[str, Any]) -> None:
    s["attrs"]["multiscales"]["layout"][1]["transform"]["translation"] = [0.5, 0.5]


def _missing_uuid(s: dict[str, Any]) -> None:
    del s["attrs"]["zarr_conventions"][0]["uuid"]


def _draft_url(s: dict[str, Any]) -> None:
    s["attrs"]["zarr_conventions"][0]["schema_url"] = (
        "https://raw.githubusercontent.com/zarr-conventions/multiscales/refs/tags/v1/schema.json"
    )


def _draft_name(s: dict[str, Any]) -> None:
    s["level_attrs"]["1"]["zarr_conventions"][0]["name"] = "proj:"


def _dims_not_in_dimension_names(s: dict[str, Any]) -> None:
    s["dimension_names"]["1/elevation"] = ["y", "x"]


def _shape_vs_factor(s: dict[str, Any]) -> None:
    s["attrs"]["multiscales"]["layout"][1]["spatial:shape"] = [511, 1024]


def _origin_not_shared(s: dict[str, Any]) -> None:
    s["attrs"]["multiscales"]["layout"][2]["spatial:transform"][2] = -179.0


def _root_transform_not_layout0(s: dict[str, Any]) -> None:
    s["attrs"]["spatial:transform"] = [0.2, 0.0, -180.0, 0.0, -0.2, 90.0]


def _root_shape_not_layout0(s: dict[str, Any]) -> None:
    s["attrs"]["spatial:shape"] = [1000, 2048]


def _non_integer_factor(s: dict[str, Any]) -> None:
    layout = s["attrs"]["multiscales"]["layout"]
    layout[1]["spatial:transform"] = [0.3, 0.0, -180.0, 0.0, -0.3, 90.0]


def _level_finer_than_base(s: dict[str, Any]) -> None:
    layout = s["attrs"]["multiscales"]["layout"]
    layout[0], layout[2] = layout[2], layout[0]


def _unknown_derived_from(s: dict[str, Any]) -> None:
    s["attrs"]["multiscales"]["layout"][2]["derived_from"] = "nope"


def _no_derived_from(s: dict[str, Any]) -> None:
    entry = s["attrs"]["multiscales"]["layout"][2]
    del entry["derived_from"]


def _base_scale_not_one(s: dict[str, Any]) -> None:
    s["attrs"]["multiscales"]["layout"][0]["transform"]["scale"] = [2.0, 2.0]


def _missing_level_transform(s: dict[str, Any]) -> None:
    del s["attrs"]["multiscales"]["layout"][1]["spatial:transform"]


def _rotated(s: dict[str, Any]) -> None:
    s["attrs"]["multiscales"]["layout"][2]["spatial:transform"][1] = 0.1


def _sign_flip(s: dict[str, Any]) -> None:
    t = s["attrs"]["multiscales"]["layout"][2]["spatial:transform"]
    t[4] = -t[4]


def _proj_undeclared(s: dict[str, Any]) -> None:
    del s["attrs"]["zarr_conventions"][1]


def _bad_proj_code(s: dict[str, Any]) -> None:
    s["attrs"]["proj:code"] = "4326"


def _bad_hints(s: dict[str, Any]) -> None:
    s["attrs"]["zarr-layer"] = {"elevation": {"clim": [5, 1]}}


def _stale_multiscales_in_level(s: dict[str, Any]) -> None:
    s["level_attrs"]["1"]["multiscales"] = copy.deepcopy(s["attrs"]["multiscales"])


def _level_proj_missing(s: dict[str, Any]) -> None:
    del s["level_attrs"]["1"]["proj:code"]


def _level_group_not_an_asset(s: dict[str, Any]) -> None:
    s["level_attrs"]["9"] = s["level_attrs"].pop("2")


def _level_shape_not_entry(s: dict[str, Any]) -> None:
    s["level_attrs"]["1"]["spatial:shape"] = [512, 1000]


def _level_dims_differ(s: dict[str, Any]) -> None:
    s["level_attrs"]["1"]["spatial:dimensions"] = ["lon", "lat"]


def _level_schema_error(s: dict[str, Any]) -> None:
    s["level_attrs"]["1"]["spatial:shape"] = [512]


def _dim_order_differs_between_levels(s: dict[str, Any]) -> None:
    s["dimension_names"]["2/elevation"] = ["lon", "lat"]


def _layout_schema_error(s: dict[str, Any]) -> None:
    s["attrs"]["multiscales"]["layout"][1]["asset"] = "/abs"


CORRUPTIONS: list[tuple[Callable[[dict[str, Any]], None], str, str]] = [
    (_wrong_scale, "#/multiscales/layout/1/transform/scale", "pixel-size ratio"),
    (_wrong_root_bbox, "#/spatial:bbox", "not the extent"),
    (_wrong_level_bbox, "2#/spatial:bbox", "not the extent"),
    (_translation_half, "#/multiscales/layout/1/transform/translation", r"must be [0.0, 0.0]"),
    (_missing_uuid, "#/zarr_conventions", "[multiscales schema]"),
    (_missing_uuid, "#/zarr_conventions/0", "lacks 'uuid'"),
    (_draft_url, "#/zarr_conventions/0", "draft URL"),
    (_draft_url, "#/zarr_conventions", "[multiscales schema]"),
    (_draft_name, "1#/zarr_conventions/0", "draft name"),
    (_dims_not_in_dimension_names, "1/elevation#/dimension_names", "missing ['lat', 'lon']"),
    (_shape_vs_factor, "#/multiscales/layout/1/spatial:shape", "expected [512, 1024]"),
    (_origin_not_shared, "#/multiscales/layout/2/spatial:transform", "share the origin"),
    (_root_transform_not_layout0, "#/spatial:transform", "differs from layout[0]"),
    (_root_shape_not_layout0, "#/spatial:shape", "differs from layout[0]"),
    (_non_integer_factor, "#/multiscales/layout/1/spatial:transform", "not a whole number"),
    (_level_finer_than_base, "#/multiscales/layout/1", "finer than layout[0]"),
    (_unknown_derived_from, "#/multiscales/layout/2/derived_from", "not an asset"),
    (_no_derived_from, "#/multiscales/layout/2", "no derived_from"),
    (_base_scale_not_one, "#/multiscales/layout/0/transform/scale", "must be [1.0, 1.0]"),
    (_missing_level_transform, "#/multiscales/layout/1", "lacks spatial:transform"),
    (_rotated, "#/multiscales/layout/2/spatial:transform", "rotated transform"),
    (_sign_flip, "#/multiscales/layout/2/spatial:transform", "sign differs"),
    (_proj_undeclared, "#/zarr_conventions", "proj convention is not declared"),
    (_bad_proj_code, "#/proj:code", "[proj schema]"),
    (_bad_hints, "#/zarr-layer", "clim low must be below high"),
    (_stale_multiscales_in_level, "1#/multiscales", "stale"),
    (_level_proj_missing, "1#/proj:code", "restate the root's proj"),
    (_level_group_not_an_asset, "9#", "not a layout asset"),
    (_level_shape_not_entry, "1#/spatial:shape", "differs from its layout entry"),
    (_level_dims_differ, "1#/spatial:dimensions", "differs from the root"),
    (_level_schema_error, "1#/spatial:shape", "[spatial schema]"),
    (_dim_order_differs_between_levels, "2/elevation#/dimension_names", "same order"),
    (_layout_schema_error, "#/multiscales/layout/1/asset", "[multiscales schema]"),
]


@pytest.mark.parametrize(
    ("corrupt", "path", "text"),
    CORRUPTIONS,
    ids=[f"{c.__name__.strip('_')}-{p}" for c, p, _ in CORRUPTIONS],
)
def test_each_corruption_is_reported(
    store: dict[str, Any], corrupt: Callable[[dict[str, Any]], None], path: str, text: str
) -> None:
    corrupt(store)
    findings = run(store)
    matching = [f for f in findings if f.path == path and text in f.message]
    assert matching, "\n".join(map(str, findings)) or "no findings"


def test_schema_sees_missing_uuid_independently(store, schema_errors) -> None:
    """Cross-check with the shared schema file: the corruption is a real schema violation."""
    _missing_uuid(store)
    assert schema_errors("multiscales", store["attrs"])


def test_projjson_is_not_fetched(store) -> None:
    store["attrs"]["proj:projjson"] = {"type": "GeographicCRS", "name": "WGS 84"}
    store["level_attrs"] = {}
    findings = validate(store["attrs"])
    assert findings == []
    store["attrs"]["proj:projjson"] = "not an object"
    assert "#/proj:projjson" in paths(validate(store["attrs"]))


def test_non_mapping_input() -> None:
    assert paths(validate([])) == ["#"]  # type: ignore[arg-type]


# --- official examples --------------------------------------------------------------------------


def test_official_v01_spatial_multiscales_example_is_clean(example) -> None:
    doc = example("spatial-v0.1/multiscales.json")
    assert validate(doc) == []


@pytest.mark.parametrize(
    "name",
    [
        "multiscales-draft-v1/power-of-2-pyramid.json",
        "multiscales-draft-v1/geospatial-pyramid.json",
        "geo-proj-draft-v1/multiscales.json",
    ],
)
def test_draft_examples_are_flagged(example, name: str) -> None:
    doc = example(name)
    findings = validate(doc)
    assert any("draft" in f.message for f in findings), findings


# --- property: anything the builders accept validates cleanly ----------------------------------


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    h=st.integers(1, 3000),
    w=st.integers(1, 3000),
    px=st.sampled_from([0.1, 0.25, 1 / 3, 10.0, 30.0, 1000.0, 0.0001]),
    c=st.floats(-1e6, 1e6, allow_nan=False),
    f=st.floats(-1e6, 1e6, allow_nan=False),
    south_up=st.booleans(),
    steps=st.lists(st.sampled_from([2, 3, 4]), max_size=7),
)
def test_builder_output_always_validates(crs, h, w, px, c, f, south_up, steps) -> None:
    factors = [1]
    for s in steps:
        if min(h, w) // (factors[-1] * s) < 1:
            break
        factors.append(factors[-1] * s)
    transform = [px, 0.0, c, 0.0, px if south_up else -px, f]
    common = {
        "shape": (h, w),
        "transform": transform,
        "dims": ("y", "x"),
        "crs_wkt2": crs["EPSG:32633"]["wkt2"],
        "crs_code": "EPSG:32633",
    }
    root = multiscale_attrs(**common, factors=factors)
    levels = {str(i): level_group_attrs(**common, factor=k) for i, k in enumerate(factors)}
    names = {f"{i}/v": ["y", "x"] for i in range(len(factors))}
    assert validate(root, level_attrs=levels, dimension_names=names) == []


def test_node_registration_bbox_spans_cell_centres(store) -> None:
    attrs = store["attrs"]
    attrs["spatial:registration"] = "node"
    # pixel-registration bbox is now wrong: node bbox spans (H-1, W-1) cells
    assert "#/spatial:bbox" in paths(validate(attrs))
    attrs["spatial:bbox"] = [-180.0, -90.0 + 0.17578125, 180.0 - 0.17578125, 90.0]
    assert validate(attrs) == []


def test_non_object_layout_entry_reported_by_schema(store) -> None:
    store["attrs"]["multiscales"]["layout"][0] = "0"
    findings = validate(store["attrs"])
    assert any(
        f.path == "#/multiscales/layout/0" and "[multiscales schema]" in f.message for f in findings
    ), findings


def test_unknown_conventions_are_allowed(store) -> None:
    store["attrs"]["zarr_conventions"].append(
        {"uuid": "2dc8d146-3932-4e08-8542-06aa0e826508", "name": "other"}
    )
    assert run(store) == []
    store["attrs"]["zarr_conventions"].append("not an object")
    assert any(f.path.startswith("#/zarr_conventions/4") for f in run(store))
