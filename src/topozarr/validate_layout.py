"""Checks of the level nodes against the root layout, against level 0 and against the
consolidated copy of their metadata."""

from __future__ import annotations

from typing import Any

from topozarr_engine.kernel import METHOD_TABLE
from topozarr_metadata import Finding

from topozarr.store_nodes import ArrayNode, LevelNode, StoreNodes
from topozarr.store_reader import StoreReader

# Fields of an array's zarr.json that must agree in every level for one variable.
_SAME_IN_EVERY_LEVEL = (("data_type", "dtype"), ("fill_value", "fill_value"))


def level_findings(levels: list[LevelNode], dims: tuple[str, str] | None) -> list[Finding]:
    """Shapes against ``spatial:shape``; dtype, fill_value and extra dims against level 0."""
    findings: list[Finding] = []
    spatial_sets = []
    base = levels[0].arrays if levels else {}
    for node in levels:
        spatial = set()
        for array in node.arrays.values():
            findings.extend(_array_findings(array, base.get(array.name), node, dims))
            if dims and all(d in array.dims for d in dims):
                spatial.add(array.name)
        if node.attrs is not None:
            spatial_sets.append((node.level.asset, spatial))
    for asset, names in spatial_sets[1:]:
        if names != spatial_sets[0][1]:
            findings.append(
                Finding(
                    f"{asset}#",
                    f"level holds the spatial variables {sorted(names)}, level "
                    f"{spatial_sets[0][0]} holds {sorted(spatial_sets[0][1])}",
                )
            )
    return findings


def _array_findings(
    array: ArrayNode, base: ArrayNode | None, node: LevelNode, dims: tuple[str, str] | None
) -> list[Finding]:
    out: list[Finding] = []
    shape = array.doc.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) for n in shape):
        return [Finding(f"{array.path}#/shape", f"shape {shape!r} is not a list of integers")]
    names = array.doc.get("dimension_names")
    if shape and not (isinstance(names, list) and len(names) == len(shape)):
        out.append(
            Finding(
                f"{array.path}#/dimension_names",
                f"dimension_names {names!r} do not name the {len(shape)} dimensions",
            )
        )
        return out
    want = node.level.shape
    if dims and want and all(d in array.dims for d in dims):
        got = [shape[array.dims.index(d)] for d in dims]
        if got != list(want):
            out.append(
                Finding(
                    f"{array.path}#/shape",
                    f"shape {shape} gives {dims[0]} x {dims[1]} = {got[0]} x {got[1]}, "
                    f"but the layout's spatial:shape of level {node.level.asset} is {list(want)}",
                )
            )
    if base is None or base is array:
        return out
    for key, label in _SAME_IN_EVERY_LEVEL:
        want = base.doc.get(key)
        if key == "data_type":
            want = _coarse_data_type(array, node, want)
        if array.doc.get(key) != want:
            out.append(
                Finding(
                    f"{array.path}#/{key}",
                    f"{label} {array.doc.get(key)!r} differs from level "
                    f"{base.path.partition('/')[0]}'s {base.doc.get(key)!r}"
                    + (
                        f" (its {_method(array, node)} gives {want!r})"
                        if want != base.doc.get(key)
                        else ""
                    ),
                )
            )
    out.extend(_extra_dim_findings(array, base, shape, dims or ()))
    return out


def _extra_dim_findings(
    array: ArrayNode, base: ArrayNode, shape: list[int], spatial: tuple[str, ...]
) -> list[Finding]:
    """Dimensions other than y/x (time, band) keep their length in every level."""
    base_shape = base.doc.get("shape")
    if not isinstance(base_shape, list) or array.dims != base.dims:
        return []  # a different dimension order is reported by the metadata validator
    return [
        Finding(
            f"{array.path}#/shape",
            f"dimension {dim!r} has length {n}, level "
            f"{base.path.partition('/')[0]} has {m}; only {'/'.join(spatial)} shrink",
        )
        for dim, n, m in zip(array.dims, shape, base_shape, strict=False)
        if dim not in spatial and n != m
    ]


def consolidated_findings(
    reader: StoreReader, root_doc: dict[str, Any], nodes: StoreNodes
) -> list[Finding]:
    """Every node of the consolidated copy must equal the node's own zarr.json, and back."""
    consolidated = root_doc.get("consolidated_metadata")
    if not isinstance(consolidated, dict):
        return []
    copies = consolidated.get("metadata")
    if not isinstance(copies, dict):
        return [Finding("#/consolidated_metadata", "consolidated_metadata has no metadata object")]
    out: list[Finding] = []
    for path, copy in sorted(copies.items()):
        if path not in nodes.documents:
            doc = reader.document(path)
            nodes.documents[path] = doc if isinstance(doc, dict) else None
        own = nodes.documents[path]
        if own is None:
            out.append(
                Finding(
                    f"{path}#",
                    "listed in the root's consolidated metadata but its own zarr.json is "
                    "missing or unreadable; readers that skip consolidation cannot open it",
                )
            )
        elif isinstance(copy, dict):
            out.extend(_compare(path, own, copy))
    for path, own in sorted(nodes.documents.items()):
        if own is not None and path not in copies:
            out.append(
                Finding(
                    f"{path}#",
                    "missing from the root's consolidated metadata; rewrite it with "
                    "zarr.consolidate_metadata",
                )
            )
    return out


def _compare(path: str, own: dict[str, Any], copy: dict[str, Any]) -> list[Finding]:
    keys = sorted((set(own) | set(copy)) - {"consolidated_metadata"})
    differ = [k for k in keys if own.get(k) != copy.get(k)]
    if not differ:
        return []
    return [
        Finding(
            f"{path}#",
            f"own zarr.json differs from the root's consolidated copy in {differ}; readers "
            "that read each node (zarr-layer, zarrs) see the former",
        )
    ]


def _method(array: ArrayNode, node: LevelNode) -> str | None:
    """The array's own resampling_method, else its level's."""
    attrs = array.doc.get("attributes") or {}
    return attrs.get("resampling_method") or node.level.resampling_method


def _coarse_data_type(array: ArrayNode, node: LevelNode, base: Any) -> Any:
    """The data type the kernel's method table gives a coarse level of a ``base`` array.

    (Integer ``sum`` widens to 64 bits; every other method keeps the type.) An unknown method
    keeps the base type: the value checks report the method itself.
    """
    row = METHOD_TABLE.get(_method(array, node) or "")
    if row is None or not isinstance(base, str):
        return base
    return row["output_dtype"].get(base, base)
