"""Which stores ``io="rust"`` writes to, and the kernel's native writer for each.

zarr-python still writes the metadata, coordinates and non-spatial variables (through the zarr
store); the native writer stores the spatial shards under the same root. So the two must agree
on where the root is: a local directory (a path, ``zarr.storage.LocalStore``, or an obstore
``LocalStore`` inside ``zarr.storage.ObjectStore``) or an S3 bucket/prefix (an ``s3://`` URL or
an obstore ``S3Store`` inside ``zarr.storage.ObjectStore``), whose configuration (endpoint,
region, credentials, prefix, client options, retry budget and backoff) the kernel reuses, so
both io paths ride out the same transient failures for the same time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from topozarr_engine.native import NativeWriter

from topozarr_plan.errors import PlanError
from topozarr_plan.stores import s3_target_config

__all__ = ["SUPPORTED", "native_writer"]

SUPPORTED = (
    "a local path, zarr.storage.LocalStore, an s3://bucket/prefix URL, or "
    "zarr.storage.ObjectStore wrapping an obstore S3Store or LocalStore"
)


def _duration(value: Any) -> Any:
    """object_store spells durations like ``"1500ms"``; obstore also takes ``timedelta``."""
    if isinstance(value, timedelta):
        return f"{round(value.total_seconds() * 1000)}ms"
    return value


def _seconds(value: Any) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else None


def _retry(config: dict[str, Any]) -> dict[str, Any]:
    """The kernel's retry options mirroring an obstore ``retry_config``: the same budget and
    backoff on both io paths (the kernel derives what is missing from the budget)."""
    out: dict[str, Any] = {}
    if "max_retries" in config:
        out["max_retries"] = int(config["max_retries"])
    timeout = _seconds(config.get("retry_timeout"))
    if timeout is not None:
        out["retry_timeout"] = timeout
    backoff = config.get("backoff") or {}
    for key in ("init_backoff", "max_backoff"):
        value = _seconds(backoff.get(key))
        if value is not None:
            out[key] = value
    return out


def native_writer(zstore: Any) -> NativeWriter:
    """The native writer for a resolved zarr store; ``PlanError`` (a ValueError) otherwise.

    Makes no request: S3 credentials are checked by the first read or write.
    """
    try:
        target = s3_target_config(zstore)
    except ValueError as exc:
        raise PlanError(
            f"io='rust' cannot write to {type(zstore).__name__}; it supports {SUPPORTED}"
        ) from exc
    if target["kind"] == "local":
        return NativeWriter.local(str(target["root"]))
    inner = getattr(zstore, "store", None)
    if getattr(inner, "credential_provider", None) is not None:
        raise PlanError(
            "io='rust' cannot reuse an obstore credential_provider (a Python callback); pass "
            "the credentials in the S3Store config or the AWS_* environment, or use io='python'"
        )
    return NativeWriter.s3(
        target["bucket"],
        target["prefix"],
        config=dict(target["config"]) or None,
        client_options={k: _duration(v) for k, v in target["client_options"].items()} or None,
        **_retry(target.get("retry_config") or {}),
    )
