"""Shared fixtures: CRS strings, the shared v0.1 schemas, and a worked-example builder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

HERE = Path(__file__).parent
# <repo>/packages/topozarr-metadata/tests -> <repo>/../shared/specs
SHARED_SPECS = HERE.parents[2].parent / "shared" / "specs"
V01_SCHEMAS = {
    "multiscales": SHARED_SPECS / "multiscales" / "schema.json",
    "proj": SHARED_SPECS / "proj" / "schema.json",
    "spatial": SHARED_SPECS / "spatial" / "schema.json",
    "zarr-conventions": SHARED_SPECS / "zarr-conventions-spec" / "zarr-conventions-schema.json",
}


@pytest.fixture(scope="session")
def crs() -> dict[str, dict[str, str]]:
    """EPSG code -> {"code", "wkt2"} written with pyproj into tests/data."""
    return json.loads((HERE / "data" / "crs_wkt2.json").read_text())


@pytest.fixture(scope="session")
def shared_specs() -> Path:
    assert SHARED_SPECS.is_dir(), f"shared specs not found at {SHARED_SPECS}"
    return SHARED_SPECS


@pytest.fixture(scope="session")
def v01_schema_paths(shared_specs: Path) -> dict[str, Path]:
    """Convention name -> shared v0.1 schema file."""
    return dict(V01_SCHEMAS)


@pytest.fixture(scope="session")
def schema_errors(shared_specs: Path) -> Callable[[str, dict[str, Any]], list[str]]:
    """Validate a group node document against one shared v0.1 schema; return error texts."""
    validators = {
        name: Draft202012Validator(json.loads(path.read_text()))
        for name, path in V01_SCHEMAS.items()
    }

    def check(name: str, attrs: dict[str, Any]) -> list[str]:
        doc = {"zarr_format": 3, "node_type": "group", "attributes": attrs}
        return [f"{list(e.absolute_path)}: {e.message}" for e in validators[name].iter_errors(doc)]

    return check
