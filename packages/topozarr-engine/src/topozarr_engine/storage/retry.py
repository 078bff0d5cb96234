"""How long a storage request is retried: the retry budget and the backoff built from it.

Transient failures (5xx, ``503 SlowDown`` and ``429`` throttling, timeouts, dropped
connections) are retried with exponential backoff and jitter for up to a budget per request,
:data:`DEFAULT_RETRY_BUDGET_S` seconds unless ``TOPOZARR_RETRY_BUDGET`` says otherwise (read
when a store is opened). Both io paths use the same policy: obstore takes
:func:`s3_retry_config`, the kernel's native writer :func:`native_retry_options` of it.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from topozarr_engine.storage.exceptions import StorageConfigError

__all__ = [
    "DEFAULT_RETRY_BUDGET_S",
    "RETRY_BUDGET_ENV",
    "S3_PROBE_RETRY_CONFIG",
    "S3_RETRY_CONFIG",
    "native_retry_options",
    "retry_budget",
    "s3_retry_config",
]

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
    StorageConfigError (a ValueError)
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
        raise StorageConfigError(
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


def _seconds(value: Any) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else None


def native_retry_options(config: dict[str, Any]) -> dict[str, Any]:
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
