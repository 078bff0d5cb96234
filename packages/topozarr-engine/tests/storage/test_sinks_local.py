"""The shard-sink conformance tests on a local directory, for both io paths (the S3 runs are in
the root tests/test_s3_sinks.py, next to the S3 server)."""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _sink_conformance import SECRET, ShardSinkTests
from topozarr_engine.storage import StorageTarget, resolve_target


class LocalSinkTests(ShardSinkTests):
    @pytest.fixture
    def location(self, tmp_path: Any) -> Any:
        return str(tmp_path / "out.zarr")

    @pytest.fixture
    def broken(self, location: Any, monkeypatch: pytest.MonkeyPatch) -> StorageTarget:
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        chunks = pathlib.Path(location) / "a" / "c"
        chunks.parent.mkdir(parents=True, exist_ok=True)
        chunks.write_bytes(b"a file where the shard directory goes")
        return resolve_target(location, check=False)


class TestZarrPathLocal(LocalSinkTests):
    native = False


class TestNativeLocal(LocalSinkTests):
    native = True
