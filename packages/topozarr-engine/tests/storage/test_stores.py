"""topozarr_engine.storage: store resolution, s3:// configuration, target descriptions, errors.

No S3 server here (the root tests/test_s3.py runs against one): configurations are inspected,
error messages are translated from obstore's own wording, and the only request goes to a
closed local port.
"""

from __future__ import annotations

import socket
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import zarr
from topozarr_engine.storage import StoreError, resolve_target, store_errors, translate_store_error
from topozarr_engine.storage.native_config import target_config as s3_target_config
from topozarr_engine.storage.retry import S3_RETRY_CONFIG
from zarr.storage import LocalStore, MemoryStore

obstore = pytest.importorskip("obstore")
from obstore.store import LocalStore as ObLocalStore  # noqa: E402
from obstore.store import S3Store  # noqa: E402
from zarr.storage import ObjectStore  # noqa: E402

SECRET = "s3cr3t-Value-that-must-not-leak"


# ----------------------------------------------------------------------------- resolve_target


def test_paths_become_local_stores(tmp_path: Path) -> None:
    for target in (tmp_path / "a.zarr", str(tmp_path / "b.zarr"), f"file://{tmp_path}/c.zarr"):
        store = resolve_target(target).store
        assert isinstance(store, LocalStore)
        assert Path(store.root).name in ("a.zarr", "b.zarr", "c.zarr")


def test_stores_and_other_urls_pass_through() -> None:
    memory = MemoryStore()
    assert resolve_target(memory).store is memory
    wrapped = ObjectStore(obstore.store.MemoryStore())
    assert resolve_target(wrapped).store is wrapped  # not S3: no request
    assert resolve_target("memory://x").store == "memory://x"  # zarr / fsspec resolve it


def test_icechunk_session_gives_its_store() -> None:
    class Session:  # what resolve_target recognises: the type name and a .store
        store = MemoryStore()

    assert resolve_target(Session()).store is Session.store


def test_s3_url_is_configured_from_the_environment(aws: pytest.MonkeyPatch) -> None:
    aws.setenv("AWS_TIMEOUT", "120s")
    store = resolve_target("s3://bucket/some/prefix", check=False).store
    assert isinstance(store, ObjectStore)
    inner = store.store
    assert isinstance(inner, S3Store)
    assert inner.prefix == "some/prefix"
    config = inner.config
    assert config["bucket"] == "bucket"
    assert config["endpoint"] == "https://s3.example.invalid"
    assert config["region"] == "eu-west-1"
    assert config["access_key_id"] == "AKIDTEST"
    assert inner.client_options == {"connect_timeout": "2s", "timeout": "120s"}
    assert inner.retry_config["max_retries"] == S3_RETRY_CONFIG["max_retries"]


def test_endpoint_spellings(aws: pytest.MonkeyPatch) -> None:
    aws.delenv("AWS_ENDPOINT_URL")
    aws.setenv("AWS_ENDPOINT", "https://other.example.invalid")
    assert s3_target_config("s3://b/p")["config"]["endpoint"] == "https://other.example.invalid"
    aws.setenv("AWS_ENDPOINT_URL", "https://first.example.invalid")
    assert s3_target_config("s3://b/p")["config"]["endpoint"] == "https://first.example.invalid"


def test_plain_http_endpoint_needs_allow_http(aws: pytest.MonkeyPatch) -> None:
    aws.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(StoreError, match="AWS_ALLOW_HTTP=true"):
        resolve_target("s3://bucket/p", check=False)
    aws.setenv("AWS_ALLOW_HTTP", "true")
    store = resolve_target("s3://bucket/p", check=False).store
    assert store.store.client_options["allow_http"] == "true"


def test_s3_url_without_obstore_names_the_extra(
    aws: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "obstore", None)
    monkeypatch.setitem(sys.modules, "obstore.store", None)
    with pytest.raises(ImportError, match=r"pip install 'topozarr\[s3\]'"):
        resolve_target("s3://bucket/p")


def test_unreachable_endpoint_fails_fast(aws: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    aws.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    aws.setenv("AWS_ALLOW_HTTP", "true")
    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        resolve_target("s3://bucket/pyramids/dem.zarr")
    assert time.monotonic() - start < 20
    message = str(info.value)
    assert f"cannot reach the S3 endpoint http://127.0.0.1:{port}" in message
    assert "s3://bucket/pyramids/dem.zarr" in message
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert SECRET not in message


# ----------------------------------------------------------------------------- s3_target_config


def test_target_config_of_an_s3_url(aws: pytest.MonkeyPatch) -> None:
    target = s3_target_config("s3://bucket/a/b.zarr")
    assert target["kind"] == "s3"
    assert target["url"] == "s3://bucket/a/b.zarr"
    assert (target["bucket"], target["prefix"]) == ("bucket", "a/b.zarr")
    assert target["config"]["secret_access_key"] == SECRET  # the native writer needs it...
    assert SECRET not in repr(target) and SECRET not in str(target)  # ...but logs must not
    assert "bucket" not in target["config"]
    assert target["client_options"]["connect_timeout"] == "2s"
    assert target["retry_config"]["max_retries"] == S3_RETRY_CONFIG["max_retries"]


def test_target_config_of_an_object_store_over_s3() -> None:
    s3 = S3Store(
        "bucket",
        prefix="deep/prefix",
        endpoint="http://127.0.0.1:9000",
        region="us-east-1",
        access_key_id="AK",
        secret_access_key=SECRET,
        client_options={"allow_http": True},
        retry_config={"max_retries": 1, "retry_timeout": timedelta(seconds=5)},
    )
    for store in (ObjectStore(s3), s3):
        target = s3_target_config(store)
        assert target["bucket"] == "bucket"
        assert target["prefix"] == "deep/prefix"
        assert target["config"]["endpoint"] == "http://127.0.0.1:9000"
        assert target["config"]["secret_access_key"] == SECRET
        assert target["client_options"] == {"allow_http": "true"}  # obstore keeps strings
        assert target["retry_config"]["max_retries"] == 1
        assert SECRET not in repr(target)
    assert s3_target_config(ObjectStore(S3Store("b")))["prefix"] == ""


def test_target_config_of_local_targets(tmp_path: Path) -> None:
    root = str(tmp_path.absolute())
    assert s3_target_config(ObjectStore(ObLocalStore(tmp_path))) == {"kind": "local", "root": root}
    assert s3_target_config(LocalStore(tmp_path)) == {"kind": "local", "root": root}
    assert s3_target_config(tmp_path) == {"kind": "local", "root": root}
    assert s3_target_config(str(tmp_path))["root"] == root


@pytest.mark.parametrize(
    "store",
    [MemoryStore(), ObjectStore(obstore.store.MemoryStore()), "gs://bucket/x"],
    ids=["memory", "obstore-memory", "gcs-url"],
)
def test_target_config_rejects_other_stores(store: object) -> None:
    with pytest.raises(ValueError, match=r"not an S3 or local target|neither an s3:// URL"):
        s3_target_config(store)


# ----------------------------------------------------------------------------- errors


def _store() -> S3Store:
    return S3Store(
        "bucket",
        prefix="p/dem.zarr",
        endpoint="http://127.0.0.1:9000",
        access_key_id="AK",
        secret_access_key=SECRET,
        client_options={"allow_http": True},
    )


_XML = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code></Error>'


def _list_error(status: str, code: str) -> Exception:
    return obstore.exceptions.GenericError(
        "Generic S3 error: Error performing list request: Error performing GET "
        "http://127.0.0.1:9000/bucket?list-type=2&prefix=p%2Fdem.zarr%2F in 1ms - Server "
        f"returned non-2xx status code: {status}: " + _XML.format(code=code) + "\n\nDebug "
        f"source:\nGeneric {{ secret: {SECRET} }}"
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_list_error("404 Not Found", "NoSuchBucket"), "S3 bucket 'bucket' does not exist"),
        (_list_error("403 Forbidden", "SignatureDoesNotMatch"), "S3 rejected the credentials"),
        (_list_error("403 Forbidden", "InvalidAccessKeyId"), "S3 rejected the credentials"),
        (
            obstore.exceptions.PermissionDeniedError(
                "The operation lacked the necessary privileges to complete for path "
                "p/dem.zarr/zarr.json: Error performing PUT http://127.0.0.1:9000/bucket/p/dem."
                "zarr/zarr.json in 1ms - Server returned non-2xx status code: 403 Forbidden: "
                + _XML.format(code="AccessDenied")
            ),
            "S3 denied PUT s3://bucket/p/dem.zarr/zarr.json (AccessDenied)",
        ),
        (
            obstore.exceptions.GenericError(
                "Generic S3 error: Error performing GET http://127.0.0.1:9000/bucket/p/dem.zarr/"
                "zarr.json in 200ms, after 3 retries, max_retries: 3, retry_timeout: 15s  - HTTP "
                "error: error sending request"
            ),
            "cannot reach the S3 endpoint http://127.0.0.1:9000 for GET "
            "s3://bucket/p/dem.zarr/zarr.json: the connection failed after 3 retries",
        ),
    ],
    ids=["missing-bucket", "wrong-secret", "unknown-key", "denied", "unreachable"],
)
def test_translate_store_error(exc: Exception, expected: str) -> None:
    translated = translate_store_error(exc, ObjectStore(_store()))
    assert isinstance(translated, StoreError)
    message = str(translated)
    assert expected in message
    assert SECRET not in message
    assert "Debug source" not in message and "<?xml" not in message


def test_translate_a_bare_404_listing() -> None:
    exc = obstore.exceptions.GenericError(
        "Generic S3 error: Error performing list request: Error performing GET "
        "http://127.0.0.1:9000/bucket?list-type=2 in 1ms - Server returned non-2xx status "
        "code: 404 Not Found: "
    )
    message = str(translate_store_error(exc, _store()))
    assert "S3 bucket 'bucket' not found at http://127.0.0.1:9000" in message
    assert "no S3 error code" in message and "AWS_ENDPOINT_URL" in message


def test_translate_masks_secret_values_echoed_by_a_server() -> None:
    exc = obstore.exceptions.GenericError(
        "Generic S3 error: Error performing GET http://127.0.0.1:9000/bucket/k in 1ms - Server "
        f"returned non-2xx status code: 500 Internal Server Error: echo {SECRET}"
    )
    message = str(translate_store_error(exc, _store()))
    assert "S3 request failed: GET s3://bucket/k (500 Internal Server Error)" in message
    assert SECRET not in message and "echo ***" in message


def test_other_errors_are_not_translated() -> None:
    assert translate_store_error(ValueError("x"), _store()) is None
    assert translate_store_error(FileNotFoundError("no such file"), _store()) is None
    err = StoreError("already clear")
    assert translate_store_error(err, _store()) is err


def test_store_errors_raises_without_the_raw_error_attached() -> None:
    with pytest.raises(StoreError) as info, store_errors(_store()):
        raise _list_error("404 Not Found", "NoSuchBucket")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert SECRET not in str(info.value.__context__)  # redacted in place
    with pytest.raises(KeyError), store_errors(_store()):
        raise KeyError("not a store error")


def test_zarr_store_is_left_alone_by_the_check(tmp_path: Path) -> None:
    store = ObjectStore(ObLocalStore(tmp_path))
    assert resolve_target(store).store is store
    zarr.open_group(store, mode="w")
