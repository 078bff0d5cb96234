"""Store targets of ``Pyramid.write``: paths, zarr stores, icechunk sessions and ``s3://`` URLs.

``resolve_store`` turns what a user passes into something ``zarr.open_group`` accepts. An
``s3://bucket/prefix`` URL becomes ``zarr.storage.ObjectStore(obstore.store.S3Store)``
configured from the standard ``AWS_*`` environment variables, with retries within a budget,
and is checked with one LIST request before anything is written, so an unreachable endpoint,
rejected credentials or a missing bucket fail at once with a :class:`StoreError` that names
the bucket and key (and never a secret).

Flaky storage: transient failures (5xx, ``503 SlowDown`` and ``429`` throttling, timeouts,
dropped connections) are retried with exponential backoff and jitter for up to a retry budget
per request, :data:`DEFAULT_RETRY_BUDGET_S` seconds unless the ``TOPOZARR_RETRY_BUDGET``
environment variable says otherwise (read when a store is opened). Client errors (4xx: a wrong
secret, a missing bucket) are never retried, and the access check uses a short budget of its
own, so those fail at once. A request that still fails when its budget is spent raises
:class:`StoreError`.

``s3_target_config`` describes a resolved S3 (or local) target as plain dicts, for the native
writer. ``translate_store_error`` / ``store_errors`` turn raw obstore errors into
:class:`StoreError` for code that does I/O on a resolved store.

obstore is optional: ``pip install 'topozarr[s3]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import zarr
from topozarr_engine import RegionError

from topozarr_plan.errors import PlanError, StoreError

__all__ = [
    "DEFAULT_RETRY_BUDGET_S",
    "RETRY_BUDGET_ENV",
    "S3_CLIENT_OPTIONS",
    "S3_PROBE_RETRY_CONFIG",
    "S3_RETRY_CONFIG",
    "RetryingObjectStore",
    "StoreError",
    "check_s3_access",
    "is_s3_url",
    "open_s3_store",
    "resolve_store",
    "retry_budget",
    "s3_retry_config",
    "s3_target_config",
    "s3_zarr_store",
    "store_errors",
    "translate_store_error",
]

_S3_SCHEMES = ("s3://", "s3a://")

#: Environment variable holding the retry budget, in seconds (``topozarr build --retry-budget``
#: sets it for one run).
RETRY_BUDGET_ENV = "TOPOZARR_RETRY_BUDGET"

#: Default retry budget of one request, in seconds: long enough to ride out an S3 throttling
#: episode or a gateway restart, short enough for request signatures to stay valid.
DEFAULT_RETRY_BUDGET_S = 300.0


def retry_budget() -> float:
    """The retry budget in seconds: ``TOPOZARR_RETRY_BUDGET`` if set, else the default.

    Raises
    ------
    PlanError (a ValueError)
        The variable is not a positive number of seconds.
    """
    raw = os.environ.get(RETRY_BUDGET_ENV, "").strip()
    if not raw:
        return DEFAULT_RETRY_BUDGET_S
    try:
        budget = float(raw)
    except ValueError:
        budget = float("nan")
    if not 0 < budget < float("inf"):
        raise PlanError(
            f"{RETRY_BUDGET_ENV}={raw!r} is not a positive number of seconds; set it to e.g. "
            f"{RETRY_BUDGET_ENV}={DEFAULT_RETRY_BUDGET_S:g}, or unset it for the default"
        )
    return budget


def s3_retry_config(budget: float | None = None) -> dict[str, Any]:
    """obstore ``retry_config`` that retries transient failures for ``budget`` seconds.

    ``budget`` defaults to :func:`retry_budget`. Backoff starts at 0.1 s and grows twofold
    with jitter, each wait capped at an eighth of the budget (between 0.2 s and 15 s), so a
    small budget still gets several attempts; the count of retries is only a backstop. The
    kernel's native writer derives the same policy from the same budget
    (``topozarr_core.NativeStore.s3``).
    """
    seconds = retry_budget() if budget is None else budget
    cap = min(max(seconds / 8, 0.2), 15.0)
    return {
        "max_retries": 10_000,
        "retry_timeout": timedelta(seconds=seconds),
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=cap),
            "base": 2,
        },
    }


#: Retry policy of stores built from ``s3://`` URLs with the default budget.
S3_RETRY_CONFIG: dict[str, Any] = s3_retry_config(DEFAULT_RETRY_BUDGET_S)

#: Retry policy of the access check (one LIST before a write): a few quick retries, so an
#: unreachable endpoint fails in about a second while a single dropped connection does not.
S3_PROBE_RETRY_CONFIG: dict[str, Any] = {
    "max_retries": 3,
    "retry_timeout": timedelta(seconds=5),
    "backoff": {
        "init_backoff": timedelta(milliseconds=100),
        "max_backoff": timedelta(seconds=1),
        "base": 2,
    },
}

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
_SECRET_KEYS = frozenset({"secret_access_key", "session_token", "sse_customer_key_base64"})
_TRUE = {"1", "true", "yes", "on"}


# ----------------------------------------------------------------------------- resolving


def is_s3_url(target: object) -> bool:
    """True for an ``s3://`` (or ``s3a://``) URL string."""
    return isinstance(target, str) and target.lower().startswith(_S3_SCHEMES)


def resolve_store(store: Any, *, check: bool = True) -> Any:
    """Turn what the user passed to ``Pyramid.write`` into something ``zarr.open_group`` takes.

    Parameters
    ----------
    store
        A local path (``str`` / ``Path`` / ``file://`` URL), an ``s3://bucket/prefix`` URL,
        a zarr store (``LocalStore``, ``MemoryStore``, ``ObjectStore``, an icechunk session
        store) or an icechunk ``Session``. Other URLs are left to zarr / fsspec.
    check
        For S3 targets (``s3://`` URLs and ``ObjectStore`` over ``obstore.store.S3Store``),
        send one LIST request first so that an unreachable endpoint, rejected credentials or
        a missing bucket raise :class:`StoreError` before anything is written.

    Raises
    ------
    ImportError
        An ``s3://`` URL without obstore installed.
    StoreError
        The S3 check failed (the message names the bucket, key and cause, never a secret).
    """
    if isinstance(store, Path):
        return zarr.storage.LocalStore(store)
    if isinstance(store, str):
        if is_s3_url(store):
            return s3_zarr_store(store, check=check)
        if "://" in store and not store.startswith("file://"):
            return store  # let zarr / fsspec resolve other URLs
        return zarr.storage.LocalStore(store.removeprefix("file://"))
    # An icechunk Session: write through its store.
    if type(store).__name__ == "Session" and hasattr(store, "store"):
        return store.store
    if check and _is_s3_object_store(store):
        check_s3_access(store)
    return store


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
        and _STATUS.search(text) is None
    )


def open_s3_store(url: str) -> Any:
    """``obstore.store.S3Store`` for ``s3://bucket/prefix`` from the ``AWS_*`` environment.

    Credentials, region and endpoint come from the standard variables (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
    ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT``, ...); client options from ``AWS_ALLOW_HTTP``,
    ``AWS_CONNECT_TIMEOUT``, ``AWS_TIMEOUT``, ...; retries follow :func:`s3_retry_config`
    (the budget of ``TOPOZARR_RETRY_BUDGET``, read now).
    A plain ``http://`` endpoint needs ``AWS_ALLOW_HTTP=true``.
    """
    S3Store = _obstore_store_module().S3Store
    if not is_s3_url(url):
        raise ValueError(f"expected an s3://bucket/prefix URL, got {url!r}")
    bucket = url.split("://", 1)[1].split("/", 1)[0]
    if not bucket:
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
        raise StoreError(f"cannot configure an S3 store for {url}: {_redact(str(exc))}") from None


def _obstore_store_module() -> Any:
    try:
        import obstore.store
    except ImportError as exc:
        raise ImportError(
            "s3:// stores need obstore: pip install 'topozarr[s3]' (or pip install obstore)"
        ) from exc
    return obstore.store


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


def _inner(store: Any) -> Any:
    """The obstore store under a ``zarr.storage.ObjectStore`` (or ``store`` itself)."""
    return store.store if isinstance(store, zarr.storage.ObjectStore) else store


def _is_s3_object_store(store: Any) -> bool:
    inner = _inner(store)
    return type(inner).__name__ == "S3Store" and type(inner).__module__.startswith("obstore")


# ----------------------------------------------------------------------------- config


class _SecretDict(dict[str, Any]):
    """A dict whose repr masks secret values (it may end up in a log or a traceback)."""

    def __repr__(self) -> str:
        return repr(
            {k: ("***" if k in _SECRET_KEYS and v else v) for k, v in self.items()}
        ).replace("'***'", "***")


def s3_target_config(store: Any) -> dict[str, Any]:
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
    if isinstance(store, str | Path) and not is_s3_url(store):
        text = str(store)
        if "://" in text and not text.startswith("file://"):
            raise ValueError(f"{text!r} is neither an s3:// URL nor a local path")
        return {"kind": "local", "root": str(Path(text.removeprefix("file://")).absolute())}
    if isinstance(store, zarr.storage.LocalStore):
        return {"kind": "local", "root": str(Path(store.root).absolute())}
    inner = open_s3_store(store) if is_s3_url(store) else _inner(store)
    kind = type(inner).__name__ if type(inner).__module__.startswith("obstore") else None
    if kind == "LocalStore":
        if inner.prefix is None:
            raise ValueError("an obstore LocalStore without a prefix has no root directory")
        return {"kind": "local", "root": str(Path(inner.prefix).absolute())}
    if kind != "S3Store":
        raise ValueError(
            f"{type(store).__name__} is not an S3 or local target: the native writer takes a "
            "local path, an s3:// URL, zarr.storage.LocalStore or an obstore-backed "
            "zarr.storage.ObjectStore (S3Store or LocalStore)"
        )
    config = _SecretDict(inner.config or {})
    bucket = config.pop("bucket", None)
    if bucket is None:  # obstore keeps the URL's bucket under its config; be defensive
        raise ValueError("the S3Store has no bucket in its config")
    prefix = (inner.prefix or "").strip("/")
    return _SecretDict(
        kind="s3",
        url=f"s3://{bucket}/{prefix}".rstrip("/"),
        bucket=bucket,
        prefix=prefix,
        config=config,
        client_options=dict(inner.client_options or {}),
        retry_config=dict(inner.retry_config or {}),
    )


# ----------------------------------------------------------------------------- errors


def check_s3_access(store: Any) -> None:
    """One LIST request under the store's prefix; :class:`StoreError` if it fails.

    Catches an unreachable endpoint, rejected credentials and a missing bucket before a
    write starts (zarr reads a missing bucket as an empty store, and fails only later). The
    request goes through a copy of the store with :data:`S3_PROBE_RETRY_CONFIG`, so it fails
    in about a second however long the store itself retries.
    """
    import obstore

    translated = None
    try:
        obstore.list_with_delimiter(_probe_store(_inner(store)))
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


_REQUEST = re.compile(r"Error performing (?P<method>[A-Z]+) (?P<url>\S+)")
_LIST = re.compile(r"Error performing list request")
_CODE = re.compile(r"<Code>(?P<code>[^<]+)</Code>")
_STATUS = re.compile(r"status code: (?P<status>\d{3}[^:]*)")
_RETRIES = re.compile(r"after (?P<n>\d+) retries")
_BUDGET = re.compile(r"retry_timeout: (?P<budget>[0-9.]+\w*)")
# A native writer's error: "PUT s3://bucket/key failed: ..." (see topozarr_core target.rs).
_KERNEL = re.compile(r"(?P<method>PUT|GET|DELETE) (?P<url>s3://\S+) failed: ")
_TRANSIENT_STATUS = {"408", "429", "500", "502", "503", "504"}
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "AuthorizationHeaderMalformed",
    "InvalidSecurity",
}


def translate_store_error(exc: BaseException, store: Any) -> StoreError | None:
    """A clear :class:`StoreError` for a storage error raised writing to ``store``, else ``None``.

    Storage errors are obstore's, the kernel's native S3 writer's (an ``OSError`` whose
    message starts ``PUT s3://...``) and a worker's ``RegionError`` caused by either. The
    message names the S3 location (``s3://bucket/key``), the HTTP method and status or the
    connection failure, and the fix; secret values of the store's configuration are masked.
    Raise the result after leaving the ``except`` block that caught ``exc`` (as
    :func:`store_errors` does): the original message is kept in it (redacted, without its
    debug dump), and the raw exception is neither its cause nor its context, so no secret can
    travel with the traceback.
    """
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, RegionError):  # a worker's storage error: the cause says it all
        cause = exc.__cause__ or getattr(exc, "cause", None)
        return translate_store_error(cause, store) if cause is not None else None
    if not _is_storage_error(exc):
        return None
    raw = str(exc)
    first = raw.split("\n\nDebug source:")[0].split(": <?xml")[0].strip().rstrip(":")
    first = _redact(first, _secrets_of(store))
    source = "object_store" if _KERNEL.match(raw) else "obstore"
    return StoreError(f"{_explain(raw, store, type(exc).__name__)}. {source}: {first}")


def _is_storage_error(exc: BaseException) -> bool:
    # obstore maps 404 to the built-in FileNotFoundError; other built-ins are not ours, except
    # the kernel's S3 errors (named by their message).
    if type(exc).__module__.startswith("obstore"):
        return True
    if isinstance(exc, FileNotFoundError) and _REQUEST.search(str(exc)) is not None:
        return True
    return isinstance(exc, OSError) and _KERNEL.match(str(exc)) is not None


def _explain(raw: str, store: Any, name: str) -> str:
    """What failed, why, and the way out (without obstore's own text)."""
    kernel = _KERNEL.match(raw)
    where = kernel.group("url") if kernel else _location(raw, store)
    request = _REQUEST.search(raw)
    method = "LIST" if _LIST.search(raw) else (request.group("method") if request else None)
    code_match = _CODE.search(raw)
    code = code_match.group("code") if code_match else None
    status_match = _STATUS.search(raw)
    status = status_match.group("status").strip() if status_match else None
    doing = f"{method} {where}" if method else where
    if code == "NoSuchBucket":
        return (
            f"S3 bucket {_bucket(store, raw)!r} does not exist at {_endpoint(store, raw)} "
            f"({doing} -> NoSuchBucket); create the bucket or fix the URL"
        )
    if status and status.startswith("404") and _LIST.search(raw):
        # A listing never 404s for a missing key: the bucket, or the endpoint, is wrong.
        return (
            f"S3 bucket {_bucket(store, raw)!r} not found at {_endpoint(store, raw)} "
            f"({doing} -> {code or status}, no S3 error code); check the bucket name and "
            "that AWS_ENDPOINT_URL (or the store's endpoint) is an S3 endpoint"
        )
    if code in _CREDENTIAL_CODES or name == "UnauthenticatedError":
        return (
            f"S3 rejected the credentials for {doing} ({code or status or name}); check "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) or the store's "
            "config"
        )
    if name in ("PermissionDeniedError", "PermissionError") or (
        status and status.startswith("403")
    ):
        return (
            f"S3 denied {doing} ({code or status or 'access denied'}); the credentials lack "
            "permission for this operation on this bucket"
        )
    if status and status[:3] in _TRANSIENT_STATUS and _RETRIES.search(raw):
        answer = f"{code} ({status})" if code else status
        return f"S3 kept answering {doing} with {answer}{_gave_up(raw)}"
    if "error sending request" in raw or ("connect" in raw.lower() and not status):
        retries = _RETRIES.search(raw)
        after = f" after {retries.group('n')} retries" if retries else ""
        return (
            f"cannot reach the S3 endpoint {_endpoint(store, raw)} for {doing}: the connection "
            f"failed{after}; check AWS_ENDPOINT_URL (or the store's endpoint) and that the "
            f"server is up{_gave_up(raw, short=True)}"
        )
    message = f"S3 request failed: {doing}"
    if status or code:
        message += f" ({', '.join(x for x in (code, status) if x)})"
    return message + _gave_up(raw, short=True)


def _gave_up(raw: str, *, short: bool = False) -> str:
    """How long the request was retried, and the way out, when it was retried at all."""
    retries = _RETRIES.search(raw)
    budget = _BUDGET.search(raw)
    if retries is None or budget is None:
        return ""
    hint = (
        f"rerun later, or give each request more time with {RETRY_BUDGET_ENV}=SECONDS "
        "(topozarr build --retry-budget SECONDS)"
    )
    if short:
        return f"; if it is only failing for a while, {hint}"
    return (
        f": gave up after {retries.group('n')} retries, when the retry budget of "
        f"{budget.group('budget')} was spent; {hint}"
    )


@contextlib.contextmanager
def store_errors(store: Any) -> Iterator[None]:
    """Re-raise obstore errors from the block as :class:`StoreError` (see
    :func:`translate_store_error`); other exceptions pass through unchanged.

    A ``with`` block cannot drop the raw error from the new exception's ``__context__``, so
    it is raised ``from None`` (tracebacks do not show the raw error) and the messages of the
    raw error and of every exception chained to it are redacted in place.
    """
    try:
        yield
    except Exception as exc:
        translated = translate_store_error(exc, store)
        if translated is None or translated is exc:
            raise
        _redact_chain(exc, _secrets_of(store))
        raise translated from None


def _redact_chain(exc: BaseException, secrets: list[str]) -> None:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if not isinstance(e, StoreError):
            e.args = (_redact(str(e), secrets),)
        todo += [e.__cause__, e.__context__]


def _secrets_of(store: Any) -> list[str]:
    inner = _inner(store)
    config = getattr(inner, "config", None) or {}
    found = [str(v) for k, v in dict(config).items() if k in _SECRET_KEYS and v]
    found += [
        os.environ[n]
        for n in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SSE_CUSTOMER_KEY_BASE64")
        if os.environ.get(n)
    ]
    return found


def _redact(text: str, secrets: list[str] | None = None) -> str:
    for secret in secrets if secrets is not None else _secrets_of(None):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _bucket(store: Any, raw: str) -> str:
    config = getattr(_inner(store), "config", None) or {}
    if config.get("bucket"):
        return str(config["bucket"])
    match = re.search(r"<BucketName>([^<]+)</BucketName>", raw)
    return match.group(1) if match else "?"


def _location(raw: str, store: Any) -> str:
    """``s3://bucket/key`` of the failed request (the store's prefix when none is named)."""
    inner = _inner(store)
    bucket = _bucket(store, raw)
    prefix = (getattr(inner, "prefix", None) or "").strip("/")
    key = None
    match = re.search(r"for path (?P<path>\S+?):", raw) or re.search(r"<Key>([^<]+)</Key>", raw)
    if match:
        key = match.group(1)
    else:
        request = _REQUEST.search(raw)
        if request:
            path = request.group("url").split("?", 1)[0].split("://", 1)[-1]
            parts = path.split("/", 2)  # host, bucket, key
            if len(parts) == 3 and parts[1] == bucket:
                key = parts[2]
    if key is None:  # obstore names full keys (prefix included) when it names one
        key = prefix
    return f"s3://{bucket}/{key}".rstrip("/")


def _endpoint(store: Any, raw: str) -> str:
    config = getattr(_inner(store), "config", None) or {}
    for key in ("aws_endpoint_url_s3", "endpoint"):
        if config.get(key):
            return str(config[key])
    request = _REQUEST.search(raw)
    if request:
        scheme, rest = request.group("url").split("://", 1)
        return f"{scheme}://{rest.split('/', 1)[0]}"
    return "the S3 endpoint"
