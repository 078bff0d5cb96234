"""Packaging: stdlib-only import, no runtime deps, version, shipped schemas."""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import topozarr_metadata

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"
SCHEMA_NAMES = ("multiscales", "proj", "spatial", "zarr-conventions")


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


def _recorded_digests() -> dict[str, str]:
    """File name -> SHA-256 from the digest table of schemas/PROVENANCE.md."""
    text = (resources.files("topozarr_metadata") / "schemas" / "PROVENANCE.md").read_text("utf-8")
    return dict(re.findall(r"^\| `([\w.-]+\.json)` \| `([0-9a-f]{64})` \|$", text, flags=re.M))


def test_shipped_schemas_match_the_digests_in_provenance() -> None:
    shipped = resources.files("topozarr_metadata") / "schemas"
    recorded = _recorded_digests()
    names = sorted(p.name for p in shipped.iterdir() if p.name.endswith(".json"))
    assert sorted(recorded) == names
    assert names == sorted(f"{n}.schema.json" for n in SCHEMA_NAMES)
    for name in names:
        assert hashlib.sha256((shipped / name).read_bytes()).hexdigest() == recorded[name], name
