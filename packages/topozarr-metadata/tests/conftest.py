"""Shared fixtures: CRS strings, the official v0.1 schemas and examples, all inside the repo."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

HERE = Path(__file__).parent
# Public example documents of the conventions, copied verbatim (see data/PROVENANCE.md).
EXAMPLES = HERE / "data" / "examples"
# The shipped schemas are the official v0.1 files: test_package.py checks their SHA-256
# against the digests recorded in schemas/PROVENANCE.md, so they serve as the reference here.
SCHEMA_FILES = {
    "multiscales": "multiscales.schema.json",
    "proj": "proj.schema.json",
    "spatial": "spatial.schema.json",
    "zarr-conventions": "zarr-conventions.schema.json",
}


def shipped_schema(name: str) -> bytes:
    """Bytes of one schema shipped as package data of topozarr_metadata."""
    return (resources.files("topozarr_metadata") / "schemas" / SCHEMA_FILES[name]).read_bytes()


@pytest.fixture(scope="session")
def crs() -> dict[str, dict[str, str]]:
    """EPSG code -> {"code", "wkt2"} written with pyproj into tests/data."""
    return json.loads((HERE / "data" / "crs_wkt2.json").read_text())


@pytest.fixture(scope="session")
def example() -> Callable[[str], dict[str, Any]]:
    """Load one official example document from tests/data/examples by relative path."""

    def load(name: str) -> dict[str, Any]:
        return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    return load


@pytest.fixture(scope="session")
def schema_errors() -> Callable[[str, dict[str, Any]], list[str]]:
    """Validate a group node document against one official v0.1 schema; return error texts.

    A plain ``Draft202012Validator`` over the schema files, independent of
    :func:`topozarr_metadata.validate`'s own schema machinery.
    """
    validators = {
        name: Draft202012Validator(json.loads(shipped_schema(name))) for name in SCHEMA_FILES
    }

    def check(name: str, attrs: dict[str, Any]) -> list[str]:
        doc = {"zarr_format": 3, "node_type": "group", "attributes": attrs}
        return [f"{list(e.absolute_path)}: {e.message}" for e in validators[name].iter_errors(doc)]

    return check
