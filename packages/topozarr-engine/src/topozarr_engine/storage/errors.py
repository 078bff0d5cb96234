"""The one error translator of topozarr's storage: raw storage errors -> :class:`StoreError`.

Raw errors come from obstore (the zarr path) and from the kernel's native writer, which only
formats them (``"PUT s3://bucket/key failed: <object_store's text>"``, secrets scrubbed);
explaining them (what failed, why, and the way out) happens here and nowhere else.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from topozarr_engine.errors import RegionError
from topozarr_engine.storage.exceptions import StorageConfigError, StoreError
from topozarr_engine.storage.obstores import inner_store
from topozarr_engine.storage.retry import RETRY_BUDGET_ENV
from topozarr_engine.storage.secrets import redact, secrets_of

__all__ = [
    "STATUS",
    "StorageConfigError",
    "StoreError",
    "store_errors",
    "translate_store_error",
]

_REQUEST = re.compile(r"Error performing (?P<method>[A-Z]+) (?P<url>\S+)")
_LIST = re.compile(r"Error performing list request")
_CODE = re.compile(r"<Code>(?P<code>[^<]+)</Code>")
#: The HTTP status object_store names in an error (absent: no answer came back).
STATUS = re.compile(r"status code: (?P<status>\d{3}[^:]*)")
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
    first = redact(first, secrets_of(store))
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


def _parts(raw: str, store: Any) -> tuple[str, str | None, str | None]:
    """What was requested (``"PUT s3://b/k"``), the S3 error code and the HTTP status."""
    kernel = _KERNEL.match(raw)
    where = kernel.group("url") if kernel else _location(raw, store)
    request = _REQUEST.search(raw)
    method = "LIST" if _LIST.search(raw) else (request.group("method") if request else None)
    code_match = _CODE.search(raw)
    status_match = STATUS.search(raw)
    return (
        f"{method} {where}" if method else where,
        code_match.group("code") if code_match else None,
        status_match.group("status").strip() if status_match else None,
    )


def _explain(raw: str, store: Any, name: str) -> str:
    """What failed, why, and the way out (without obstore's own text)."""
    doing, code, status = _parts(raw, store)
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
    return _explain_failure(raw, store, doing, code, status)


def _explain_failure(raw: str, store: Any, doing: str, code: str | None, status: str | None) -> str:
    """Requests that failed for want of a (good) answer: throttling, 5xx, no connection."""
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
        _redact_chain(exc, secrets_of(store))
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
            e.args = (redact(str(e), secrets),)
        todo += [e.__cause__, e.__context__]


def _bucket(store: Any, raw: str) -> str:
    config = getattr(inner_store(store), "config", None) or {}
    if config.get("bucket"):
        return str(config["bucket"])
    match = re.search(r"<BucketName>([^<]+)</BucketName>", raw)
    return match.group(1) if match else "?"


def _location(raw: str, store: Any) -> str:
    """``s3://bucket/key`` of the failed request (the store's prefix when none is named)."""
    bucket = _bucket(store, raw)
    prefix = (getattr(inner_store(store), "prefix", None) or "").strip("/")
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
    config = getattr(inner_store(store), "config", None) or {}
    for key in ("aws_endpoint_url_s3", "endpoint"):
        if config.get(key):
            return str(config[key])
    request = _REQUEST.search(raw)
    if request:
        scheme, rest = request.group("url").split("://", 1)
        return f"{scheme}://{rest.split('/', 1)[0]}"
    return "the S3 endpoint"
