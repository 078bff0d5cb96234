"""Packaging: stdlib-only import, no runtime deps, version, shipped schemas."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import topozarr_metadata

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


def test_import_pulls_in_no_third_party_module() -> None:
    code = (
        "import sys, topozarr_metadata\n"
        "from topozarr_metadata import *\n"
        "bad = sorted(m for m in ('jsonschema', 'referencing', 'numpy', 'xarray', 'pyproj')"
        " if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_runtime_dependencies() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert project.get("dependencies", []) == []
    assert any(r.startswith("jsonschema") for r in project["optional-dependencies"]["validate"])
    assert importlib.metadata.requires("topozarr-metadata") in (None, []) or all(
        "extra ==" in r for r in importlib.metadata.requires("topozarr-metadata") or []
    )


def test_version_matches_dist() -> None:
    assert topozarr_metadata.__version__ == importlib.metadata.version("topozarr-metadata")


def test_shipped_schemas_are_the_shared_v01_files(v01_schema_paths: dict[str, Path]) -> None:
    shipped = resources.files("topozarr_metadata") / "schemas"
    for name, shared in v01_schema_paths.items():
        assert (shipped / f"{name}.schema.json").read_bytes() == shared.read_bytes(), name
    assert (shipped / "PROVENANCE.md").is_file()
