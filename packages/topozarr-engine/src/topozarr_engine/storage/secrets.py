"""The secrets of a store's configuration, and the one scrubber that masks them.

The scrubbing itself is the kernel's (``topozarr_core.scrub_secrets``, the function the native
writer masks its own error messages with): one implementation, so a message reads the same
whichever io path raised it. It lives in Rust rather than here because the native writer
formats errors on threads that never hold the GIL, where calling back into Python is not an
option, while Python can call Rust freely.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from topozarr_engine.kernel import scrub_secrets
from topozarr_engine.storage.obstores import inner_store

__all__ = ["SECRET_ENV", "SECRET_KEYS", "SecretDict", "redact", "secrets_of"]

#: obstore S3Config keys whose values are secrets.
SECRET_KEYS = frozenset({"secret_access_key", "session_token", "sse_customer_key_base64"})
#: Environment variables whose values are secrets.
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SSE_CUSTOMER_KEY_BASE64")


class SecretDict(dict[str, Any]):
    """A dict whose repr masks secret values (it may end up in a log or a traceback)."""

    def __repr__(self) -> str:
        return repr({k: ("***" if k in SECRET_KEYS and v else v) for k, v in self.items()}).replace(
            "'***'", "***"
        )


def secrets_of(store: Any) -> list[str]:
    """The secret values of ``store``'s configuration and of the ``AWS_*`` environment."""
    config = getattr(inner_store(store), "config", None) or {}
    found = [str(v) for k, v in dict(config).items() if k in SECRET_KEYS and v]
    found += [os.environ[n] for n in SECRET_ENV if os.environ.get(n)]
    return found


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every secret (default: the environment's) replaced by ``***``."""
    return scrub_secrets(text, list(secrets if secrets is not None else secrets_of(None)))
