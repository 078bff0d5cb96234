"""Writing to flaky object storage: both io paths through a fault-injecting proxy.

``faultproxy.FaultProxy`` sits between the writers and SeaweedFS. Through it, 20% of PUTs are
answered ``503 SlowDown``, 10% of connections are reset after the server acted on the request,
and 5% of replies are held back 3 s (longer than the 1 s client timeout the tests configure,
so they are timeouts). Both io paths must still write exactly what a clean local write gives.
An outage longer than the retry budget must end in one ``StoreError`` that names the bucket
and key (and no secret), with nothing published.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import xproj  # noqa: F401  (registers .proj)
import zarr
from faultproxy import FaultProxy, Faults
from s3_pyramid import small_pyramid, synthetic_dem
from topozarr_engine.storage import StoreError
from zarr.storage import ObjectStore

pytestmark = pytest.mark.s3

TOPOZARR = str(Path(sys.executable).parent / "topozarr")
FLAKY = Faults(put_503=0.2, reset=0.1, delay=0.05, delay_s=3.0, seed=11)
CLIENT_TIMEOUT = "1s"  # shorter than FLAKY.delay_s: a held-back reply is a timeout
SMALL_BUDGET_S = 1.5


def direct(server: Any, prefix: str) -> ObjectStore:
    """The pyramid under ``prefix`` read straight from SeaweedFS, not through the proxy."""
    return ObjectStore(server.s3_store(prefix), read_only=True)


def assert_same_levels(local: Path, remote: ObjectStore, nlevels: int) -> None:
    """Every level's values equal through zarr-python, NaN positions included."""
    zlocal = zarr.open_group(local, mode="r")
    zremote = zarr.open_group(remote, mode="r")
    assert zremote.attrs.asdict() == zlocal.attrs.asdict()
    assert "multiscales" in zremote.attrs
    for level in range(nlevels):
        want = np.asarray(zlocal[f"{level}/elevation"][...])
        got = np.asarray(zremote[f"{level}/elevation"][...])
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(got, want)


def chained_texts(exc: BaseException) -> str:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    out = ["".join(traceback.format_exception(exc))]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        out += [str(e), repr(e)]
        todo += [e.__cause__, e.__context__]
    return "\n".join(out)


@pytest.fixture
def proxy_env(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``start(faults)`` starts a proxy and points the ``AWS_*`` environment at it."""
    proxies: list[FaultProxy] = []
    for name in list(os.environ):
        if name.startswith(("AWS_", "TOPOZARR_")):
            monkeypatch.delenv(name)
    upstream = urlsplit(s3_server.endpoint)

    def start(faults: Faults) -> FaultProxy:
        proxy = FaultProxy(str(upstream.hostname), int(upstream.port or 80), faults, lifetime_s=120)
        proxies.append(proxy)
        for name, value in s3_server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        monkeypatch.setenv("AWS_TIMEOUT", CLIENT_TIMEOUT)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


@pytest.mark.parametrize("io", ["python", "rust"])
def test_flaky_store_gives_the_same_pyramid_as_a_clean_local_write(
    s3_server: Any, proxy_env: Any, tmp_path: Path, io: str
) -> None:
    pyramid = small_pyramid()
    pyramid.write(tmp_path / "local.zarr")
    proxy = proxy_env(FLAKY)
    # A fixed prefix: the proxy's draws depend on the request lines, so every run injects
    # the same faults.
    prefix = f"faults/flaky-{io}/dem.zarr"
    pyramid.write(f"s3://{s3_server.bucket}/{prefix}", io=io)
    stats = dict(proxy.stats)
    proxy.stop()
    # Every kind of fault was injected, several times.
    assert stats.get("503", 0) >= 3, stats
    assert stats.get("reset", 0) >= 2, stats
    assert stats.get("delay", 0) >= 1, stats
    assert_same_levels(tmp_path / "local.zarr", direct(s3_server, prefix), len(pyramid.factors))


@pytest.mark.parametrize(("io", "reply"), [("python", "503"), ("rust", "reset")])
def test_an_outage_longer_than_the_budget_is_one_store_error(
    s3_server: Any,
    proxy_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    io: str,
    reply: str,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("TOPOZARR_RETRY_BUDGET", str(SMALL_BUDGET_S))
    # The outage starts at the first shard PUT of the data path (after the root group exists).
    proxy = proxy_env(Faults(outage_at="/elevation/c/", outage_s=60.0, outage_reply=reply))
    prefix = f"faults/outage-{io}-{reply}/dem.zarr"
    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        small_pyramid().write(f"s3://{s3_server.bucket}/{prefix}", io=io)
    seconds = time.monotonic() - start
    assert proxy.stats["outage"] >= 2  # retried, not given up at the first failure
    proxy.stop()
    message = str(info.value)
    assert f"s3://{s3_server.bucket}/{prefix}/" in message, message
    assert "TOPOZARR_RETRY_BUDGET" in message, message
    assert "\n" not in re.split(r"\. (?:obstore|object_store): ", message)[0]
    assert s3_server.secret_key not in chained_texts(info.value)
    # Gave up once the budget was spent, not at once and not after the outage.
    assert SMALL_BUDGET_S <= seconds < 20, seconds
    root = zarr.open_group(direct(s3_server, prefix), mode="r")
    assert "multiscales" not in root.attrs  # nothing published
    # The outage is over: resume completes the write from its journal.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    pyramid = small_pyramid()
    stats = pyramid.write(f"s3://{s3_server.bucket}/{prefix}", io=io, resume=True, stats=True)
    assert stats is not None and stats["0"]["complete"]
    pyramid.write(tmp_path / "local.zarr")
    assert_same_levels(tmp_path / "local.zarr", direct(s3_server, prefix), len(pyramid.factors))


def test_cli_retry_budget_option(s3_server: Any, proxy_env: Any, tmp_path: Path) -> None:
    synthetic_dem().proj.write_crs_info().to_zarr(
        tmp_path / "src.zarr", zarr_format=3, consolidated=False
    )
    proxy_env(Faults(outage_at="/elevation/c/", outage_s=60.0))
    url = f"s3://{s3_server.bucket}/faults/cli/out.zarr"
    env = {k: v for k, v in os.environ.items() if k != "TOPOZARR_RETRY_BUDGET"}
    start = time.monotonic()
    args = ["build", "src.zarr", url, "--levels", "2", "--no-progress", "--retry-budget", "1"]
    result = subprocess.run(
        [TOPOZARR, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert time.monotonic() - start < 30
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("topozarr: error: "), result.stderr
    assert "retry budget of 1s" in lines[0] and url in lines[0], lines[0]


def test_retry_budget_must_be_positive(tmp_path: Path) -> None:
    result = subprocess.run(
        [TOPOZARR, "demo", str(tmp_path / "d.zarr"), "--size", "32", "--retry-budget", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "--retry-budget" in result.stderr and "'0'" in result.stderr, result.stderr
