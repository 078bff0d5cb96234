"""What an obstore-backed zarr store wraps (obstore itself is optional)."""

from __future__ import annotations

from typing import Any

__all__ = ["inner_store", "obstore_kind", "obstore_store_module"]


def inner_store(store: Any) -> Any:
    """The obstore store under a ``zarr.storage.ObjectStore`` (or ``store`` itself)."""
    from zarr.storage import ObjectStore

    return store.store if isinstance(store, ObjectStore) else store


def obstore_kind(store: Any) -> str | None:
    """``"S3Store"``, ``"LocalStore"``, ... for an obstore store (wrapped or not), else None."""
    inner = inner_store(store)
    return type(inner).__name__ if type(inner).__module__.startswith("obstore") else None


def obstore_store_module() -> Any:
    """``obstore.store``, or an ImportError naming the extra that installs it."""
    try:
        import obstore.store
    except ImportError as exc:
        raise ImportError(
            "s3:// stores need obstore: pip install 'topozarr[s3]' (or pip install obstore)"
        ) from exc
    return obstore.store
