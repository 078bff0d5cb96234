"""Which stores the kernel's native writer (``io="rust"``) writes to, and the writer for each.

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
from pathlib import Path
from typing import Any

import zarr

from topozarr_engine.storage.exceptions import StorageConfigError
from topozarr_engine.storage.native import DEFAULT_MAX_INFLIGHT_BYTES, NativeWriter
from topozarr_engine.storage.obstores import inner_store, obstore_kind
from topozarr_engine.storage.retry import native_retry_options
from topozarr_engine.storage.s3 import open_s3_store
from topozarr_engine.storage.secrets import SecretDict
from topozarr_engine.storage.urls import parse_url

__all__ = ["NATIVE_SUPPORTED", "native_kind", "native_writer", "target_config"]

#: What ``io="rust"`` writes to, for messages.
NATIVE_SUPPORTED = (
    "a local path, zarr.storage.LocalStore, an s3://bucket/prefix URL, or "
    "zarr.storage.ObjectStore wrapping an obstore S3Store or LocalStore"
)


def native_kind(store: Any) -> str | None:
    """``"local"`` or ``"s3"`` when the native writer can write to ``store``, else None."""
    if isinstance(store, str | Path):
        parsed = parse_url(str(store))
        return "s3" if parsed.is_s3 else ("local" if parsed.is_local else None)
    if isinstance(store, zarr.storage.LocalStore):
        return "local"
    kind = obstore_kind(store)
    if kind == "LocalStore":
        return "local" if inner_store(store).prefix is not None else None
    return "s3" if kind == "S3Store" else None


def target_config(store: Any) -> dict[str, Any]:
    """Describe an S3 or local write target as plain dicts (for the native writer).

    Parameters
    ----------
    store
        An ``s3://bucket/prefix`` URL, a ``zarr.storage.ObjectStore`` over
        ``obstore.store.S3Store`` or ``obstore.store.LocalStore``, one of those obstore stores
        itself, a ``zarr.storage.LocalStore`` or a local path.

    Returns
    -------
    dict
        S3: ``{"kind": "s3", "url", "bucket", "prefix", "config", "client_options",
        "retry_config"}``: ``config`` holds obstore ``S3Config`` keys (object_store's names:
        ``endpoint``, ``region``, ``access_key_id``, ...), including what an ``s3://`` URL
        takes from the ``AWS_*`` environment; ``prefix`` is ``""`` for the bucket root.
        Local: ``{"kind": "local", "root": "/abs/path"}``. Secret values are masked in the
        dicts' repr, not in their items.

    Raises
    ------
    ValueError
        Any other store (memory, icechunk, GCS, Azure, ...).
    """
    if isinstance(store, str | Path):
        parsed = parse_url(str(store))
        if not parsed.is_s3:
            if not parsed.is_local:
                raise ValueError(f"{str(store)!r} is neither an s3:// URL nor a local path")
            return {"kind": "local", "root": str(parsed.local_path())}
    if isinstance(store, zarr.storage.LocalStore):
        return {"kind": "local", "root": str(Path(store.root).absolute())}
    inner = open_s3_store(store) if isinstance(store, str) else inner_store(store)
    kind = obstore_kind(inner)
    if kind == "LocalStore":
        if inner.prefix is None:
            raise ValueError("an obstore LocalStore without a prefix has no root directory")
        return {"kind": "local", "root": str(Path(inner.prefix).absolute())}
    if kind != "S3Store":
        raise ValueError(
            f"{type(store).__name__} is not an S3 or local target: the native writer takes "
            f"{NATIVE_SUPPORTED}"
        )
    return _s3_config(inner)


def _s3_config(inner: Any) -> dict[str, Any]:
    config = SecretDict(inner.config or {})
    bucket = config.pop("bucket", None)
    if bucket is None:  # obstore keeps the URL's bucket under its config; be defensive
        raise ValueError("the S3Store has no bucket in its config")
    prefix = (inner.prefix or "").strip("/")
    return SecretDict(
        kind="s3",
        url=f"s3://{bucket}/{prefix}".rstrip("/"),
        bucket=bucket,
        prefix=prefix,
        config=config,
        client_options=dict(inner.client_options or {}),
        retry_config=dict(inner.retry_config or {}),
    )


def _duration(value: Any) -> Any:
    """object_store spells durations like ``"1500ms"``; obstore also takes ``timedelta``."""
    if isinstance(value, timedelta):
        return f"{round(value.total_seconds() * 1000)}ms"
    return value


def native_writer(
    zstore: Any, *, max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES
) -> NativeWriter:
    """The native writer for a resolved zarr store.

    Makes no request: S3 credentials are checked by the first read or write.

    Raises
    ------
    StorageConfigError (a ValueError)
        The store is not one the native writer takes, or it holds a credential provider (a
        Python callback the kernel cannot call); the message says which.
    """
    try:
        target = target_config(zstore)
    except ValueError as exc:
        raise StorageConfigError(
            f"io='rust' cannot write to {type(zstore).__name__}; it supports {NATIVE_SUPPORTED}"
        ) from exc
    if target["kind"] == "local":
        return NativeWriter.local(str(target["root"]), max_inflight_bytes=max_inflight_bytes)
    if getattr(inner_store(zstore), "credential_provider", None) is not None:
        raise StorageConfigError(
            "io='rust' cannot reuse an obstore credential_provider (a Python callback); pass "
            "the credentials in the S3Store config or the AWS_* environment, or use io='python'"
        )
    return NativeWriter.s3(
        target["bucket"],
        target["prefix"],
        config=dict(target["config"]) or None,
        client_options={k: _duration(v) for k, v in target["client_options"].items()} or None,
        max_inflight_bytes=max_inflight_bytes,
        **native_retry_options(target.get("retry_config") or {}),
    )
