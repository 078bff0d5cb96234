"""Raw bytes of a store's objects, whole or by range: local directories and ``s3://`` stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class ObjectReader(Protocol):
    """What the server needs from a store: an object's size and a byte range of it."""

    def size(self, key: str) -> int | None:
        """Size in bytes, or ``None`` when the object does not exist."""

    def read(self, key: str, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of an existing object."""


class LocalObjects:
    """Objects of a store on disk; keys never leave its directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path | None:
        path = (self.root / key).resolve()
        return path if path.is_relative_to(self.root) and path.is_file() else None

    def size(self, key: str) -> int | None:
        path = self._path(key)
        return None if path is None else path.stat().st_size

    def read(self, key: str, start: int, stop: int) -> bytes:
        path = self._path(key)
        if path is None:
            raise FileNotFoundError(key)
        with path.open("rb") as f:
            f.seek(start)
            return f.read(stop - start)


class RemoteObjects:
    """Objects under an object-store URL (``s3://bucket/prefix``), read through obstore."""

    def __init__(self, url: str) -> None:
        from topozarr_engine.storage import open_object_store

        self.store: Any = open_object_store(url)

    def size(self, key: str) -> int | None:
        import obstore

        try:
            return int(obstore.head(self.store, key)["size"])
        except FileNotFoundError:
            return None

    def read(self, key: str, start: int, stop: int) -> bytes:
        import obstore

        if stop <= start:
            return b""
        return bytes(obstore.get_range(self.store, key, start=start, end=stop))


def object_reader(store: str) -> ObjectReader:
    """The reader for a local path or an ``s3://`` URL."""
    from topozarr_engine.storage.urls import parse_url

    parsed = parse_url(store)
    if parsed.is_object_store:
        return RemoteObjects(store)
    return LocalObjects(parsed.path if parsed.is_local else store)
