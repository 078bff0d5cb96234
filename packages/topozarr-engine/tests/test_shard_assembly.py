"""Shards built inner chunk by inner chunk (kernel ``ShardBuilder``, engine ``shard_assembly``),
read back with zarr-python and compared with numpy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import zarr
from _engine_reference import reference_reduce
from _engine_testing import dem, dies_after_reads, make_array, write_levels
from topozarr_core import NativeStore, ShardBuilder
from topozarr_engine import coarsened_shape, shard_assembly, tiles
from topozarr_engine.buffers import BufferPool
from topozarr_engine.shards import zarr_json
from topozarr_engine.storage.native import NativeWriter
from topozarr_engine.storage.sinks import CallableSink, ZarrShardSink
from zarr.codecs import BloscCodec, ZstdCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync


def _sharded(store, path, shape, dtype, *, fill, location="end", compressors="auto"):
    """A (8, 12)-sharded array of (4, 6) inner chunks, its index at ``location``."""
    from zarr.codecs import BytesCodec, ShardingCodec

    inner = [BytesCodec(), *(() if compressors == "auto" else compressors)]
    return zarr.create_array(
        store,
        name=path,
        shape=shape,
        dtype=dtype,
        chunks=(8, 12),
        serializer=ShardingCodec(
            chunk_shape=(4, 6),
            codecs=inner,
            index_location=location,  # a str: zarr 3.4 no longer calls its enum with a value
        ),
        compressors=None,
        fill_value=fill,
        overwrite=True,
    )


def _build_all(arr, values, order_seed=0):
    """Put every inner chunk of ``values`` (shuffled), finish every shard, store the bytes."""
    builder = ShardBuilder(str(arr.path), zarr_json(arr))
    chunk, shard = builder.chunk_shape, builder.shard_shape
    assert shard == tuple(arr.shards)
    fill = arr.fill_value
    grid = [-(-n // c) for n, c in zip(arr.shape, chunk, strict=True)]
    chunks = list(itertools.product(*(range(g) for g in grid)))
    np.random.default_rng(order_seed).shuffle(chunks)
    for c in chunks:
        full = np.full(chunk, fill, dtype=arr.dtype)
        part = values[tuple(slice(i * n, (i + 1) * n) for i, n in zip(c, chunk, strict=True))]
        full[tuple(slice(0, n) for n in part.shape)] = part
        per = [s // n for s, n in zip(shard, chunk, strict=True)]
        builder.put_chunk(
            [i // p for i, p in zip(c, per, strict=True)],
            [i % p for i, p in zip(c, per, strict=True)],
            full.reshape(-1).view(np.uint8),
        )
    store = arr.store
    stored = 0
    for s in itertools.product(*(range(-(-n // m)) for n, m in zip(arr.shape, shard, strict=True))):
        data = builder.finish(list(s))
        if data is not None:
            stored += 1
            buf = default_buffer_prototype().buffer.from_bytes(data)
            sync(store.set(builder.key(list(s)), buf))
    assert builder.open_shards == 0
    return stored


@pytest.mark.parametrize("location", ["end", "start"])
@pytest.mark.parametrize(
    ("dtype", "fill", "compressors"),
    [
        (np.float32, np.nan, "auto"),
        (np.float64, np.nan, (ZstdCodec(level=1),)),
        (np.int16, -9999, (ZstdCodec(level=3),)),
        (np.uint8, 0, (BloscCodec(cname="lz4", shuffle="bitshuffle"),)),
    ],
)
def test_built_shards_read_back_with_zarr_python(location, dtype, fill, compressors):
    store = zarr.storage.MemoryStore()
    # 19x29 cells: edge shards and edge inner chunks are partial.
    values = dem((19, 29), dtype, fill=fill, nan_frac=0.2)
    values[0:8, 12:24] = fill  # one whole shard of fill: not stored
    values[8:12, 0:6] = fill  # one inner chunk of fill: left out of its shard
    arr = _sharded(
        store, "a", values.shape, dtype, fill=fill, location=location, compressors=compressors
    )
    stored = _build_all(arr, values)
    got = zarr.open_array(store, path="a")[:]
    np.testing.assert_array_equal(got, values)
    assert stored == 3 * 3 - 1


@pytest.mark.parametrize("compressors", ["auto", [ZstdCodec(level=3)]])
def test_encode_chunk_gives_bytes_zarr_pythons_inner_codecs_decode(compressors):
    # What the chunk streams append: one inner chunk's bytes, kept by nobody.
    store = zarr.storage.MemoryStore()
    arr = _sharded(store, "a", (16, 24), np.int16, fill=-1, compressors=compressors)
    builder = ShardBuilder("a", zarr_json(arr))
    chunk = np.arange(24, dtype=np.int16).reshape(4, 6)
    encoded = builder.encode_chunk(chunk.view(np.uint8))
    assert builder.open_shards == 0
    inner = zarr.create_array(
        zarr.storage.MemoryStore(), shape=(4, 6), chunks=(4, 6), dtype=np.int16, fill_value=-1,
        compressors=None if compressors == "auto" else compressors,
    )  # fmt: skip
    sync(inner.store.set("c/0/0", default_buffer_prototype().buffer.from_bytes(encoded)))
    np.testing.assert_array_equal(inner[...], chunk)
    assert builder.encode_chunk(np.full((4, 6), -1, np.int16).view(np.uint8)) is None


def test_finish_of_an_all_fill_or_unknown_shard_is_none():
    store = zarr.storage.MemoryStore()
    arr = _sharded(store, "a", (16, 24), np.float32, fill=np.nan)
    builder = ShardBuilder("a", zarr_json(arr))
    builder.put_chunk([0, 0], [1, 1], np.full((4, 6), np.nan, np.float32).view(np.uint8))
    assert builder.open_shards == 1
    assert builder.finish([0, 0]) is None
    assert builder.finish([1, 1]) is None
    assert builder.open_shards == 0


def test_bad_positions_sizes_and_arrays_are_value_errors():
    store = zarr.storage.MemoryStore()
    arr = _sharded(store, "a", (16, 24), np.float32, fill=np.nan)
    builder = ShardBuilder("a", zarr_json(arr))
    data = np.zeros((4, 6), np.float32).view(np.uint8)
    with pytest.raises(ValueError, match="outside the shard's chunk grid"):
        builder.put_chunk([0, 0], [2, 0], data)
    with pytest.raises(ValueError, match="outside the grid"):
        builder.put_chunk([5, 0], [0, 0], data)
    with pytest.raises(ValueError, match="bytes"):
        builder.put_chunk([0, 0], [0, 0], data.reshape(-1)[:8])
    plain = make_array(store, "p", (16, 24), np.float32, chunks=(4, 6))
    with pytest.raises(ValueError, match="not a sharded array"):
        ShardBuilder("p", zarr_json(plain))


def test_finish_to_stores_through_the_native_writer(tmp_path):
    store = zarr.storage.LocalStore(tmp_path)
    values = dem((19, 29), np.float32, nan_frac=0.2)
    arr = _sharded(store, "a", values.shape, np.float32, fill=np.nan)
    arr[:] = np.float32(5)  # stored shards an all-fill shard must delete
    target = NativeStore.local(str(tmp_path), max_inflight_bytes=2**20)
    native = target.open_array("a")
    builder = ShardBuilder("a", zarr_json(arr))
    values[0:8, 0:12] = np.nan
    for s in itertools.product(range(3), range(3)):
        for c in itertools.product(range(2), range(2)):
            full = np.full((4, 6), np.nan, np.float32)
            y, x = s[0] * 8 + c[0] * 4, s[1] * 12 + c[1] * 6
            part = values[y : y + 4, x : x + 6]
            full[: part.shape[0], : part.shape[1]] = part
            if y < values.shape[0] and x < values.shape[1]:
                builder.put_chunk(list(s), list(c), full.view(np.uint8).reshape(-1))
        stored = builder.finish_to(list(s), native)
        assert stored == (s != (0, 0))
    target.flush()
    np.testing.assert_array_equal(zarr.open_array(store, path="a")[:], values)


def _levels(store, a, factors, *, chunks, shards, fill=None):
    strides = [(f, f) for f in factors]
    dsts = [
        make_array(
            store,
            f"{level}/v",
            coarsened_shape(a.shape, st),
            a.dtype,
            chunks=(chunks, chunks),
            shards=(chunks * shards, chunks * shards),
            fill_value=fill,
        )
        for level, st in enumerate(strides)
    ]
    return dsts, strides


@pytest.mark.parametrize("native", [False, True])
def test_writer_holds_coarse_shards_as_chunks_not_whole_buffers(tmp_path, monkeypatch, native):
    # 16x16 tiles (level 0's shards); a level-2 shard (16x16 cells, 4x4 inner chunks) spans
    # 4x4 tiles and a level-3 inner chunk 2x2 tiles, so chunks fill over several tiles too.
    store = zarr.storage.LocalStore(tmp_path)
    a = dem((72, 88), np.float32, nan_frac=0.3)
    a[0:32, 0:32] = np.nan  # whole tiles without data (pieces never delivered)
    dsts, strides = _levels(store, a, [1, 2, 4, 8], chunks=4, shards=4)
    shapes: list[tuple[int, ...]] = []
    take = BufferPool.take

    def spy(self, shape, fill):
        shapes.append(tuple(shape))
        return take(self, shape, fill)

    monkeypatch.setattr(BufferPool, "take", spy)
    closed: list[tuple[int, ...]] = []
    close = shard_assembly.ChunkedShards.close

    def spy_close(self, shard):
        closed.append(shard)
        return close(self, shard)

    monkeypatch.setattr(shard_assembly.ChunkedShards, "close", spy_close)
    hooks = {}
    if native:
        writer = NativeWriter.local(str(tmp_path))
        hooks["sink"] = writer
    write_levels(
        a, dsts, strides=strides, method="mean", max_region_bytes=1, max_workers=2, **hooks
    )
    if native:
        writer.flush()
    for level, (dst, st) in enumerate(zip(dsts, strides, strict=True)):
        expected = reference_reduce(a, st, "mean", None) if level else a
        np.testing.assert_allclose(dst[:], expected, rtol=1e-6, equal_nan=True)
    assert closed, "coarse shards went through the chunk assembly"
    assert shapes and set(shapes) == {(4, 4)}, "only inner chunks are buffered"


def test_unknown_sinks_keep_whole_shard_buffers(tmp_path):
    store = zarr.storage.LocalStore(tmp_path)
    dst = make_array(store, "1/v", (8, 8), np.float32, chunks=(2, 2), shards=(4, 4))

    def write(region, block):
        dst[region.slices] = block

    assert shard_assembly.chunked_shards(dst, CallableSink(write), np.nan) is None
    plain = make_array(store, "2/v", (8, 8), np.float32, chunks=(2, 2))
    assert shard_assembly.chunked_shards(plain, ZarrShardSink(), np.nan) is None
    assert shard_assembly.chunked_shards(dst, ZarrShardSink(), np.nan) is not None
    native = NativeWriter.local(str(tmp_path))
    assert shard_assembly.chunked_shards(dst, native, np.nan) is not None


def _dem_levels(store, shape, factors):
    dsts, strides = _levels(store, np.zeros(shape, np.float32), factors, chunks=4, shards=2)
    return dsts, strides


def _expect(a, dsts, strides):
    for level, (dst, st) in enumerate(zip(dsts, strides, strict=True)):
        want = reference_reduce(a, st, "mean", None) if level else a
        np.testing.assert_allclose(dst[...], want, rtol=1e-6, equal_nan=True, err_msg=str(level))


@pytest.fixture
def small_tiles(monkeypatch):
    """Split level-0 tiles are not widened towards whole shards (tiny test arrays)."""
    monkeypatch.setattr(tiles, "SPLIT_TILE_BYTES", 1)


@pytest.mark.usefixtures("small_tiles")
def test_tiles_follow_source_chunks_and_level0_shards_span_them():
    from topozarr_engine import PyramidSpec, WriteHooks
    from topozarr_engine.pyramid_writer import PyramidWriter

    store = zarr.storage.MemoryStore()
    a = dem((40, 56), np.float32, nan_frac=0.2)
    dsts, strides = _dem_levels(store, a.shape, [1, 2, 4, 8])
    spec = PyramidSpec(strides, "mean", source_chunks=(4, 4), max_region_bytes=1)
    writer = PyramidWriter(a, dsts, spec, WriteHooks())
    assert writer.layout.tile == (4, 4) and 0 in writer.levels  # level-0 shards are 8x8
    writer.run()
    _expect(a, dsts, strides)
    # Without source chunks the tiles stay whole level-0 shards.
    whole = PyramidWriter(a, dsts, PyramidSpec(strides, "mean", max_region_bytes=1), WriteHooks())
    assert whole.layout.tile == (8, 8) and 0 not in whole.levels


def test_split_tiles_are_widened_towards_whole_shards_up_to_the_budget(monkeypatch):
    from topozarr_engine import PyramidSpec

    spec = PyramidSpec([(1, 1)], "mean", source_chunks=(4, 4))
    monkeypatch.setattr(tiles, "SPLIT_TILE_BYTES", 4 * 16 * 4)
    # 4x4 float32 chunks and source chunks, 16x16 shards: a whole shard row fits, not more.
    assert tiles.split_tile((64, 64), 4, (4, 4), (16, 16), spec) == (4, 16)
    # A source chunk larger than the budget is still read whole (decoded once).
    big = PyramidSpec([(1, 1)], "mean", source_chunks=(8, 8))
    assert tiles.split_tile((64, 64), 4, (4, 4), (16, 16), big) == (8, 8)


@pytest.mark.usefixtures("small_tiles")
def test_a_resumed_write_rereads_tiles_whose_level0_shard_was_not_stored():
    from topozarr_engine.tilelog import MemoryTileLog

    store = zarr.storage.MemoryStore()
    a = dem((40, 56), np.float32, nan_frac=0.2)
    dsts, strides = _dem_levels(store, a.shape, [1, 2, 4, 8])
    first = MemoryTileLog()
    stop_after, _ = dies_after_reads(7)

    options = {"strides": strides, "method": "mean", "source_chunks": (4, 4)}
    with pytest.raises(Exception, match="Dies"):
        write_levels(a, dsts, journal=first, after_read=stop_after, max_region_bytes=1,
                     max_workers=1, **options)  # fmt: skip
    second = MemoryTileLog(first.snapshot())
    write_levels(a, dsts, journal=second, replay_from=dsts[0], max_region_bytes=1,
                 max_workers=1, **options)  # fmt: skip
    _expect(a, dsts, strides)
    # Finished tiles of an unstored level-0 shard ran again from the source.
    assert set(second.ran) & set(first.ran)
