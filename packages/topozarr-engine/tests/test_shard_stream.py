"""Shards streamed to a local directory chunk by chunk (``storage.shard_stream``,
``chunk_streams``), read back with zarr-python, their index parsed with numpy and crc32c."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import google_crc32c
import numpy as np
import pytest
import zarr
from _engine_reference import reference_reduce
from _engine_testing import dem, make_array, write_levels
from topozarr_core import ShardBuilder
from topozarr_engine import coarsened_shape, shard_assembly
from topozarr_engine.chunk_streams import ChunkStreams
from topozarr_engine.region import Region
from topozarr_engine.shards import zarr_json
from topozarr_engine.storage.native import NativeWriter
from topozarr_engine.storage.shard_index import ShardIndex
from topozarr_engine.storage.shard_stream import (
    PARTIAL_MARKER,
    ShardStream,
    remove_partial_shards,
)
from topozarr_engine.storage.sinks import ZarrShardSink
from topozarr_engine.storage.target import resolve_target
from zarr.codecs import BloscCodec, BytesCodec, ShardingCodec, ZstdCodec

SHARD, INNER = (8, 12), (4, 6)


def _sharded(store, shape, dtype, *, fill, location, compressors):
    return zarr.create_array(
        store,
        name="a",
        shape=shape,
        dtype=dtype,
        chunks=SHARD,
        serializer=ShardingCodec(
            chunk_shape=INNER, codecs=[BytesCodec(), *compressors], index_location=location
        ),
        compressors=None,
        fill_value=fill,
        overwrite=True,
    )


def _partials(root) -> list[Path]:
    return [p for p in Path(root).rglob("*") if PARTIAL_MARKER in p.name]


def _parse_index(data: bytes, chunks: int, at_start: bool) -> np.ndarray:
    """The (offset, nbytes) table of a shard file, its crc32c checked (independent of ours)."""
    size = 16 * chunks + 4
    raw = data[:size] if at_start else data[-size:]
    table, crc = raw[:-4], raw[-4:]
    assert int.from_bytes(crc, "little") == google_crc32c.value(table)
    return np.frombuffer(table, dtype="<u8").reshape(chunks, 2)


def _stream_all(arr, values, seed, sink=None):
    """Deliver ``values`` to a ChunkedShards over ``arr`` (stored by ``sink``, default the zarr
    path) in random 3-row pieces, closing each shard after its last piece; returns the
    ChunkedShards."""
    sink = ZarrShardSink() if sink is None else sink
    chunked = shard_assembly.chunked_shards(arr, sink, arr.fill_value)
    assert chunked is not None and chunked.streams is not None
    pieces = []
    for shard in itertools.product(
        *(range(-(-n // s)) for n, s in zip(arr.shape, SHARD, strict=True))
    ):
        start = [i * s for i, s in zip(shard, SHARD, strict=True)]
        stop = [min(a + s, n) for a, s, n in zip(start, SHARD, arr.shape, strict=True)]
        sregion = Region.from_bounds(start, stop)
        rows = range(start[0], stop[0], 3)
        pieces += [
            (shard, sregion, Region.from_bounds([y, start[1]], [min(y + 3, stop[0]), stop[1]]))
            for y in rows
        ]
    np.random.default_rng(seed).shuffle(pieces)
    remaining = {p[0]: sum(q[0] == p[0] for q in pieces) for p in pieces}
    for shard, sregion, piece in pieces:
        chunked.encode(chunked.add(shard, sregion, piece, values[piece.slices]))
        remaining[shard] -= 1
        if not remaining[shard]:
            chunked.close(shard)
    return chunked


@pytest.mark.parametrize("io", ["python", "rust"])
@pytest.mark.parametrize("location", ["end", "start"])
@pytest.mark.parametrize(
    ("dtype", "fill", "compressors"),
    [
        (np.float32, np.nan, (ZstdCodec(level=1),)),
        (np.int16, -9999, (ZstdCodec(level=3),)),
        (np.uint8, 0, (BloscCodec(cname="lz4", shuffle="bitshuffle"),)),
    ],
)
def test_streamed_shards_read_back_like_zarr_pythons(
    tmp_path, io, location, dtype, fill, compressors
):
    # 19x29 cells: edge shards clipped by the array's end, edge inner chunks partial.
    values = dem((19, 29), dtype, fill=fill, nan_frac=0.2)
    values[0:8, 12:24] = fill  # a whole shard of fill: not stored
    values[8:12, 0:6] = fill  # an inner chunk of fill: absent from its shard
    ours = _sharded(
        zarr.storage.LocalStore(tmp_path), values.shape, dtype, fill=fill,
        location=location, compressors=compressors,
    )  # fmt: skip
    ref_store = zarr.storage.MemoryStore()
    ref = _sharded(
        ref_store, values.shape, dtype, fill=fill, location=location, compressors=compressors
    )
    ref[:] = values  # zarr-python's own write of the same array
    sink = NativeWriter.local(str(tmp_path)) if io == "rust" else ZarrShardSink()
    _stream_all(ours, values, seed=1, sink=sink)
    got = zarr.open_array(zarr.storage.LocalStore(tmp_path, read_only=True), path="a")[:]
    np.testing.assert_array_equal(got, ref[:])
    np.testing.assert_array_equal(got, values)
    assert not _partials(tmp_path)
    files = sorted(str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a").rglob("c/*/*"))
    want = sorted(k.removeprefix("a/") for k in ref_store._store_dict if "/c/" in k)
    assert files == want and "c/0/1" not in files  # the all-fill shard is not stored
    chunks = (SHARD[0] // INNER[0]) * (SHARD[1] // INNER[1])
    for name in files:
        data = (tmp_path / "a" / name).read_bytes()
        table = _parse_index(data, chunks, at_start=location == "start")
        present = table[:, 0] != 2**64 - 1
        assert ((table[:, 1] == 2**64 - 1) == ~present).all()
        spans = sorted((int(o), int(o + n)) for o, n in table[present])
        lo, hi = (
            (16 * chunks + 4, len(data))
            if location == "start"
            else (0, len(data) - 16 * chunks - 4)
        )
        assert spans[0][0] >= lo and spans[-1][1] <= hi
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # no overlap
    # Shard (1, 0) holds the fill chunk (8:12, 0:6): absent from the index.
    table = _parse_index((tmp_path / "a/c/1/0").read_bytes(), chunks, location == "start")
    assert (table[0] == 2**64 - 1).all() and (table[1:, 0] != 2**64 - 1).all()


@pytest.mark.parametrize("location", ["end", "start"])
def test_our_index_encoding_is_the_kernels(location):
    store = zarr.storage.MemoryStore()
    arr = _sharded(store, (16, 24), np.float32, fill=np.nan, location=location, compressors=())
    index = ShardIndex.from_metadata(zarr_json(arr))
    assert index is not None and index.chunks == 4 and index.at_start == (location == "start")
    builder = ShardBuilder("a", zarr_json(arr))
    builder.put_chunk([1, 0], [1, 0], np.arange(24, dtype=np.float32).view(np.uint8))
    shard = builder.finish([1, 0])
    entries = index.empty()
    entries[2] = (index.size if index.at_start else 0, 24 * 4)
    want = shard[: index.size] if index.at_start else shard[-index.size :]
    assert index.encode(entries) == want


def test_streams_only_for_writable_local_directories(tmp_path):
    sink = ZarrShardSink()
    local = make_array(zarr.storage.LocalStore(tmp_path), "s", (8, 8), np.float32,
                       chunks=(2, 2), shards=(4, 4))  # fmt: skip
    memory = make_array(zarr.storage.MemoryStore(), "s", (8, 8), np.float32,
                        chunks=(2, 2), shards=(4, 4))  # fmt: skip
    assert sink.shard_streams(local) is not None
    assert sink.shard_streams(memory) is None
    native = NativeWriter.local(str(tmp_path))
    assert native.shard_streams(local) is not None
    assert native.shard_streams(memory) is None
    readonly = zarr.open_array(zarr.storage.LocalStore(tmp_path, read_only=True), path="s")
    assert sink.shard_streams(readonly) is None
    assert shard_assembly.chunked_shards(memory, sink, np.nan).streams is None


def _pyramid(root, a, factors, *, chunks=4, shards=4):
    strides = [(f, f) for f in factors]
    dsts = [
        make_array(
            zarr.storage.LocalStore(root),
            f"{level}/v",
            coarsened_shape(a.shape, st),
            a.dtype,
            chunks=(chunks, chunks),
            shards=(chunks * shards, chunks * shards),
        )
        for level, st in enumerate(strides)
    ]
    return dsts, strides


def _spy_chunked(monkeypatch) -> list[shard_assembly.ChunkedShards]:
    made: list[shard_assembly.ChunkedShards] = []
    init = shard_assembly.ChunkedShards.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(shard_assembly.ChunkedShards, "__init__", spy)
    return made


@pytest.mark.parametrize("io", ["python", "rust"])
def test_a_pyramid_write_streams_its_shards_and_holds_at_most_a_chunk_per_thread(
    tmp_path, monkeypatch, io
):
    # 16x16 tiles (level 0's shards); a level-2 shard (16 inner chunks of 4x4 cells) spans
    # 4x4 tiles. The native writer streams to a local directory as the zarr path does.
    a = dem((96, 128), np.float32, nan_frac=0.1)
    dsts, strides = _pyramid(tmp_path, a, [1, 2, 4])
    made = _spy_chunked(monkeypatch)
    batches = []
    put_batch = ChunkStreams.put_batch

    def spy_batch(self, shard, block, items):
        batches.append(len(items))
        put_batch(self, shard, block, items)

    monkeypatch.setattr(ChunkStreams, "put_batch", spy_batch)
    workers = 2
    sink = NativeWriter.local(str(tmp_path)) if io == "rust" else ZarrShardSink()
    write_levels(a, dsts, strides=strides, method="mean", max_region_bytes=1,
                 max_workers=workers, sink=sink)  # fmt: skip
    sink.flush()
    # A tile's 8x8 cells of level 1 are 4 whole chunks of one shard: one kernel call.
    assert 4 in batches
    for level, (dst, st) in enumerate(zip(dsts, strides, strict=True)):
        want = reference_reduce(a, st, "mean", None) if level else a
        np.testing.assert_allclose(dst[:], want, rtol=1e-6, equal_nan=True)
    assert not _partials(tmp_path)
    streamed = [c for c in made if c.streams is not None and c.streams.peak_held_bytes]
    assert streamed, "coarse shards were streamed"
    chunk_bytes = 4 * 4 * 4
    for chunked in streamed:
        level = dsts.index(chunked.dst)
        # Each thread holds one encoded chunk between its encode and its append (an
        # incompressible chunk encodes to a little more than its raw size).
        assert chunked.peak_held_bytes <= workers * (chunk_bytes + 64)
        largest = max(p.stat().st_size for p in (tmp_path / f"{level}/v/c").rglob("*"))
        assert largest > 4 * workers * (chunk_bytes + 64)  # what holding shards would cost


class Dies(Exception):
    pass


def _die_after(monkeypatch, n: int) -> None:
    """Every kernel append (one chunk, or a tile's whole chunks of a shard) after the
    ``n``-th raises."""
    calls = {"n": 0}
    append_chunk = ShardStream.append_chunk

    def dying(self, position, builder, raw):
        calls["n"] += 1
        if calls["n"] > n:
            raise Dies
        return append_chunk(self, position, builder, raw)

    monkeypatch.setattr(ShardStream, "append_chunk", dying)
    append_chunks = ShardStream.append_chunks

    def dying_batch(self, positions, builder, block, origins):
        calls["n"] += 1
        if calls["n"] > n:
            raise Dies
        return append_chunks(self, positions, builder, block, origins)

    monkeypatch.setattr(ShardStream, "append_chunks", dying_batch)


def _stored_shards_are_whole(root, a, strides):
    """Every shard file present reads back as the whole expected shard (never partly)."""
    for level, st in enumerate(strides):
        want = reference_reduce(a, st, "mean", None) if level else a
        reader = zarr.open_array(zarr.storage.LocalStore(root, read_only=True), path=f"{level}/v")
        shard = reader.shards
        for f in Path(root, f"{level}/v/c").rglob("*"):
            parts = f.relative_to(Path(root, f"{level}/v/c")).parts
            if f.is_file() and all(p.isdigit() for p in parts):  # a chunk key
                i, j = (int(p) for p in parts)
                sl = (
                    slice(i * shard[0], (i + 1) * shard[0]),
                    slice(j * shard[1], (j + 1) * shard[1]),
                )
                np.testing.assert_allclose(reader[sl], want[sl], rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("io", ["python", "rust"])
def test_a_failed_write_drops_its_temporary_files(tmp_path, monkeypatch, io):
    a = dem((96, 128), np.float32, nan_frac=0.1)
    dsts, strides = _pyramid(tmp_path, a, [1, 2, 4])
    _die_after(monkeypatch, 20)
    sink = NativeWriter.local(str(tmp_path)) if io == "rust" else ZarrShardSink()
    with pytest.raises(Exception, match="Dies"):
        write_levels(a, dsts, strides=strides, method="mean", max_region_bytes=1,
                     max_workers=2, sink=sink)  # fmt: skip
    assert not _partials(tmp_path)
    _stored_shards_are_whole(tmp_path, a, strides)


def test_a_killed_write_leaves_no_partial_shard_and_a_rerun_removes_only_ours(
    tmp_path, monkeypatch
):
    a = dem((96, 128), np.float32, nan_frac=0.1)
    dsts, strides = _pyramid(tmp_path, a, [1, 2, 4])
    _die_after(monkeypatch, 20)
    # A kill: nothing runs after the failure, the temporary files stay.
    monkeypatch.setattr(shard_assembly.ChunkedShards, "abort", lambda self: None)
    with pytest.raises(Exception, match="Dies"):
        write_levels(a, dsts, strides=strides, method="mean", max_region_bytes=1,
                     max_workers=1)  # fmt: skip
    ours = _partials(tmp_path)
    assert ours, "the failure came mid-shard"
    _stored_shards_are_whole(tmp_path, a, strides)
    for p in ours:  # the shard of a temporary file was never published
        assert not p.with_name(p.name[1:].split(PARTIAL_MARKER)[0]).exists()
    parent = ours[0].parent
    foreign = [
        parent / "notes.txt",
        parent / f".9{PARTIAL_MARKER}not-hex",  # not our name
        parent / f"9{PARTIAL_MARKER}{'a' * 32}",  # no leading dot
        parent / f"9.{'b' * 32}.partial",  # zarr-python LocalStore's own temporary name
    ]
    for p in foreign:
        p.write_bytes(b"keep")
    removed = resolve_target(str(tmp_path), check=False).remove_partial_shards()
    assert removed == len(ours)
    assert {p for p in Path(tmp_path).rglob("*") if PARTIAL_MARKER in p.name} == set(foreign[1:3])
    assert all(p.read_bytes() == b"keep" for p in foreign)
    monkeypatch.undo()
    write_levels(a, dsts, strides=strides, method="mean", max_region_bytes=1, max_workers=1)
    for level, (dst, st) in enumerate(zip(dsts, strides, strict=True)):
        want = reference_reduce(a, st, "mean", None) if level else a
        np.testing.assert_allclose(dst[:], want, rtol=1e-6, equal_nan=True)
    assert remove_partial_shards(tmp_path) == []
    assert os.path.exists(foreign[0])


@pytest.mark.parametrize("where", ["local", "memory"])
def test_a_shard_whose_chunk_failed_is_never_stored(tmp_path, monkeypatch, where):
    # One thread's chunk fails; another thread delivers the shard's last piece and closes it.
    store = zarr.storage.LocalStore(tmp_path) if where == "local" else zarr.storage.MemoryStore()
    values = dem((16, 24), np.float32, nan_frac=0.0)
    arr = _sharded(store, values.shape, np.float32, fill=np.nan, location="end",
                   compressors=(ZstdCodec(level=1),))  # fmt: skip
    chunked = shard_assembly.chunked_shards(arr, ZarrShardSink(), arr.fill_value)
    assert (chunked.streams is not None) == (where == "local")
    sregion = Region.from_bounds([0, 0], [8, 12])
    top, bottom = Region.from_bounds([0, 0], [4, 12]), Region.from_bounds([4, 0], [8, 12])
    failing = chunked.add((0, 0), sregion, top, values[top.slices])
    with monkeypatch.context() as mp:
        mp.setattr(shard_assembly.ChunkedShards, "_put", lambda self, job: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            chunked.encode(failing)
    chunked.encode(chunked.add((0, 0), sregion, bottom, values[bottom.slices]))
    with pytest.raises(RuntimeError, match=r"shard \(0, 0\) not stored"):
        chunked.close((0, 0))
    reader = zarr.open_array(store, path="a", mode="r")
    assert np.isnan(reader[sregion.slices]).all()  # nothing stored: all fill
    assert not _partials(tmp_path)
    assert chunked.builder.open_shards == 0
