"""How another process reopens a store: the picklable part of a storage target.

A :class:`Reopen` holds a local directory, an ``s3://`` URL, or an S3 bucket/prefix with the
non-secret part of its configuration. Credentials stay behind: each process takes them from
its own ``AWS_*`` environment when it reopens the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zarr

from topozarr_engine.storage.obstores import inner_store, obstore_kind, obstore_store_module
from topozarr_engine.storage.secrets import SECRET_KEYS

__all__ = ["CREDENTIAL_KEYS", "Reopen", "reopen_spec"]

#: S3Store config keys never pickled: the credentials and the customer encryption key.
CREDENTIAL_KEYS = SECRET_KEYS | {"access_key_id"}


@dataclass(frozen=True)
class Reopen:
    """What reopens a store elsewhere.

    Attributes
    ----------
    how
        ``"path"`` (zarr ``LocalStore``), ``"obstore-local"`` (``ObjectStore`` over an
        obstore ``LocalStore``), ``"s3-url"`` (configured from the environment, as an
        ``s3://`` URL always is) or ``"s3-store"`` (an obstore ``S3Store`` with ``options``).
    location
        The absolute directory or the ``s3://`` URL.
    """

    how: str
    location: str
    read_only: bool = False
    wrapped: bool = True
    options: dict[str, Any] = field(default_factory=dict)

    def open(self) -> Any:
        """The store (or URL) to resolve in this process."""
        if self.how == "path":
            return zarr.storage.LocalStore(self.location, read_only=self.read_only)
        if self.how == "s3-url":
            return self.location
        module = obstore_store_module()
        if self.how == "obstore-local":
            inner = module.LocalStore(self.location)
        else:
            inner = module.S3Store(**self.options)
        if not self.wrapped:
            return inner
        return zarr.storage.ObjectStore(inner, read_only=self.read_only)


def reopen_spec(user_value: Any, store: Any, kind: str) -> Reopen | None:
    """How to reopen ``store`` (resolved from ``user_value``); None if it cannot be."""
    read_only = bool(getattr(store, "read_only", False))
    if kind == "s3" and isinstance(user_value, str):
        return Reopen("s3-url", user_value)
    if isinstance(store, zarr.storage.LocalStore):
        return Reopen("path", str(Path(store.root).resolve()), read_only)
    wrapped = isinstance(store, zarr.storage.ObjectStore)
    inner = inner_store(store)
    if obstore_kind(store) == "LocalStore" and inner.prefix is not None:
        return Reopen("obstore-local", str(Path(inner.prefix).resolve()), read_only, wrapped)
    if obstore_kind(store) != "S3Store" or inner.credential_provider is not None:
        return None  # a credential provider is a Python callback of this process
    config = {k: v for k, v in dict(inner.config or {}).items() if k not in CREDENTIAL_KEYS}
    options = {
        "prefix": inner.prefix,
        "config": config,
        "client_options": dict(inner.client_options or {}),
        "retry_config": dict(inner.retry_config or {}),
    }
    prefix = (inner.prefix or "").strip("/")
    url = f"s3://{config.get('bucket', '?')}/{prefix}".rstrip("/")
    return Reopen("s3-store", url, read_only, wrapped, options)
