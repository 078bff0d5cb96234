"""`topozarr validate`: check a written pyramid the way its readers read it.

zarr-layer and zarrs open every level group and array from its own ``zarr.json``, not from the
copy consolidated into the root, so validation does the same and compares the two. It then reads
shard objects back and recomputes coarse cells from level 0. It uses zarr-python and numpy only,
never the kernel that wrote the store, so it is an independent witness of what the writer did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from topozarr_metadata import Finding, MetadataReadError, read_multiscales, validate

from topozarr.errors import UsageError
from topozarr.store_nodes import StoreNodes, read_levels
from topozarr.store_reader import open_reader
from topozarr.validate_layout import consolidated_findings, level_findings
from topozarr.validate_shards import shard_findings
from topozarr.validate_values import value_findings, value_pairs

__all__ = ["validate_store"]


def validate_store(
    store: Any, *, full: bool = False, samples: int = 16, shards: int = 8, seed: int = 0
) -> list[Finding]:
    """Check a pyramid's metadata, shard objects and values as its readers see them.

    Parameters
    ----------
    store
        The pyramid root: a path, an ``s3://`` URL or a zarr store.
    full
        Read back every shard object and recompute every coarse cell from level 0, instead of
        ``shards`` objects and ``samples`` cells per array.
    samples
        Random coarse cells recomputed per array (without ``full``).
    shards
        Random shard objects read back per array (without ``full``).
    seed
        Seed of the random choice of cells and objects.

    Returns
    -------
    list of Finding
        Empty when the store is valid. ``path`` names the node (``"1/elevation#/shape"``) or
        the object (``"1/elevation/c/0/1"``) at fault.

    Raises
    ------
    UsageError
        When the store or its root group cannot be read, so nothing can be checked.
    """
    reader = open_reader(store)
    root_doc = reader.document("")
    if not isinstance(root_doc, dict):
        raise UsageError(f"{store!s}: the root zarr.json cannot be read ({root_doc})")
    attrs = root_doc.get("attributes")
    attrs = attrs if isinstance(attrs, dict) else {}
    try:
        meta = read_multiscales(attrs)
    except MetadataReadError as err:
        return [*validate(attrs), Finding("#/multiscales", str(err))]
    nodes = read_levels(reader, meta.levels)
    findings = [*_metadata_findings(attrs, nodes), *nodes.findings]
    findings += level_findings(nodes.levels, meta.dims)
    findings += consolidated_findings(reader, root_doc, nodes)
    arrays = [a for node in nodes.levels for a in node.arrays.values()]
    rng = np.random.default_rng(seed)
    findings += shard_findings(reader, arrays, full=full, samples=shards, rng=rng)
    pairs = value_pairs(nodes.levels, meta.dims)
    findings += value_findings(reader, pairs, full=full, samples=samples, rng=rng)
    return list(dict.fromkeys(findings))


def _metadata_findings(attrs: dict[str, Any], nodes: StoreNodes) -> list[Finding]:
    """The GeoZarr rules, on the level attributes and dimension names read from each node."""
    level_attrs = {n.level.asset: n.attrs for n in nodes.levels if n.attrs is not None}
    dimension_names = {
        a.path: a.doc["dimension_names"]
        for n in nodes.levels
        for a in n.arrays.values()
        if isinstance(a.doc.get("dimension_names"), list)
    }
    return validate(attrs, level_attrs=level_attrs, dimension_names=dimension_names)
