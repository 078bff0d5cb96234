"""Pyramids written to and sources read from a real S3 server (SeaweedFS, see conftest.py).

Every S3 pyramid is compared with the same pyramid written to a local directory: the same
objects, every ``zarr.json`` identical, every level's values equal (NaN positions included)
through zarr-python and xarray. Failures (unreachable endpoint, wrong secret, missing bucket)
must be quick, name the bucket and key, and never show a secret.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import obstore
import pytest
import xarray as xr
import xproj  # noqa: F401  (registers .proj)
import zarr
from obstore.store import S3Store
from s3_pyramid import small_pyramid, synthetic_dem
from topozarr_engine.storage import StoreError, store_errors
from topozarr_engine.storage.native_config import target_config as s3_target_config
from topozarr_engine.storage.retry import S3_RETRY_CONFIG
from zarr.storage import ObjectStore

pytestmark = pytest.mark.s3

TOPOZARR = str(Path(sys.executable).parent / "topozarr")
FAST = 30.0  # seconds: every failure case must be reported within this


# ----------------------------------------------------------------------------- helpers


def local_objects(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def s3_objects(store: S3Store) -> dict[str, bytes]:
    paths = [m["path"] for batch in obstore.list(store) for m in batch]
    prefix = (store.prefix or "").strip("/")
    out = {}
    for path in paths:
        key = path[len(prefix) + 1 :] if prefix and path.startswith(prefix + "/") else path
        out[key] = bytes(obstore.get(store, key).bytes())
    return out


def assert_same_pyramid(local: Path, remote: S3Store, zremote: Any, nlevels: int) -> None:
    """Same objects, identical zarr.json documents, equal values (zarr and xarray)."""
    want = local_objects(local)
    got = s3_objects(remote)
    assert sorted(got) == sorted(want)
    metadata = [k for k in want if k.endswith("zarr.json")]
    assert len(metadata) >= 1 + 2 * nlevels
    for key in metadata:
        assert json.loads(got[key]) == json.loads(want[key]), key

    zlocal = zarr.open_group(local, mode="r")
    zs3 = zarr.open_group(zremote, mode="r")
    assert zs3.attrs.asdict() == zlocal.attrs.asdict()
    for level in range(nlevels):
        a = np.asarray(zlocal[f"{level}/elevation"][...])
        b = np.asarray(zs3[f"{level}/elevation"][...])
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(np.isnan(b), np.isnan(a))
        np.testing.assert_array_equal(b, a)  # NaN == NaN for assert_array_equal

        xa = xr.open_zarr(local, group=str(level), consolidated=False)
        xb = xr.open_zarr(zremote, group=str(level), consolidated=False)
        xr.testing.assert_identical(xb.load(), xa.load())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def exception_texts(exc: BaseException) -> Iterator[str]:
    """str() of the exception and of everything chained to it, and the formatted traceback."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield str(e)
        yield repr(e)
        todo += [e.__cause__, e.__context__]
    yield "".join(traceback.format_exception(exc))


def assert_no_secret(exc: BaseException, *secret_values: str) -> None:
    for text in exception_texts(exc):
        for secret in secret_values:
            assert secret not in text


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS_* variable of the machine (a session token, an endpoint) reaches these tests:
    obstore reads them even for stores configured explicitly."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def aws_env(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The AWS_* environment of the test server (nothing else: see ``no_ambient_aws``)."""
    env = s3_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def explicit_store(server: Any, prefix: str, **config: Any) -> S3Store:
    """S3Store with explicit config (no environment), fail-fast retries."""
    kwargs = server.store_config()
    kwargs["config"].update(config)
    bucket = kwargs["config"].pop("bucket", server.bucket)
    return S3Store(bucket, prefix=prefix, retry_config=S3_RETRY_CONFIG, **kwargs)


# ----------------------------------------------------------------------------- fixture


def test_fixture_server_is_usable(s3_server: Any, s3_prefix: str) -> None:
    assert s3_server.endpoint.startswith("http://127.0.0.1:")
    assert s3_server.startup_s < 30
    store = s3_server.s3_store(s3_prefix)
    obstore.put(store, "hello.txt", b"hi")
    assert bytes(obstore.get(store, "hello.txt").bytes()) == b"hi"
    assert s3_server.secret_key not in repr(s3_server)
    assert s3_server.log.exists()


def test_missing_buckets_are_not_auto_created(s3_server: Any) -> None:
    # SeaweedFS creates a missing bucket on an admin's PUT unless told not to.
    missing = f"tz-missing-{uuid.uuid4().hex[:8]}"
    store = S3Store(missing, retry_config=S3_RETRY_CONFIG, **s3_server.store_config())
    with pytest.raises(FileNotFoundError):
        obstore.put(store, "x", b"1")
    with pytest.raises(FileNotFoundError):
        obstore.put(store, "x", b"1")  # still missing: the first PUT created nothing


# ----------------------------------------------------------------------------- writes


@pytest.mark.parametrize("io", ["python", "rust"])
def test_write_to_s3_url_matches_local(
    s3_server: Any, s3_prefix: str, aws_env: dict[str, str], tmp_path: Path, io: str
) -> None:
    pyramid = small_pyramid()
    local = tmp_path / "local.zarr"
    pyramid.write(local)
    url = f"s3://{s3_server.bucket}/{s3_prefix}/dem.zarr"
    pyramid.write(url, io=io)
    remote = s3_server.s3_store(f"{s3_prefix}/dem.zarr")
    assert_same_pyramid(local, remote, ObjectStore(remote, read_only=True), len(pyramid.factors))


@pytest.mark.parametrize("io", ["python", "rust"])
def test_write_to_object_store_matches_local(
    s3_server: Any, s3_prefix: str, tmp_path: Path, io: str
) -> None:
    pyramid = small_pyramid()
    local = tmp_path / "local.zarr"
    pyramid.write(local)
    remote = explicit_store(s3_server, f"{s3_prefix}/dem.zarr")
    pyramid.write(ObjectStore(remote), io=io)
    assert_same_pyramid(local, remote, ObjectStore(remote, read_only=True), len(pyramid.factors))
    # The same target, described for the native writer.
    target = s3_target_config(ObjectStore(remote))
    assert target["bucket"] == s3_server.bucket
    assert target["prefix"] == f"{s3_prefix}/dem.zarr"
    assert target["config"]["endpoint"] == s3_server.endpoint
    assert s3_server.secret_key not in repr(target)


# xarray's to_zarr(mode="w", group=...) lists the level group after clearing it; SeaweedFS (like
# a local obstore) still lists the emptied "directories" for a moment, and zarr warns about them.
@pytest.mark.filterwarnings("ignore:Object at .* is not recognized:UserWarning")
@pytest.mark.parametrize("io", ["python", "rust"])
def test_rewrite_with_mode_a_keeps_other_levels(
    s3_server: Any, s3_prefix: str, aws_env: dict[str, str], tmp_path: Path, io: str
) -> None:
    pyramid = small_pyramid()
    url = f"s3://{s3_server.bucket}/{s3_prefix}/dem.zarr"
    pyramid.write(url, io=io)
    pyramid.write(url, mode="a", levels=[1], io=io)
    local = tmp_path / "local.zarr"
    pyramid.write(local)
    remote = s3_server.s3_store(f"{s3_prefix}/dem.zarr")
    assert_same_pyramid(local, remote, ObjectStore(remote, read_only=True), len(pyramid.factors))


# ----------------------------------------------------------------------------- failures


def _fail(target: Any, io: str) -> tuple[StoreError, float]:
    pyramid = small_pyramid()
    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        pyramid.write(target, io=io)
    return info.value, time.monotonic() - start


@pytest.mark.parametrize("io", ["python", "rust"])
@pytest.mark.parametrize("how", ["url", "object_store"])
def test_unreachable_endpoint_fails_fast(
    s3_server: Any, s3_prefix: str, aws_env: dict[str, str], how: str, io: str, monkeypatch: Any
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    if how == "url":
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        target: Any = f"s3://{s3_server.bucket}/{s3_prefix}/dem.zarr"
    else:
        target = ObjectStore(explicit_store(s3_server, f"{s3_prefix}/dem.zarr", endpoint=endpoint))
    exc, seconds = _fail(target, io)
    assert seconds < FAST
    message = str(exc)
    assert "cannot reach the S3 endpoint" in message
    assert endpoint in message
    assert f"s3://{s3_server.bucket}/{s3_prefix}/dem.zarr" in message
    assert_no_secret(exc, s3_server.secret_key)


@pytest.mark.parametrize("io", ["python", "rust"])
@pytest.mark.parametrize("how", ["url", "object_store"])
def test_wrong_secret_fails_fast(
    s3_server: Any, s3_prefix: str, aws_env: dict[str, str], how: str, io: str, monkeypatch: Any
) -> None:
    wrong = "wrong" + secrets.token_urlsafe(24)
    if how == "url":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
        target: Any = f"s3://{s3_server.bucket}/{s3_prefix}/dem.zarr"
    else:
        target = ObjectStore(
            explicit_store(s3_server, f"{s3_prefix}/dem.zarr", secret_access_key=wrong)
        )
    exc, seconds = _fail(target, io)
    assert seconds < FAST
    message = str(exc)
    assert "rejected the credentials" in message and "SignatureDoesNotMatch" in message
    assert f"s3://{s3_server.bucket}/{s3_prefix}/dem.zarr" in message
    assert "AWS_SECRET_ACCESS_KEY" in message
    assert_no_secret(exc, wrong, s3_server.secret_key)
    # Nothing was written with the real credentials either.
    assert s3_objects(s3_server.s3_store(s3_prefix)) == {}


@pytest.mark.parametrize("io", ["python", "rust"])
@pytest.mark.parametrize("how", ["url", "object_store"])
def test_missing_bucket_fails_fast(
    s3_server: Any, s3_prefix: str, aws_env: dict[str, str], how: str, io: str
) -> None:
    bucket = f"tz-missing-{uuid.uuid4().hex[:8]}"
    if how == "url":
        target: Any = f"s3://{bucket}/{s3_prefix}/dem.zarr"
    else:
        target = ObjectStore(explicit_store(s3_server, f"{s3_prefix}/dem.zarr", bucket=bucket))
    exc, seconds = _fail(target, io)
    assert seconds < FAST
    message = str(exc)
    assert f"S3 bucket {bucket!r} does not exist" in message
    assert f"s3://{bucket}/{s3_prefix}/dem.zarr" in message
    assert_no_secret(exc, s3_server.secret_key)


def test_plain_http_endpoint_needs_allow_http(
    s3_server: Any, s3_prefix: str, aws_env: dict[str, str], monkeypatch: Any
) -> None:
    monkeypatch.delenv("AWS_ALLOW_HTTP")
    with pytest.raises(StoreError, match="AWS_ALLOW_HTTP=true"):
        small_pyramid().write(f"s3://{s3_server.bucket}/{s3_prefix}/dem.zarr")


def test_store_errors_translates_a_denied_write(s3_server: Any, s3_prefix: str) -> None:
    """The helper the writer can wrap its I/O in: a read-only identity's PUT is denied."""
    store = ObjectStore(s3_server.s3_store(f"{s3_prefix}/dem.zarr", readonly=True))
    pyramid = small_pyramid()
    start = time.monotonic()
    with pytest.raises(StoreError) as info, store_errors(store):
        pyramid.write(store)  # the LIST check passes: this identity may list
    assert time.monotonic() - start < FAST
    message = str(info.value)
    assert f"S3 denied PUT s3://{s3_server.bucket}/{s3_prefix}/dem.zarr/" in message
    assert "AccessDenied" in message
    assert_no_secret(info.value, s3_server.readonly_secret_key, s3_server.secret_key)


# ----------------------------------------------------------------------------- CLI


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [TOPOZARR, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**clean, **env},
        timeout=300,
        check=False,
    )


def test_cli_builds_from_an_s3_zarr_source(s3_server: Any, s3_prefix: str, tmp_path: Path) -> None:
    ds = synthetic_dem().proj.write_crs_info()  # the CRS travels in spatial_ref's attrs
    source = explicit_store(s3_server, f"{s3_prefix}/src.zarr")
    ds.to_zarr(ObjectStore(source), zarr_format=3, consolidated=False)
    url = f"s3://{s3_server.bucket}/{s3_prefix}/src.zarr"
    args = ["--levels", "3", "--target-chunk-bytes", "2048", "--chunks-per-shard", "2"]
    result = _cli(
        "build", url, "out.zarr", *args, "--no-progress", env=s3_server.env(), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    # The same build from a local copy of the source gives the same store.
    ds.to_zarr(tmp_path / "src.zarr", zarr_format=3, consolidated=False)
    local = _cli("build", "src.zarr", "ref.zarr", *args, "--no-progress", env={}, cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    got, want = local_objects(tmp_path / "out.zarr"), local_objects(tmp_path / "ref.zarr")
    assert sorted(got) == sorted(want)
    for key in got:
        if key.endswith("zarr.json"):
            assert json.loads(got[key]) == json.loads(want[key]), key
    for level in range(3):
        a = xr.open_zarr(tmp_path / "out.zarr", group=str(level), consolidated=False)
        b = xr.open_zarr(tmp_path / "ref.zarr", group=str(level), consolidated=False)
        xr.testing.assert_identical(a.load(), b.load())
    level0 = xr.open_zarr(tmp_path / "out.zarr", group="0", consolidated=False)
    np.testing.assert_array_equal(level0.elevation.values, ds.elevation.values)


def test_cli_writes_to_s3_and_reads_it_back(s3_server: Any, s3_prefix: str, tmp_path: Path) -> None:
    ds = synthetic_dem().proj.write_crs_info()
    ds.to_zarr(tmp_path / "src.zarr", zarr_format=3, consolidated=False)
    url = f"s3://{s3_server.bucket}/{s3_prefix}/out.zarr"
    env = s3_server.env()
    built = _cli("build", "src.zarr", url, "--levels", "3", "--no-progress", env=env, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert f"wrote {url}: 3 levels" in built.stdout
    info = _cli("info", url, "--json", env=env, cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["crs"] == "EPSG:4326"
    check = _cli("validate", url, env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


def test_cli_missing_bucket_is_one_line(s3_server: Any, s3_prefix: str, tmp_path: Path) -> None:
    bucket = f"tz-missing-{uuid.uuid4().hex[:8]}"
    start = time.monotonic()
    result = _cli("build", f"s3://{bucket}/src.zarr", "out.zarr", env=s3_server.env(), cwd=tmp_path)
    assert time.monotonic() - start < FAST
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("topozarr: error:"), result.stderr
    assert f"S3 bucket {bucket!r} does not exist" in lines[0]
    assert s3_server.secret_key not in result.stderr + result.stdout
