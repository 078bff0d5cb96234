"""Every shard (or chunk) object reads back: its index is whole and its chunks decode.

Each object is read once from the store and decoded by zarr-python from memory (a one-object
MemoryStore under the array's own zarr.json), so a failure is pinned to the object's key. A
missing object is not a finding: regions whose values are all fill are never written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from topozarr_metadata import Finding
from zarr.codecs import Crc32cCodec, ShardingCodec
from zarr.core.buffer.cpu import Buffer

from topozarr.store_nodes import ArrayNode
from topozarr.store_reader import StoreReader

_EMPTY = 2**64 - 1  # offset and length of a chunk the shard does not hold


@dataclass(frozen=True)
class _Decoder:
    """An array over a MemoryStore that holds the array's zarr.json and one object at a time."""

    objects: dict[str, Any]
    array: zarr.Array

    @classmethod
    def of(cls, node: ArrayNode) -> _Decoder:
        objects: dict[str, Any] = {"zarr.json": Buffer.from_bytes(json.dumps(node.doc).encode())}
        array = zarr.open_array(zarr.storage.MemoryStore(objects), mode="r")
        return cls(objects, array)

    def decode(self, key: str, data: bytes, region: tuple[slice, ...]) -> None:
        self.objects[key] = Buffer.from_bytes(data)
        try:
            np.asarray(self.array[region])
        finally:
            del self.objects[key]


def shard_grid(array: zarr.Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(object shape, number of objects per axis) of an array's chunk grid."""
    edge = tuple(array.metadata.chunk_grid.chunk_shape)  # type: ignore[attr-defined]
    return edge, tuple(math.ceil(n / e) for n, e in zip(array.shape, edge, strict=True))


def _coords(
    grid: tuple[int, ...], *, full: bool, samples: int, rng: np.random.Generator
) -> Iterator[tuple[int, ...]]:
    total = math.prod(grid)
    if full or total <= samples:
        yield from np.ndindex(*grid)
        return
    picked = sorted({int(rng.integers(0, total)) for _ in range(samples)})
    for flat in picked:
        yield tuple(int(i) for i in np.unravel_index(flat, grid))


def shard_findings(
    reader: StoreReader,
    arrays: list[ArrayNode],
    *,
    full: bool,
    samples: int,
    rng: np.random.Generator,
) -> list[Finding]:
    """Read back every object (``full``) or ``samples`` random objects of each array."""
    findings: list[Finding] = []
    for node in arrays:
        if node.array is None:
            continue
        decoder = _Decoder.of(node)
        edge, grid = shard_grid(node.array)
        for coords in _coords(grid, full=full, samples=samples, rng=rng):
            finding = _check_object(reader, node, decoder, coords, edge)
            if finding is not None:
                findings.append(finding)
    return findings


def _check_object(
    reader: StoreReader,
    node: ArrayNode,
    decoder: _Decoder,
    coords: tuple[int, ...],
    edge: tuple[int, ...],
) -> Finding | None:
    assert node.array is not None
    key = node.array.metadata.encode_chunk_key(coords)
    path = f"{node.path}/{key}"
    data = reader.get(path)
    if data is None:
        return None
    level = node.path.partition("/")[0]
    fix = f"rewrite level {level} (topozarr build SRC DST --mode a --levels-only {level})"
    problem = _index_problem(node.array, data)
    if problem is None:
        region = tuple(
            slice(c * e, min((c + 1) * e, n))
            for c, e, n in zip(coords, edge, node.array.shape, strict=True)
        )
        try:
            decoder.decode(key, data, region)
        except Exception as err:  # any decode failure is a damaged object
            problem = f"does not decode ({type(err).__name__}: {_short(err)})"
    if problem is None:
        problem = _bounds_problem(node.array, data)
    return None if problem is None else Finding(path, f"{problem}; {fix}")


def _sharding(array: zarr.Array) -> ShardingCodec | None:
    """The sharding codec when it is the last codec (the object is then the raw shard)."""
    codecs = array.metadata.codecs  # type: ignore[union-attr]
    return codecs[-1] if codecs and isinstance(codecs[-1], ShardingCodec) else None


def _index_layout(array: zarr.Array, codec: ShardingCodec) -> tuple[int, int]:
    """(chunks per shard, bytes of the shard index)."""
    shard = array.metadata.chunk_grid.chunk_shape  # type: ignore[attr-defined]
    chunks = math.prod(s // c for s, c in zip(shard, codec.chunk_shape, strict=True))
    checksum = 4 if any(isinstance(c, Crc32cCodec) for c in codec.index_codecs) else 0
    return chunks, 16 * chunks + checksum


def _index_problem(array: zarr.Array, data: bytes) -> str | None:
    """A shard shorter than its own index (zarr reads an empty object as all fill)."""
    codec = _sharding(array)
    if codec is None:
        return None if data else "is empty (0 bytes)"
    _, size = _index_layout(array, codec)
    if len(data) < size:
        return f"is truncated: {len(data)} bytes, shorter than its {size}-byte shard index"
    return None


def _bounds_problem(array: zarr.Array, data: bytes) -> str | None:
    """Chunks the (checksummed) index places outside the object: the object was cut short."""
    codec = _sharding(array)
    if codec is None:
        return None
    chunks, size = _index_layout(array, codec)
    at_end = str(getattr(codec.index_location, "value", codec.index_location)) == "end"
    raw = data[len(data) - size :] if at_end else data[:size]
    index = np.frombuffer(raw[: 16 * chunks], dtype="<u8").reshape(chunks, 2)
    low, high = (0, len(data) - size) if at_end else (size, len(data))
    for i, (offset, length) in enumerate(index.tolist()):
        if offset == _EMPTY and length == _EMPTY:
            continue
        if offset < low or offset + length > high:
            return (
                f"is truncated or damaged: chunk {i} spans bytes {offset}..{offset + length} "
                f"of a {len(data)}-byte object"
            )
    return None


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."
