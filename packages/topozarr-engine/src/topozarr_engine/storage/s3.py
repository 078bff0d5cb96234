"""S3 stores from ``s3://`` URLs: configuration from the ``AWS_*`` environment, retries within
the budget (:mod:`.retry`), and an access check before anything is written.

obstore is optional: ``pip install 'topozarr[s3]'``.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import timedelta
from typing import Any

import zarr

from topozarr_engine.storage.errors import STATUS, translate_store_error
from topozarr_engine.storage.exceptions import StoreError
from topozarr_engine.storage.obstores import inner_store, obstore_kind, obstore_store_module
from topozarr_engine.storage.retry import (
    DEFAULT_RETRY_BUDGET_S,
    S3_PROBE_RETRY_CONFIG,
    s3_retry_config,
)
from topozarr_engine.storage.secrets import redact
from topozarr_engine.storage.urls import parse_url

__all__ = [
    "S3_CLIENT_OPTIONS",
    "RetryingObjectStore",
    "check_s3_access",
    "is_s3_object_store",
    "open_s3_store",
    "s3_zarr_store",
]

#: Client options of stores built from ``s3://`` URLs (``AWS_*`` variables override them).
S3_CLIENT_OPTIONS: dict[str, Any] = {"connect_timeout": "2s"}

# S3Config keys (obstore's names) that may come from AWS_<KEY> environment variables. The
# bucket always comes from the URL.
_S3_CONFIG_KEYS = frozenset(
    {
        "access_key_id",
        "secret_access_key",
        "session_token",
        "region",
        "default_region",
        "endpoint",
        "checksum_algorithm",
        "conditional_put",
        "container_credentials_relative_uri",
        "container_credentials_full_uri",
        "container_authorization_token_file",
        "copy_if_not_exists",
        "disable_tagging",
        "disable_bulk_delete",
        "imdsv1_fallback",
        "metadata_endpoint",
        "request_payer",
        "role_arn",
        "role_session_name",
        "s3_express",
        "server_side_encryption",
        "skip_signature",
        "sse_bucket_key_enabled",
        "sse_customer_key_base64",
        "sse_kms_key_id",
        "sts_endpoint",
        "unsigned_payload",
        "virtual_hosted_style_request",
        "web_identity_token_file",
    }
)
# Environment spellings that name the same setting (the first listed wins).
_S3_ENV_ALIASES = {
    "aws_endpoint_url_s3": ("AWS_ENDPOINT_URL_S3",),
    "endpoint": ("AWS_ENDPOINT_URL", "AWS_ENDPOINT"),
    "session_token": ("AWS_SESSION_TOKEN", "AWS_TOKEN"),
}
# obstore ClientConfig keys; object_store reads them from AWS_<KEY> too, but obstore drops
# the environment's values as soon as client options are passed, so they are read here.
_CLIENT_KEYS = (
    "allow_http",
    "allow_invalid_certificates",
    "connect_timeout",
    "default_content_type",
    "http1_only",
    "http2_only",
    "pool_idle_timeout",
    "pool_max_idle_per_host",
    "proxy_url",
    "proxy_ca_certificate",
    "proxy_excludes",
    "randomize_addresses",
    "timeout",
    "user_agent",
)
_TRUE = {"1", "true", "yes", "on"}


def is_s3_object_store(store: Any) -> bool:
    """An obstore ``S3Store``, wrapped in ``zarr.storage.ObjectStore`` or not."""
    return obstore_kind(store) == "S3Store"


def s3_zarr_store(url: str, *, read_only: bool = False, check: bool = True) -> Any:
    """``zarr.storage.ObjectStore`` over :func:`open_s3_store` for ``s3://bucket/prefix``.

    With ``check`` (default) one LIST request first (:func:`check_s3_access`), so a bad
    endpoint, credentials or bucket raise :class:`StoreError` at once.
    """
    zstore = RetryingObjectStore(open_s3_store(url), read_only=read_only)
    if check:
        check_s3_access(zstore)
    return zstore


class RetryingObjectStore(zarr.storage.ObjectStore):  # type: ignore[type-arg]
    """``zarr.storage.ObjectStore`` whose create-if-absent writes and deletes ride out dropped
    connections.

    object_store retries a conditional PUT (``If-None-Match: *``, what zarr uses for implicit
    parent groups) on 5xx answers but not on a dropped connection or a timeout, because the
    request may have landed. For ``set_if_not_exists`` a retry is safe: if the first attempt
    landed, the retry is told the object exists, which zarr ignores. So those failures are
    retried here, with the same backoff and budget as the store's other requests.
    """

    async def set_if_not_exists(self, key: str, value: Any) -> None:
        await self._retried(lambda: super(RetryingObjectStore, self).set_if_not_exists(key, value))

    async def delete(self, key: str) -> None:
        # obstore sends a delete as S3's bulk POST ?delete, which object_store does not retry
        # after a dropped connection either; deleting again is harmless.
        await self._retried(lambda: super(RetryingObjectStore, self).delete(key))

    async def _retried(self, request: Any) -> None:
        config = getattr(self.store, "retry_config", None) or {}
        budget = config.get("retry_timeout", timedelta(seconds=DEFAULT_RETRY_BUDGET_S))
        deadline = time.monotonic() + budget.total_seconds()
        wait = 0.1
        while True:
            try:
                await request()
                return
            except Exception as exc:
                if not _dropped_unretried(exc) or time.monotonic() + wait > deadline:
                    raise
            await asyncio.sleep(wait)
            wait = min(random.uniform(0.1, 2 * wait), 15.0)  # backoff with jitter


def _dropped_unretried(exc: BaseException) -> bool:
    """A request that ended in a transport failure (no HTTP answer): object_store stops there
    for a conditional PUT, whatever it retried before (earlier 5xx answers)."""
    text = str(exc).split("\n\nDebug source:")[0]
    return (
        type(exc).__module__.startswith("obstore")
        and "error sending request" in text
        and STATUS.search(text) is None
    )


def open_s3_store(url: str) -> Any:
    """``obstore.store.S3Store`` for ``s3://bucket/prefix`` from the ``AWS_*`` environment.

    Credentials, region and endpoint come from the standard variables (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
    ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT``, ...); client options from ``AWS_ALLOW_HTTP``,
    ``AWS_CONNECT_TIMEOUT``, ``AWS_TIMEOUT``, ...; retries follow
    :func:`~topozarr_engine.storage.retry.s3_retry_config` (the budget of
    ``TOPOZARR_RETRY_BUDGET``, read now). A plain ``http://`` endpoint needs
    ``AWS_ALLOW_HTTP=true``.
    """
    S3Store = obstore_store_module().S3Store
    parsed = parse_url(url)
    if not parsed.is_s3:
        raise ValueError(f"expected an s3://bucket/prefix URL, got {url!r}")
    if not parsed.bucket:
        raise ValueError(f"{url!r} names no bucket; use s3://bucket/prefix")
    config = _s3_config_from_env()
    client_options = {**S3_CLIENT_OPTIONS, **_client_options_from_env()}
    endpoint = config.get("aws_endpoint_url_s3") or config.get("endpoint")
    if (
        isinstance(endpoint, str)
        and endpoint.lower().startswith("http://")
        and str(client_options.get("allow_http", "")).lower() not in _TRUE
    ):
        raise StoreError(
            f"the S3 endpoint {endpoint} for {url} is plain http: set AWS_ALLOW_HTTP=true to "
            "allow unencrypted connections, or use an https:// endpoint"
        )
    retry_config = s3_retry_config()
    try:
        return S3Store.from_url(
            url, config=config, client_options=client_options, retry_config=retry_config
        )
    except Exception as exc:  # obstore rejects a malformed URL or setting: say which
        raise StoreError(f"cannot configure an S3 store for {url}: {redact(str(exc))}") from None


def _s3_config_from_env() -> dict[str, str]:
    env = os.environ
    config: dict[str, str] = {}
    for key in sorted(_S3_CONFIG_KEYS):
        value = env.get(f"AWS_{key.upper()}")
        if value:
            config[key] = value
    for key, names in _S3_ENV_ALIASES.items():
        value = next((env[n] for n in names if env.get(n)), None)
        if value:
            config[key] = value
    return config


def _client_options_from_env() -> dict[str, str]:
    return {
        key: os.environ[f"AWS_{key.upper()}"]
        for key in _CLIENT_KEYS
        if os.environ.get(f"AWS_{key.upper()}")
    }


def check_s3_access(store: Any) -> None:
    """One LIST request under the store's prefix; :class:`StoreError` if it fails.

    Catches an unreachable endpoint, rejected credentials and a missing bucket before a
    write starts (zarr reads a missing bucket as an empty store, and fails only later). The
    request goes through a copy of the store with the short retry policy
    ``S3_PROBE_RETRY_CONFIG``, so it fails in about a second however long the store itself
    retries.
    """
    import obstore

    translated = None
    try:
        obstore.list_with_delimiter(_probe_store(inner_store(store)))
    except Exception as exc:
        translated = translate_store_error(exc, store)
        if translated is None:
            raise
    if translated is not None:
        raise translated  # outside the except block: the raw error is not even its context


def _probe_store(inner: Any) -> Any:
    """``inner`` (an obstore ``S3Store``) with the access check's short retry policy."""
    try:
        return type(inner)(
            prefix=inner.prefix,
            config=inner.config,
            client_options=inner.client_options,
            retry_config=S3_PROBE_RETRY_CONFIG,
            credential_provider=inner.credential_provider,
        )
    except Exception:  # a store obstore cannot rebuild: check it as it is
        return inner
