"""Raw reads of a Zarr store: object bytes, parsed ``zarr.json`` documents, directory listings.

`topozarr validate` reads what zarr-layer and zarrs read: every node's own ``zarr.json``, never
only the copy consolidated into the root, so it goes to the store's objects directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import zarr
from zarr.abc.store import Store
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from topozarr.errors import UsageError


@dataclass(frozen=True)
class StoreReader:
    """Reads objects under ``prefix`` of ``store`` (the pyramid's root group)."""

    store: Store
    prefix: str

    def key(self, path: str) -> str:
        """The store key of ``path``, relative to the pyramid root."""
        return "/".join(p for p in (self.prefix, path) if p)

    def get(self, path: str) -> bytes | None:
        """The bytes of object ``path``, or ``None`` when it does not exist."""
        buf = sync(self.store.get(self.key(path), prototype=default_buffer_prototype()))
        return None if buf is None else buf.to_bytes()

    def exists(self, path: str) -> bool:
        """Whether object ``path`` exists (without reading it)."""
        return bool(sync(self.store.exists(self.key(path))))

    def list_dir(self, path: str) -> list[str]:
        """Names directly under ``path`` (objects and prefixes)."""

        async def collect() -> list[str]:
            return [name async for name in self.store.list_dir(self.key(path))]

        return sorted(sync(collect()))

    def document(self, path: str) -> dict[str, Any] | str | None:
        """The ``zarr.json`` of node ``path``: a dict, an error message, or ``None`` if absent."""
        raw = self.get(f"{path}/zarr.json" if path else "zarr.json")
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            return f"zarr.json is not valid JSON ({err})"
        if not isinstance(doc, dict):
            return f"zarr.json holds a {type(doc).__name__}, not a JSON object"
        return doc


def open_reader(store: Any) -> StoreReader:
    """A reader of the pyramid root ``store`` (path, ``s3://`` URL or zarr store).

    Raises
    ------
    UsageError
        When there is no readable Zarr group there (validation cannot run).
    """
    from topozarr_engine.storage import open_for_reading  # lazy: it imports the engine

    target = open_for_reading(store)
    try:
        # use_consolidated=False: only the store handle is wanted, not the consolidated copy.
        root = zarr.open_group(target, mode="r", use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as err:
        raise UsageError(
            f"{store!s} is not a Zarr group; give the path of a written pyramid"
        ) from err
    except ValueError as err:  # a root zarr.json that is not valid JSON or not Zarr v3
        raise UsageError(f"{store!s}: the root zarr.json cannot be read ({err})") from err
    return StoreReader(root.store_path.store, root.store_path.path)
