"""Coarse levels hold the reduction of their level-0 windows: sampled cells, or every cell.

Values are read with zarr-python from each array's own zarr.json; a block that does not read
is skipped here, because the shard checks already name its object.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from topozarr_engine.kernel import METHODS
from topozarr_metadata import Finding

from topozarr import reference_reduce as ref
from topozarr.store_nodes import ArrayNode, LevelNode
from topozarr.store_reader import StoreReader
from topozarr.validate_shards import shard_grid

# Level-0 bytes read at once while recomputing a coarse block (--full).
_BLOCK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class ValuePair:
    """A coarse array and the level-0 array it was reduced from."""

    coarse: ArrayNode
    native: ArrayNode
    factor: int
    method: str
    yx: tuple[int, int]  # axes of the spatial dimensions

    @property
    def coarse_array(self) -> zarr.Array:
        assert self.coarse.array is not None
        return self.coarse.array

    @property
    def native_array(self) -> zarr.Array:
        assert self.native.array is not None
        return self.native.array


def value_pairs(levels: list[LevelNode], dims: tuple[str, str] | None) -> list[ValuePair]:
    """Every coarse spatial array whose level-0 twin has the same dimensions."""
    if not levels or dims is None:
        return []
    pairs = []
    for node in levels[1:]:
        factor = node.level.factor
        if factor is None or factor != round(factor) or factor < 1:
            continue  # the metadata validator reports a factor that is not an integer
        for array in node.arrays.values():
            native = levels[0].arrays.get(array.name)
            if (
                native is None
                or array.array is None
                or native.array is None
                or array.dims != native.dims
                or not all(d in array.dims for d in dims)
            ):
                continue
            attrs = array.doc.get("attributes") or {}
            method = attrs.get("resampling_method") or node.level.resampling_method or "mean"
            yx = (array.dims.index(dims[0]), array.dims.index(dims[1]))
            pairs.append(ValuePair(array, native, int(factor), str(method), yx))
    return pairs


def value_findings(
    reader: StoreReader,
    pairs: list[ValuePair],
    *,
    full: bool,
    samples: int,
    rng: np.random.Generator,
) -> list[Finding]:
    """Recompute every cell (``full``) or ``samples`` random cells of each coarse array."""
    findings = []
    for pair in pairs:
        if pair.method not in METHODS:
            findings.append(
                Finding(
                    pair.coarse.path,
                    f"resampling_method {pair.method!r} is not a method topozarr can recompute "
                    f"({', '.join(METHODS)}); its values were not checked",
                )
            )
            continue
        blocks = _all_blocks(pair) if full else _sample_blocks(pair, samples, rng)
        for block in blocks:
            finding = _check_block(reader, pair, block)
            if finding is not None:
                findings.append(finding)
                if not full:
                    break  # one wrong sample is enough to condemn the array
    return findings


def _sample_blocks(pair: ValuePair, samples: int, rng: np.random.Generator) -> Iterator[Any]:
    shape = pair.coarse_array.shape
    if not all(shape):
        return
    for _ in range(samples):
        yield tuple(slice(i, i + 1) for i in (int(rng.integers(0, n)) for n in shape))


def _all_blocks(pair: ValuePair) -> Iterator[tuple[slice, ...]]:
    """Every coarse shard, cut so that its level-0 windows stay under _BLOCK_BYTES."""
    arr = pair.coarse_array
    edge, grid = shard_grid(arr)
    y, x = pair.yx
    for coords in np.ndindex(*grid):
        shard = [
            slice(c * e, min((c + 1) * e, n))
            for c, e, n in zip(coords, edge, arr.shape, strict=True)
        ]
        others = math.prod(s.stop - s.start for i, s in enumerate(shard) if i not in pair.yx)
        cell = pair.factor**2 * others * pair.native_array.dtype.itemsize
        cells = max(1, _BLOCK_BYTES // cell)
        rows = max(1, min(shard[y].stop - shard[y].start, math.isqrt(cells)))
        cols = max(1, cells // rows)
        for r0, c0 in itertools.product(
            range(shard[y].start, shard[y].stop, rows), range(shard[x].start, shard[x].stop, cols)
        ):
            block = list(shard)
            block[y] = slice(r0, min(r0 + rows, shard[y].stop))
            block[x] = slice(c0, min(c0 + cols, shard[x].stop))
            yield tuple(block)


def _check_block(reader: StoreReader, pair: ValuePair, block: tuple[slice, ...]) -> Finding | None:
    f = pair.factor
    native_shape = pair.native_array.shape
    window = tuple(
        slice(s.start * f, min(s.stop * f, native_shape[i])) if i in pair.yx else s
        for i, s in enumerate(block)
    )
    try:
        got = np.asarray(pair.coarse_array[block])
        native = np.asarray(pair.native_array[window])
    except Exception:  # undecodable objects are reported by the shard checks
        return None
    got = np.moveaxis(got, pair.yx, (-2, -1))
    native = np.moveaxis(native, pair.yx, (-2, -1))
    bad = ~_agreeing(pair, got, native)
    if not bad.any():
        return None
    return _finding(reader, pair, block, _Mismatch(got, native, bad))


def _fill(array: zarr.Array) -> Any:
    fill = array.fill_value
    return fill.item() if hasattr(fill, "item") else fill


def _agreeing(pair: ValuePair, got: np.ndarray, native: np.ndarray) -> np.ndarray:
    fill = _fill(pair.coarse_array)
    ok = ref.agree(got, _want(pair, native, got.shape[-2:], fill))
    if got.dtype.kind in "iu" and fill is not None:
        # Zarr v3 always stores a fill_value (0 by default), so an integer array cannot tell
        # whether it marks missing cells: no missing cells is valid too.
        ok |= ref.agree(got, _want(pair, native, got.shape[-2:], None, fill))
    return ok


def _want(
    pair: ValuePair, native: np.ndarray, shape: Any, missing_fill: Any, empty: Any = None
) -> np.ndarray:
    missing = ref.missing_mask(native, missing_fill)
    values, missing = ref.windows(native, missing, tuple(shape), pair.factor)
    empty = missing_fill if empty is None else empty
    return ref.reduce_windows(values, missing, pair.method, empty)


@dataclass(frozen=True)
class _Mismatch:
    """A block of a coarse level and its level-0 windows (y, x last), and where they differ."""

    got: np.ndarray
    native: np.ndarray
    bad: np.ndarray


def _finding(
    reader: StoreReader, pair: ValuePair, block: tuple[slice, ...], mismatch: _Mismatch
) -> Finding:
    got, native, bad = mismatch.got, mismatch.native, mismatch.bad
    first = np.argwhere(bad)[0]
    want = _want(pair, native, got.shape[-2:], _fill(pair.coarse_array))
    cell = _cell_index(pair, block, first)
    arr = pair.coarse_array
    edge, _ = shard_grid(arr)
    key = arr.metadata.encode_chunk_key(tuple(c // e for c, e in zip(cell, edge, strict=True)))
    f = pair.factor
    path = f"{pair.coarse.path}/{key}"
    missing = "" if reader.exists(path) else "the object is missing; "
    return Finding(
        path,
        f"{missing}{int(bad.sum())} cell(s) differ from the {pair.method} of their {f}x{f} "
        f"level-0 windows; first {cell}: {got[tuple(first)].item()!r} instead of "
        f"{want[tuple(first)].item()!r} (level-0 window in {_native_keys(reader, pair, cell)})",
    )


def _cell_index(pair: ValuePair, block: tuple[slice, ...], first: np.ndarray) -> list[int]:
    """Position in the coarse array of ``first`` (an index of the moved-axes block)."""
    order = [i for i in range(len(block)) if i not in pair.yx] + list(pair.yx)
    cell = [0] * len(block)
    for pos, axis in enumerate(order):
        cell[axis] = block[axis].start + int(first[pos])
    return cell


def _native_keys(reader: StoreReader, pair: ValuePair, cell: list[int]) -> str:
    """The level-0 objects under a coarse cell, marked when they are missing from the store."""
    arr = pair.native_array
    edge, _ = shard_grid(arr)
    ranges = []
    for axis, (i, e, n) in enumerate(zip(cell, edge, arr.shape, strict=True)):
        if axis in pair.yx:
            lo, hi = i * pair.factor, min((i + 1) * pair.factor, n) - 1
            ranges.append(range(lo // e, hi // e + 1))
        else:
            ranges.append(range(i // e, i // e + 1))
    names = []
    for coords in itertools.islice(itertools.product(*ranges), 4):
        path = f"{pair.native.path}/{arr.metadata.encode_chunk_key(coords)}"
        names.append(path if reader.exists(path) else f"{path} (object missing)")
    return ", ".join(names)
