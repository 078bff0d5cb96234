"""Store targets of ``Pyramid.write``: paths, zarr stores, icechunk sessions and ``s3://`` URLs.

``resolve_store`` turns what a user passes into something ``zarr.open_group`` accepts. An
``s3://bucket/prefix`` URL becomes ``zarr.storage.ObjectStore(obstore.store.S3Store)``
configured from the standard ``AWS_*`` environment variables, with a fail-fast retry policy,
and is checked with one LIST request before anything is written, so an unreachable endpoint,
rejected credentials or a missing bucket fail at once with a :class:`StoreError` that names
the bucket and key (and never a secret).

``s3_target_config`` describes a resolved S3 (or local) target as plain dicts, for the native
writer. ``translate_store_error`` / ``store_errors`` turn raw obstore errors into
:class:`StoreError` for code that does I/O on a resolved store.

obstore is optional: ``pip install 'topozarr[s3]'``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import zarr

from topozarr_plan.errors import StoreError

__all__ = [
    "S3_CLIENT_OPTIONS",
    "S3_RETRY_CONFIG",
    "StoreError",
    "check_s3_access",
    "is_s3_url",
    "open_s3_store",
    "resolve_store",
    "s3_target_config",
    "s3_zarr_store",
    "store_errors",
    "translate_store_error",
]

_S3_SCHEMES = ("s3://", "s3a://")

#: Retry policy of stores built from ``s3://`` URLs: a few quick retries (5xx, dropped
#: connections, timeouts) instead of obstore's default of 10 retries over up to 3 minutes, so
#: an unreachable endpoint fails in seconds.
S3_RETRY_CONFIG: dict[str, Any] = {
    "max_retries": 3,
    "retry_timeout": timedelta(seconds=15),
    "backoff": {
        "init_backoff": timedelta(milliseconds=100),
        "max_backoff": timedelta(seconds=2),
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
    zstore = zarr.storage.ObjectStore(open_s3_store(url), read_only=read_only)
    if check:
        check_s3_access(zstore)
    return zstore


def open_s3_store(url: str) -> Any:
    """``obstore.store.S3Store`` for ``s3://bucket/prefix`` from the ``AWS_*`` environment.

    Credentials, region and endpoint come from the standard variables (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
    ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT``, ...); client options from ``AWS_ALLOW_HTTP``,
    ``AWS_CONNECT_TIMEOUT``, ``AWS_TIMEOUT``, ...; retries follow :data:`S3_RETRY_CONFIG`.
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
    try:
        return S3Store.from_url(
            url, config=config, client_options=client_options, retry_config=S3_RETRY_CONFIG
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
    write starts (zarr reads a missing bucket as an empty store, and fails only later).
    """
    import obstore

    translated = None
    try:
        obstore.list_with_delimiter(_inner(store))
    except Exception as exc:
        translated = translate_store_error(exc, store)
        if translated is None:
            raise
    if translated is not None:
        raise translated  # outside the except block: the raw error is not even its context


_REQUEST = re.compile(r"Error performing (?P<method>[A-Z]+) (?P<url>\S+)")
_LIST = re.compile(r"Error performing list request")
_CODE = re.compile(r"<Code>(?P<code>[^<]+)</Code>")
_STATUS = re.compile(r"status code: (?P<status>\d{3}[^:]*)")
_RETRIES = re.compile(r"after (?P<n>\d+) retries")
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
    """A clear :class:`StoreError` for an obstore error raised by ``store``, else ``None``.

    The message names the S3 location (``s3://bucket/key``), the HTTP method and status or
    the connection failure, and the fix; secret values of the store's configuration are
    masked. Raise the result after leaving the ``except`` block that caught ``exc`` (as
    :func:`store_errors` does): obstore's own message is kept in it (redacted, without its
    debug dump), and the raw exception is neither its cause nor its context, so no secret can
    travel with the traceback.
    """
    if isinstance(exc, StoreError):
        return exc
    # obstore maps 404 to the built-in FileNotFoundError; other built-ins are not ours.
    ours = type(exc).__module__.startswith("obstore") or (
        isinstance(exc, FileNotFoundError) and _REQUEST.search(str(exc)) is not None
    )
    if not ours:
        return None
    raw = str(exc)
    secrets = _secrets_of(store)
    # obstore's first paragraph, without its debug dump and the XML body (its code is kept).
    first = raw.split("\n\nDebug source:")[0].split(": <?xml")[0].strip().rstrip(":")
    first = _redact(first, secrets)
    where = _location(raw, store)
    request = _REQUEST.search(raw)
    method = "LIST" if _LIST.search(raw) else (request.group("method") if request else None)
    code_match = _CODE.search(raw)
    code = code_match.group("code") if code_match else None
    status_match = _STATUS.search(raw)
    status = status_match.group("status").strip() if status_match else None
    doing = f"{method} {where}" if method else where
    name = type(exc).__name__
    if code == "NoSuchBucket":
        message = (
            f"S3 bucket {_bucket(store, raw)!r} does not exist at {_endpoint(store, raw)} "
            f"({doing} -> NoSuchBucket); create the bucket or fix the URL"
        )
    elif status and status.startswith("404") and _LIST.search(raw):
        # A listing never 404s for a missing key: the bucket, or the endpoint, is wrong.
        message = (
            f"S3 bucket {_bucket(store, raw)!r} not found at {_endpoint(store, raw)} "
            f"({doing} -> {code or status}, no S3 error code); check the bucket name and "
            "that AWS_ENDPOINT_URL (or the store's endpoint) is an S3 endpoint"
        )
    elif code in _CREDENTIAL_CODES or name == "UnauthenticatedError":
        message = (
            f"S3 rejected the credentials for {doing} ({code or status or name}); check "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) or the store's "
            "config"
        )
    elif name == "PermissionDeniedError" or (status and status.startswith("403")):
        message = (
            f"S3 denied {doing} ({code or status or 'access denied'}); the credentials lack "
            "permission for this operation on this bucket"
        )
    elif "error sending request" in raw or ("connect" in raw.lower() and not status):
        retries = _RETRIES.search(raw)
        after = f" after {retries.group('n')} retries" if retries else ""
        message = (
            f"cannot reach the S3 endpoint {_endpoint(store, raw)} for {doing}: the connection "
            f"failed{after}; check AWS_ENDPOINT_URL (or the store's endpoint) and that the "
            "server is up"
        )
    else:
        message = f"S3 request failed: {doing}"
        if status or code:
            message += f" ({', '.join(x for x in (code, status) if x)})"
    return StoreError(f"{message}. obstore: {first}")


@contextlib.contextmanager
def store_errors(store: Any) -> Iterator[None]:
    """Re-raise obstore errors from the block as :class:`StoreError` (see
    :func:`translate_store_error`); other exceptions pass through unchanged.

    A ``with`` block cannot drop the raw error from the new exception's ``__context__``, so
    it is raised ``from None`` (tracebacks do not show the raw error) and the raw error's own
    message is redacted in place.
    """
    try:
        yield
    except Exception as exc:
        translated = translate_store_error(exc, store)
        if translated is None or translated is exc:
            raise
        exc.args = (_redact(str(exc), _secrets_of(store)),)
        raise translated from None


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
