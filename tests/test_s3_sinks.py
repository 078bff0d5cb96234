"""The shard-sink conformance tests of topozarr-engine (``tests/storage/_sink_conformance.py``)
against S3 (the SeaweedFS server of ``s3server.py``), for both io paths and both ways a user
names an S3 target: an ``s3://`` URL and an obstore ``S3Store`` with explicit credentials."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(
    0, str(Path(__file__).resolve().parent.parent / "packages/topozarr-engine/tests/storage")
)
from _sink_conformance import SECRET, ShardSinkTests
from topozarr_engine.storage import StorageTarget, resolve_target

pytestmark = pytest.mark.s3
obstore = pytest.importorskip("obstore")


def _aws_env(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)


class UrlSinkTests(ShardSinkTests):
    """``s3://bucket/prefix``: configured from the ``AWS_*`` environment."""

    @pytest.fixture
    def location(self, s3_server: Any, s3_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Any:
        _aws_env(s3_server, monkeypatch)
        return s3_server.url(s3_prefix)

    @pytest.fixture
    def broken(self, location: Any, monkeypatch: pytest.MonkeyPatch) -> StorageTarget:
        good = os.environ["AWS_SECRET_ACCESS_KEY"]
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)  # a wrong secret
        target = resolve_target(location, check=False)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", good)
        return target


class StoreSinkTests(ShardSinkTests):
    """``ObjectStore(S3Store(...))`` with the credentials in its config. Pickling drops them:
    the environment holds them too, as it must on a cluster's workers."""

    @pytest.fixture
    def location(self, s3_server: Any, s3_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Any:
        _aws_env(s3_server, monkeypatch)
        return obstore_zarr(s3_server, s3_prefix, s3_server.secret_key)

    @pytest.fixture
    def broken(self, location: Any, s3_server: Any, s3_prefix: str) -> StorageTarget:
        return resolve_target(obstore_zarr(s3_server, s3_prefix, SECRET), check=False)


def obstore_zarr(server: Any, prefix: str, secret: str) -> Any:
    from zarr.storage import ObjectStore

    cfg = server.store_config()
    cfg["config"]["secret_access_key"] = secret
    store = obstore.store.S3Store(
        server.bucket, prefix=prefix, retry_config={"max_retries": 1}, **cfg
    )
    return ObjectStore(store)


class TestZarrPathS3Url(UrlSinkTests):
    native = False


class TestNativeS3Url(UrlSinkTests):
    native = True


class TestZarrPathS3Store(StoreSinkTests):
    native = False


class TestNativeS3Store(StoreSinkTests):
    native = True
