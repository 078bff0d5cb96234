"""The nodes of a pyramid as readers see them: each level group and array from its own zarr.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import zarr
from topozarr_metadata import Finding, LevelMetadata

from topozarr.store_reader import StoreReader


@dataclass(frozen=True)
class ArrayNode:
    """One array of a level: its raw ``zarr.json`` and, when zarr-python accepts it, the array."""

    path: str
    doc: dict[str, Any]
    array: zarr.Array | None

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def dims(self) -> list[str]:
        names = self.doc.get("dimension_names")
        return [str(d) for d in names] if isinstance(names, list) else []


@dataclass
class LevelNode:
    """One layout level: its group attributes and its arrays, by name."""

    level: LevelMetadata
    attrs: dict[str, Any] | None = None
    arrays: dict[str, ArrayNode] = field(default_factory=dict)


@dataclass
class StoreNodes:
    """Every node read directly, plus the documents read on the way (path -> dict or None)."""

    levels: list[LevelNode]
    documents: dict[str, dict[str, Any] | None]
    findings: list[Finding]


def read_levels(reader: StoreReader, levels: tuple[LevelMetadata, ...]) -> StoreNodes:
    """Read every layout level's group and arrays from their own zarr.json objects."""
    nodes = StoreNodes([], {}, [])
    for level in levels:
        node = LevelNode(level)
        nodes.levels.append(node)
        doc = _document(reader, level.asset, nodes)
        if doc is None:
            continue
        if doc.get("node_type") != "group":
            nodes.findings.append(
                Finding(
                    f"{level.asset}#", f"layout asset is a {doc.get('node_type')!r}, not a group"
                )
            )
            continue
        attrs = doc.get("attributes", {})
        node.attrs = attrs if isinstance(attrs, dict) else {}
        for name in reader.list_dir(level.asset):
            if name != "zarr.json":
                _read_child(reader, f"{level.asset}/{name}", node, nodes)
    return nodes


def _document(
    reader: StoreReader, path: str, nodes: StoreNodes, *, required: bool = True
) -> dict[str, Any] | None:
    doc = reader.document(path)
    if doc is None and required:
        nodes.findings.append(Finding(f"{path}#", f"{path}/zarr.json is not in the store"))
    elif isinstance(doc, str):
        nodes.findings.append(Finding(f"{path}#", doc))
        doc = None
    nodes.documents[path] = doc
    return doc


def _read_child(reader: StoreReader, path: str, node: LevelNode, nodes: StoreNodes) -> None:
    # A prefix without a node document is not a node (zarr ignores it too).
    doc = _document(reader, path, nodes, required=False)
    if doc is None or doc.get("node_type") != "array":
        return
    try:
        array = zarr.open_array(reader.store, path=reader.key(path), mode="r")
    except Exception as err:  # whatever zarr rejects, readers reject too
        nodes.findings.append(Finding(f"{path}#", f"zarr cannot open the array: {_short(err)}"))
        array = None
    node.arrays[path.rpartition("/")[2]] = ArrayNode(path, doc, array)


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."
