"""The retry budget of S3 stores: where it comes from, the policy built from it, and the
errors that name a request which ran out of it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from topozarr_engine import RegionError
from topozarr_engine.storage import StorageConfigError, StoreError, translate_store_error
from topozarr_engine.storage.retry import (
    DEFAULT_RETRY_BUDGET_S,
    native_retry_options,
    retry_budget,
    s3_retry_config,
)

KERNEL_GAVE_UP = (
    "PUT s3://bucket/p/0/v/c/0/0 failed: Generic S3 error: Error performing PUT "
    "http://127.0.0.1:9/bucket/p/0/v/c/0/0 in 2.1s, after 7 retries, max_retries: 10000, "
    "retry_timeout: 2s  - Server returned non-2xx status code: 503 Service Unavailable: "
    "<?xml version='1.0'?><Error><Code>SlowDown</Code></Error>"
)


def test_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOPOZARR_RETRY_BUDGET", raising=False)
    assert retry_budget() == DEFAULT_RETRY_BUDGET_S == 300.0
    monkeypatch.setenv("TOPOZARR_RETRY_BUDGET", "12.5")
    assert retry_budget() == 12.5
    assert s3_retry_config()["retry_timeout"] == timedelta(seconds=12.5)


@pytest.mark.parametrize("bad", ["0", "-3", "soon", "inf", "nan"])
def test_a_bad_budget_is_named(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("TOPOZARR_RETRY_BUDGET", bad)
    with pytest.raises(
        StorageConfigError, match=f"TOPOZARR_RETRY_BUDGET='{bad}' is not a positive"
    ):
        retry_budget()


def test_backoff_is_capped_by_the_budget() -> None:
    small = s3_retry_config(2.0)
    assert small["retry_timeout"] == timedelta(seconds=2)
    assert small["backoff"]["max_backoff"] == timedelta(seconds=0.25)
    assert s3_retry_config(300.0)["backoff"]["max_backoff"] == timedelta(seconds=15)
    assert s3_retry_config(0.5)["backoff"]["max_backoff"] == timedelta(seconds=0.2)


def test_the_native_writer_mirrors_the_policy() -> None:
    config = s3_retry_config(2.0)
    assert native_retry_options(config) == {
        "max_retries": config["max_retries"],
        "retry_timeout": 2.0,
        "init_backoff": 0.1,
        "max_backoff": 0.25,
    }


def test_a_native_upload_that_ran_out_of_budget_is_a_store_error() -> None:
    region_error = RegionError("[0:8, 0:8]", OSError(KERNEL_GAVE_UP), variable="v", level=0)
    region_error.__cause__ = region_error.cause
    for exc in (OSError(KERNEL_GAVE_UP), region_error):
        err = translate_store_error(exc, None)
        assert isinstance(err, StoreError)
        message = str(err)
        assert message.startswith("S3 kept answering PUT s3://bucket/p/0/v/c/0/0 with SlowDown")
        assert "retry budget of 2s" in message and "TOPOZARR_RETRY_BUDGET" in message


def test_other_worker_errors_are_left_alone() -> None:
    assert translate_store_error(RegionError("[0:8]", RuntimeError("disk on fire")), None) is None
    assert translate_store_error(OSError("PUT file:///tmp/x failed: full"), None) is None
