"""The kernel's native S3 writer against SeaweedFS: its own errors, and concurrent uploads.

``Pyramid.write`` checks an S3 target with one LIST before anything is written, so its failure
cases (tests/test_s3.py) never reach the kernel. These tests drive ``topozarr_core.NativeStore``
directly: each storage failure must be quick, be the matching Python exception, name the key,
and never contain a secret.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
import traceback
import uuid
from typing import Any

import numpy as np
import pytest
import zarr
from obstore.store import S3Store
from topozarr_core import NativeStore
from topozarr_engine.storage import DEFAULT_MAX_INFLIGHT_BYTES
from zarr.storage import ObjectStore

pytestmark = pytest.mark.s3

FAST = 30.0


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)


def native(server: Any, prefix: str, *, bucket: str | None = None, **config: str) -> NativeStore:
    cfg = {**server.store_config()["config"], **config}
    return NativeStore.s3(
        bucket or server.bucket,
        prefix,
        config=cfg,
        client_options={"allow_http": True},
        max_retries=1,
        retry_timeout=5.0,
        connect_timeout=2.0,
        max_inflight_bytes=DEFAULT_MAX_INFLIGHT_BYTES,
    )


def texts(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


def make_array(server: Any, prefix: str) -> zarr.Array:
    store = ObjectStore(S3Store(server.bucket, prefix=prefix, **server.store_config()))
    return zarr.create_array(
        store,
        name="a",
        shape=(40, 24),
        dtype="float32",
        chunks=(8, 8),
        shards=(16, 16),
        fill_value=np.nan,
    )


def test_shards_written_natively_read_back_through_zarr(s3_server: Any, s3_prefix: str) -> None:
    arr = make_array(s3_server, s3_prefix)
    data = np.arange(40 * 24, dtype="float32").reshape(40, 24)
    data[:16, :16] = np.nan  # one all-fill shard: not stored
    store = native(s3_server, s3_prefix)
    target = store.open_array("a")
    for i in range(3):
        for j in range(2):
            piece = np.ascontiguousarray(data[i * 16 : (i + 1) * 16, j * 16 : (j + 1) * 16])
            target.write_shard([i, j], piece.reshape(-1).view(np.uint8))
    store.flush()
    assert store.objects_written == 5
    np.testing.assert_array_equal(arr[...], data)
    assert store.url == f"s3://{s3_server.bucket}/{s3_prefix}"


def _timed(call: Any, expected: type[BaseException]) -> tuple[BaseException, float]:
    start = time.monotonic()
    with pytest.raises(expected) as info:
        call()
    return info.value, time.monotonic() - start


def test_wrong_secret_is_a_permission_error(s3_server: Any, s3_prefix: str) -> None:
    make_array(s3_server, s3_prefix)
    wrong = "wrong" + secrets.token_urlsafe(24)
    store = native(s3_server, s3_prefix, secret_access_key=wrong)
    exc, seconds = _timed(lambda: store.open_array("a"), PermissionError)
    assert seconds < FAST
    assert f"s3://{s3_server.bucket}/{s3_prefix}/a/zarr.json" in str(exc)
    assert wrong not in texts(exc) and s3_server.secret_key not in texts(exc)


def test_missing_bucket_is_file_not_found(s3_server: Any, s3_prefix: str) -> None:
    bucket = f"tz-missing-{uuid.uuid4().hex[:8]}"
    store = native(s3_server, s3_prefix, bucket=bucket)
    exc, seconds = _timed(lambda: store.open_array("a"), FileNotFoundError)
    assert seconds < FAST
    assert f"s3://{bucket}/{s3_prefix}/a/zarr.json" in str(exc)
    assert s3_server.secret_key not in texts(exc)


def test_unreachable_endpoint_fails_fast(s3_server: Any, s3_prefix: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = native(s3_server, s3_prefix, endpoint=f"http://127.0.0.1:{port}")
    exc, seconds = _timed(lambda: store.open_array("a"), OSError)
    assert seconds < FAST
    assert f"s3://{s3_server.bucket}/{s3_prefix}/a/zarr.json" in str(exc)
    assert s3_server.secret_key not in texts(exc)


def test_denied_upload_surfaces_on_flush_with_the_key(s3_server: Any, s3_prefix: str) -> None:
    make_array(s3_server, s3_prefix)
    store = native(
        s3_server,
        s3_prefix,
        access_key_id=s3_server.readonly_access_key,
        secret_access_key=s3_server.readonly_secret_key,
    )
    target = store.open_array("a")  # reading is allowed
    target.write_shard([0, 0], np.ones(256, "float32").view(np.uint8))
    exc, seconds = _timed(store.flush, PermissionError)
    assert seconds < FAST
    assert f"PUT s3://{s3_server.bucket}/{s3_prefix}/a/c/0/0" in str(exc)
    assert s3_server.readonly_secret_key not in texts(exc)
    with pytest.raises(PermissionError):  # every later call reports the failure too
        target.write_shard([1, 0], np.ones(256, "float32").view(np.uint8))
