"""Refuse to replace a store that holds anything but a Zarr hierarchy.

``mode="w"`` clears the target before writing (zarr's ``open_group(mode="w")`` deletes
everything under the prefix). That is right for a previous pyramid and a disaster for a
directory of the user's own files, so before any I/O the target must be empty or look like
a Zarr store: its root a Zarr group or array (``zarr.json``, or Zarr v2 ``.zgroup`` /
``.zarray``), every top-level entry a Zarr metadata document (or, in a local directory,
zarr-python's temporary file of one, left by a killed write), a sub-directory holding a Zarr
node, a chunk of a root array, or the write journal's reserved prefix. Only the top level is
listed (one LIST per entry on object storage): deeper files are inside Zarr nodes already.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import zarr
from zarr.abc.store import Store
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from topozarr_plan.errors import PlanError
from topozarr_plan.journal import JOURNAL_PREFIX  # ours, never the user's

__all__ = ["check_replaceable", "foreign_entry"]

_METADATA = frozenset({"zarr.json", ".zgroup", ".zattrs", ".zmetadata", ".zarray"})
_NODE = frozenset({"zarr.json", ".zgroup", ".zarray"})
# Chunk keys of an array at the root: v3 default ("c/..."), v2 or v3 "v2" encoding ("0.1").
_CHUNK_KEY = re.compile(r"^(c|\d+([./]\d+)*)$")
# zarr-python's LocalStore writes each document to "<stem>.<32 hex>.partial" and renames it
# onto its key: a write killed in between leaves the temporary file (of "zarr.json":
# "zarr.<hex>.partial"). Left by a write of the store's own metadata, it is part of the store.
_METADATA_TEMP = re.compile(
    r"^(zarr|\.zgroup|\.zattrs|\.zmetadata|\.zarray)\.[0-9a-f]{32}\.partial$"
)


def check_replaceable(zstore: Any, *, mode: str = "w") -> None:
    """Raise unless ``zstore`` is empty, missing, or holds only a Zarr hierarchy.

    Parameters
    ----------
    zstore
        What :func:`~topozarr_engine.storage.resolve_target` resolved (its ``store``): a zarr store (local,
        memory, object store, icechunk) or a URL zarr resolves itself.
    mode
        The write mode, named in the message.

    Raises
    ------
    PlanError
        The target holds something that is not ours to delete; the message names the
        location, the first foreign entry and the way out.
    """
    problem = foreign_entry(zstore)
    if problem is not None:
        raise PlanError(
            f"refusing mode={mode!r} on {describe(zstore)}: it {problem}, and writing would "
            "delete it; write to a new or empty path, or remove it yourself first"
        )


def foreign_entry(zstore: Any) -> str | None:
    """Why ``zstore`` is not ours to replace (``None`` when it is empty or a Zarr store)."""
    store, base = _store_and_path(zstore)
    if isinstance(store, zarr.storage.LocalStore):
        root = Path(store.root) / base
        if root.exists() and not root.is_dir():
            return "is a file, not a directory"
    if not getattr(store, "supports_listing", True):
        return None  # zarr cannot clear what it cannot list either
    names = _list(store, base)
    if not names & _NODE:
        # Only our journal: a write that was interrupted before its root group existed.
        held = _first_with_data(store, base, sorted(names - {JOURNAL_PREFIX}))
        return None if held is None else f"holds {held!r} and is not a Zarr store"
    local = isinstance(store, zarr.storage.LocalStore)
    root_is_array = ".zarray" in names or (
        "zarr.json" in names and _node_type(store, _join(base, "zarr.json")) == "array"
    )
    others = [
        name
        for name in sorted(names - _METADATA - {JOURNAL_PREFIX})
        if not (root_is_array and _CHUNK_KEY.match(name))
        and not (local and _METADATA_TEMP.match(name))
        and not _list(store, _join(base, name)) & _NODE
    ]
    held = _first_with_data(store, base, others)
    return None if held is None else f"holds {held!r}, which is not part of the Zarr store"


def describe(zstore: Any) -> str:
    """The target as a user would name it: a directory, ``s3://bucket/prefix``, or its type."""
    from topozarr_engine.storage.native_config import target_config

    try:
        config = target_config(zstore)
    except (ValueError, TypeError, AttributeError, ImportError):
        return str(zstore) if isinstance(zstore, str) else f"the {type(zstore).__name__}"
    return str(config.get("url") or config.get("root"))


def _store_and_path(zstore: Any) -> tuple[Store, str]:
    if isinstance(zstore, Store):
        return zstore, ""
    from zarr.storage._common import make_store_path

    store_path = sync(make_store_path(zstore, mode="r"))
    return store_path.store, store_path.path


def _list(store: Store, prefix: str) -> set[str]:
    async def collect() -> set[str]:
        return {name.rstrip("/") async for name in store.list_dir(prefix)}

    return sync(collect())


def _first_with_data(store: Store, base: str, names: list[str]) -> str | None:
    """The first of ``names`` that is, or holds, an object or file.

    Empty directories hold nothing to lose, and object stores such as SeaweedFS keep listing
    the "directories" of deleted objects as common prefixes.
    """

    async def holds_data(key: str) -> bool:
        if await store.exists(key):
            return True
        async for _ in store.list_prefix(f"{key}/"):
            return True  # one is enough: never walk a whole tree
        return False

    for name in names:
        if sync(holds_data(_join(base, name))):
            return name
    return None


def _node_type(store: Store, key: str) -> str | None:
    buffer = sync(store.get(key, prototype=default_buffer_prototype()))
    if buffer is None:
        return None
    try:
        return json.loads(buffer.to_bytes()).get("node_type")
    except (ValueError, AttributeError):
        return None  # not a Zarr document: the caller's entry check decides


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}" if base else name


def _first(names: set[str]) -> str:
    ordered = sorted(names)
    more = f" and {len(ordered) - 1} more" if len(ordered) > 1 else ""
    return f"{ordered[0]!r}{more}"
