"""What a user's store argument becomes: a :class:`StorageTarget` (:func:`resolve_target`).

A target holds the zarr store (what ``zarr.open_group`` takes), a description for messages,
what the store can do (write from several threads, create a key only if absent, take the
native writer) and how another process reopens it, which makes it picklable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zarr

from topozarr_engine.storage.native import DEFAULT_MAX_INFLIGHT_BYTES, NativeWriter
from topozarr_engine.storage.native_config import native_kind, native_writer
from topozarr_engine.storage.reopen import Reopen, reopen_spec
from topozarr_engine.storage.s3 import (
    check_s3_access,
    is_s3_object_store,
    open_s3_store,
    s3_zarr_store,
)
from topozarr_engine.storage.shard_stream import local_root, remove_partial_shards
from topozarr_engine.storage.urls import parse_url

__all__ = ["StorageTarget", "open_for_reading", "open_object_store", "resolve_target"]


@dataclass(frozen=True, eq=False)
class StorageTarget:
    """A resolved write target.

    Attributes
    ----------
    store
        What ``zarr.open_group`` takes: a zarr store, or a URL string zarr / fsspec resolve.
    description
        The target as a path, URL or store type name, for messages (never a secret).
    kind
        ``"local"`` (a directory), ``"s3"``, ``"url"`` (another URL, left to zarr / fsspec)
        or ``"store"`` (any other zarr store).

    Pickling keeps only :attr:`reopen` (a path, an ``s3://`` URL, or an S3 bucket/prefix with
    its non-secret configuration); the unpickled copy reopens the store, so a cluster worker
    gets its own. Credentials are never pickled: the worker reads them from its own
    ``AWS_*`` environment. That includes credentials a user put in an obstore ``S3Store``'s
    config (``access_key_id``, ``secret_access_key``, ``session_token``, and the
    ``sse_customer_key_base64`` encryption key): the reopened store has the rest of that
    config, and the worker's environment must hold the credentials, or its first request
    fails with a :class:`~topozarr_engine.storage.StoreError` naming them. Stores that live
    in this process only (``MemoryStore``, icechunk sessions, other URLs) cannot be pickled.
    """

    store: Any
    description: str
    kind: str
    reopen: Reopen | None = field(default=None, repr=False)

    @property
    def concurrent_safe(self) -> bool:
        """Only zarr's own stores are written from several threads at once.

        Others may not take it: icechunk's session store deadlocks with zarr 3.4 when two
        threads create arrays in it at the same time.
        """
        from zarr.storage import LocalStore, MemoryStore, ObjectStore

        return isinstance(self.store, LocalStore | MemoryStore | ObjectStore)

    @property
    def conditional_create(self) -> bool:
        """The store creates a key only if it is absent, so a write lease can be taken.

        icechunk sessions hold Zarr keys only (no lease, no journal): a session is
        transactional, and icechunk detects conflicting writers itself.
        """
        return (type(self.store).__module__ or "").split(".")[0] != "icechunk"

    @property
    def native_capable(self) -> bool:
        """The kernel's native writer (``io="rust"``) can write to this store."""
        return native_kind(self.store) is not None

    @property
    def portable(self) -> bool:
        """Another process can reopen the store (the target pickles)."""
        return self.reopen is not None

    def remove_partial_shards(self) -> int:
        """Remove the temporary files of shards a cut-short write was streaming
        (:mod:`~topozarr_engine.storage.shard_stream`; local directories only, other files
        are left alone); returns how many. Call it holding the write lease, before writing."""
        root = local_root(self.store)
        return 0 if root is None else len(remove_partial_shards(root))

    def check_access(self) -> None:
        """For S3, one LIST request: :class:`~topozarr_engine.storage.StoreError` naming an
        unreachable endpoint, rejected credentials or a missing bucket; else nothing."""
        if self.kind == "s3":
            check_s3_access(self.store)

    def native_writer(
        self, *, max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES
    ) -> NativeWriter:
        """The native writer for this store's root (makes no request).

        Raises
        ------
        StorageConfigError (a ValueError)
            Not a store the native writer takes (see :attr:`native_capable`), or an S3 store
            with a credential provider.
        """
        return native_writer(self.store, max_inflight_bytes=max_inflight_bytes)

    def __reduce__(self) -> tuple[Any, ...]:
        if self.reopen is None:
            raise TypeError(
                f"cannot pickle the storage target {self.description} ({type(self.store).__name__}"
                "): it only exists in this process (an in-memory store, an icechunk session, "
                "an S3Store's credential_provider); pass a local path on a shared filesystem "
                "or an s3:// URL so that each process can open it"
            )
        return (_reopened, (self.reopen, self.description))


def _reopened(reopen: Reopen, description: str) -> StorageTarget:
    """Unpickling: the same target, its store opened again in this process."""
    target = resolve_target(reopen.open(), check=False)
    return StorageTarget(target.store, description, target.kind, reopen)


def resolve_target(user_value: Any, *, check: bool = True) -> StorageTarget:
    """Turn what the user passed to ``Pyramid.write`` into a :class:`StorageTarget`.

    Parameters
    ----------
    user_value
        A local path (``str`` / ``Path`` / ``file://`` URL), an ``s3://bucket/prefix`` URL,
        a zarr store (``LocalStore``, ``MemoryStore``, ``ObjectStore``, an icechunk session
        store) or an icechunk ``Session``. Other URLs are left to zarr / fsspec.
    check
        For S3 targets (``s3://`` URLs and ``ObjectStore`` over ``obstore.store.S3Store``),
        send one LIST request first so that an unreachable endpoint, rejected credentials or
        a missing bucket raise :class:`~topozarr_engine.storage.StoreError` before anything
        is written.

    Raises
    ------
    ImportError
        An ``s3://`` URL without obstore installed.
    StoreError
        The S3 check failed (the message names the bucket, key and cause, never a secret).
    """
    store, kind = _open(user_value)
    target = StorageTarget(store, _describe(user_value), kind, reopen_spec(user_value, store, kind))
    if check:
        target.check_access()
    return target


def open_for_reading(value: Any) -> Any:
    """What ``zarr.open_group(..., mode="r")`` takes to read ``value``: an object-store URL
    becomes a read-only store checked with one request (a bad endpoint, credentials or
    bucket raise :class:`~topozarr_engine.storage.StoreError` at once); anything else is
    left to zarr."""
    if isinstance(value, str) and parse_url(value).is_s3:
        return s3_zarr_store(value, read_only=True)
    return value


def open_object_store(url: str) -> Any:
    """The obstore store of an object-store URL (``parse_url(url).is_object_store``), for
    raw object reads (``obstore.head``, ``obstore.get_range``, ``obstore.list``)."""
    if not parse_url(url).is_s3:
        raise ValueError(f"{url!r} is not an object-store URL; use s3://bucket/prefix")
    return open_s3_store(url)


def _open(value: Any) -> tuple[Any, str]:
    """The zarr store of ``value`` and its kind."""
    if isinstance(value, Path):
        return zarr.storage.LocalStore(value), "local"
    if isinstance(value, str):
        parsed = parse_url(value)
        if parsed.is_s3:
            return s3_zarr_store(value, check=False), "s3"
        if not parsed.is_local:
            return value, "url"  # let zarr / fsspec resolve other URLs
        return zarr.storage.LocalStore(parsed.path), "local"
    # An icechunk Session: write through its store.
    if type(value).__name__ == "Session" and hasattr(value, "store"):
        return value.store, "store"
    if is_s3_object_store(value):
        return value, "s3"
    return value, ("local" if native_kind(value) == "local" else "store")


def _describe(value: Any) -> str:
    """The target as a path or URL for messages (never a secret)."""
    if isinstance(value, str | os.PathLike):
        return str(value)
    root = getattr(value, "root", None)
    if root is not None:
        return str(root)
    return type(value).__name__
