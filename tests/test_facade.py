"""Every import path of the documented API works, and names the members' objects."""

from __future__ import annotations

import subprocess
import sys

import pytest
import topozarr_engine
import topozarr_metadata
import topozarr_plan

DOCUMENTED_PATHS = [
    ("topozarr", "create_pyramid", topozarr_plan.create_pyramid),
    ("topozarr", "Pyramid", topozarr_plan.Pyramid),
    ("topozarr", "ZarrLayerVarConfig", topozarr_metadata.ZarrLayerVarConfig),
    ("topozarr", "CoarseningMethod", topozarr_plan.CoarseningMethod),
    ("topozarr", "recommend_encoding", topozarr_plan.recommend_encoding),
    ("topozarr", "attach_geozarr_metadata", topozarr_plan.attach_geozarr_metadata),
    ("topozarr.coarsen", "create_pyramid", topozarr_plan.create_pyramid),
    ("topozarr.coarsen", "CoarseningMethod", topozarr_plan.CoarseningMethod),
    ("topozarr.coarsen", "DEFAULT_CHUNK_BYTES", topozarr_plan.DEFAULT_CHUNK_BYTES),
    ("topozarr.coarsen", "DEFAULT_CHUNKS_PER_SHARD", topozarr_plan.DEFAULT_CHUNKS_PER_SHARD),
    ("topozarr.pyramid", "Pyramid", topozarr_plan.Pyramid),
    ("topozarr.metadata", "ZarrLayerVarConfig", topozarr_metadata.ZarrLayerVarConfig),
    ("topozarr.engine", "downsample_level", topozarr_engine.downsample_level),
    ("topozarr.engine", "copy_array", topozarr_engine.copy_array),
    ("topozarr.engine", "DEFAULT_MAX_REGION_BYTES", topozarr_engine.DEFAULT_MAX_REGION_BYTES),
]


@pytest.mark.parametrize(("module", "name", "expected"), DOCUMENTED_PATHS)
def test_documented_import_path(module: str, name: str, expected: object) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {module} import {name}", namespace)
    assert namespace[name] is expected


def test_unknown_attribute_raises_attribute_error() -> None:
    import topozarr

    with pytest.raises(AttributeError, match="no_such_name"):
        _ = topozarr.no_such_name  # type: ignore[attr-defined]


def test_cli_and_package_import_without_xarray() -> None:
    # `topozarr info`/`validate` and --help must not pay for xarray (seconds of start-up).
    code = "import sys, topozarr, topozarr.cli; sys.exit('xarray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
