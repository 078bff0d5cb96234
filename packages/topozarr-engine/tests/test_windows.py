"""A pyramid written window by window (a cluster's block tasks) streams its shards as a
whole-array write does, and stores the same shards; checked against numpy and zarr-python."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import zarr
from _engine_reference import reference_reduce
from _engine_testing import dem, make_array, write_levels
from topozarr_engine import Region, coarsened_shape, shard_assembly
from topozarr_engine.storage.native import NativeWriter
from topozarr_engine.storage.shard_stream import PARTIAL_MARKER
from topozarr_engine.storage.sinks import ZarrShardSink
from topozarr_engine.windows import ArrayWindow, ShiftedBuilder, WindowSink

FACTORS = (1, 2, 4)
CHUNK, SHARD = 4, 16  # every level: 4x4 inner chunks, 16x16 shards
BLOCK = SHARD * FACTORS[-1]  # level-0 cells under one shard of the coarsest level


def _levels(root: Path, a: np.ndarray) -> list[zarr.Array]:
    return [
        make_array(
            zarr.storage.LocalStore(root),
            f"{level}/v",
            coarsened_shape(a.shape, (f, f)),
            a.dtype,
            chunks=(CHUNK, CHUNK),
            shards=(SHARD, SHARD),
        )
        for level, f in enumerate(FACTORS)
    ]


def _blocks(shape: tuple[int, ...]) -> list[Region]:
    starts = [range(0, n, BLOCK) for n in shape]
    return [
        Region.from_bounds(start, [min(s + BLOCK, n) for s, n in zip(start, shape, strict=True)])
        for start in itertools.product(*starts)
    ]


def _keys(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[shard_assembly.ChunkedShards]:
    made: list[shard_assembly.ChunkedShards] = []
    init = shard_assembly.ChunkedShards.__init__

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(shard_assembly.ChunkedShards, "__init__", spy)
    return made


def _sink(io: str, root: Path):  # type: ignore[no-untyped-def]
    return NativeWriter.local(str(root)) if io == "rust" else ZarrShardSink()


@pytest.mark.parametrize("io", ["python", "rust"])
def test_windows_stream_the_same_shards_as_a_whole_array_write(tmp_path, monkeypatch, io):
    # 150 columns: the last column of blocks is clipped by the array's edge at every level.
    a = dem((128, 150), np.float32, nan_frac=0.2)
    strides = [(f, f) for f in FACTORS]
    options = {"strides": strides, "method": "mean", "max_region_bytes": 1}
    options["source_chunks"] = (8, 8)  # level 0's shards span tiles: streamed too
    whole = _levels(tmp_path / "whole", a)
    sink = _sink(io, tmp_path / "whole")
    write_levels(a, whole, sink=sink, **options)
    sink.flush()

    made = _spy(monkeypatch)
    root = tmp_path / "windows"
    arrays = _levels(root, a)
    sink = _sink(io, root)
    for block in _blocks(a.shape):
        windows = [ArrayWindow(arr, block, st) for arr, st in zip(arrays, strides, strict=True)]
        write_levels(a[block.slices], windows, sink=WindowSink(sink), **options)
    sink.flush()

    for level, (arr, st) in enumerate(zip(arrays, strides, strict=True)):
        want = reference_reduce(a, st, "mean", None) if level else a
        np.testing.assert_allclose(arr[:], want, rtol=1e-6, equal_nan=True)
    # The same shards hold the same values (a streamed shard's chunk order is its writer's).
    assert _keys(root) == _keys(tmp_path / "whole")
    for got, want in zip(arrays, whole, strict=True):
        np.testing.assert_array_equal(got[:], want[:])
    streamed = {id(c.dst.array) for c in made if isinstance(c.dst, ArrayWindow) and c.streams}
    assert streamed == {id(arr) for arr in arrays}  # every level, level 0 included
    assert not [p for p in root.rglob("*") if PARTIAL_MARKER in p.name]


def test_a_window_off_the_shard_grid_or_not_stored_is_not_streamed(tmp_path):
    a = dem((64, 64), np.float32)
    (arr,) = _levels(tmp_path, a)[:1]
    sink = WindowSink(ZarrShardSink())
    on_grid = ArrayWindow(arr, Region.from_bounds([16, 32], [64, 64]), (1, 1))
    assert on_grid.shard_offset == (1, 2)
    assert shard_assembly.chunked_shards(on_grid, sink, np.nan) is not None
    off_grid = ArrayWindow(arr, Region.from_bounds([8, 0], [64, 64]), (1, 1))
    assert off_grid.shard_offset is None
    assert shard_assembly.chunked_shards(off_grid, sink, np.nan) is None
    hidden = ArrayWindow(arr, Region.from_bounds([0, 0], [64, 64]), (1, 1), store=False)
    assert shard_assembly.chunked_shards(hidden, sink, np.nan) is None
    # A window's sink must be a WindowSink (it stores at the window's place).
    assert shard_assembly.chunked_shards(on_grid, ZarrShardSink(), np.nan) is None


def test_a_shifted_builder_names_the_arrays_shards(tmp_path):
    from topozarr_core import ShardBuilder
    from topozarr_engine.shards import zarr_json

    a = dem((64, 64), np.float32)
    (arr,) = _levels(tmp_path, a)[:1]
    builder = ShardBuilder(str(arr.path), zarr_json(arr))
    shifted = ShiftedBuilder(builder, (1, 2))
    assert shifted.key([0, 0]) == builder.key([1, 2]) == "0/v/c/1/2"
    assert shifted.key([2, 1]) == builder.key([3, 3])
