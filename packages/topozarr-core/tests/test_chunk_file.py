"""``ChunkFile`` (a streamed shard's temporary file) and ``ShardBuilder.append_chunk``, checked
against the file's bytes as Python reads them and against ``encode_chunk``; and
``ShardBuilder.append_chunks`` (whole inner chunks cut out of a block, encoded and written in
one call), each chunk read back from the file at the offset it returned, decoded with
numcodecs and compared with numpy's slice of the block."""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ThreadPoolExecutor

import numcodecs
import numpy as np
import pytest
from topozarr_core import ChunkFile, ShardBuilder


def test_appends_land_one_after_the_other_from_start(tmp_path):
    path = tmp_path / "shard.part"
    f = ChunkFile(path, 20)
    pieces = [bytes([i]) * (i + 1) for i in range(64)]
    with ThreadPoolExecutor(4) as pool:
        offsets = list(pool.map(f.append, pieces))
    assert f.end == 20 + sum(len(p) for p in pieces)
    f.write_at(b"I" * 20, 0)  # an index that comes first
    f.close()
    data = path.read_bytes()
    assert data[:20] == b"I" * 20
    spans = sorted((at, at + len(p)) for at, p in zip(offsets, pieces, strict=True))
    assert spans[0][0] == 20 and all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    for at, piece in zip(offsets, pieces, strict=True):
        assert data[at : at + len(piece)] == piece


def test_an_existing_file_is_never_overwritten_and_a_closed_one_refuses_writes(tmp_path):
    path = tmp_path / "shard.part"
    path.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        ChunkFile(path)
    assert path.read_bytes() == b"keep"
    f = ChunkFile(tmp_path / "other.part")
    f.close()
    f.close()  # twice: nothing happens
    with pytest.raises(ValueError, match="is closed"):
        f.append(b"x")


def _builder(dtype: str = "float32", chunk: tuple[int, ...] = (4, 4), fill: object = "NaN"):
    """A builder of shards of 2x2.. inner chunks of ``chunk`` (bytes + zstd inner codecs)."""
    shard = [c * 2 for c in chunk]
    meta = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": shard,
        "data_type": dtype,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": shard}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill,
        "codecs": [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": list(chunk),
                    "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                               {"name": "zstd", "configuration": {"level": 1, "checksum": False}}],
                    "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                                     {"name": "crc32c"}],
                    "index_location": "end",
                },
            }
        ],
    }  # fmt: skip
    return ShardBuilder("a", json.dumps(meta).encode())


def test_append_chunk_writes_what_encode_chunk_returns(tmp_path):
    builder = _builder()
    f = ChunkFile(tmp_path / "shard.part")
    raw = np.arange(16, dtype=np.float32).view(np.uint8)
    at, nbytes = builder.append_chunk(raw, f)
    empty = np.full(16, np.nan, dtype=np.float32).view(np.uint8)
    assert builder.append_chunk(empty, f) is None  # only fill: nothing written
    f.close()
    want = builder.encode_chunk(raw)
    assert (at, nbytes) == (0, len(want))
    assert (tmp_path / "shard.part").read_bytes() == want


# dtype, chunk, fill value, the block: a strided view of a larger array (rows contiguous for
# the multi-byte types; for uint8 every other column, so rows are not contiguous either; for
# float64 the rows in reverse order).
CASES = {
    "float32 2-d": ("float32", (4, 8), "NaN"),
    "int16 3-d (time)": ("int16", (1, 4, 4), 0),
    "uint8 strided columns": ("uint8", (4, 4), 0),
    "float64 rows reversed": ("float64", (4, 4), "NaN"),
}


def _block(dtype: str, chunk: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(7)
    shape = [c * 3 + 2 for c in chunk]  # room around the block: a view, not a copy
    shape[-1] *= 2
    big = (rng.random(shape) * 100).astype(dtype)
    if dtype == "uint8":
        block = big[..., 1 : 1 + chunk[0] * 2, 3 : 3 + chunk[-1] * 4 : 2]
        assert block.strides[-1] == 2  # rows are not contiguous
    elif dtype == "float64":  # descending rows (a flipped latitude): a negative stride
        block = big[chunk[0] * 2 : 0 : -1, 3 : 3 + chunk[-1] * 2]
        assert block.strides[0] < 0
    else:
        lead = tuple(slice(1, 1 + c * 2) for c in chunk[:-1])
        block = big[(*lead, slice(3, 3 + chunk[-1] * 2))]
        assert not block.flags.c_contiguous
    return block


def _origins(chunk: tuple[int, ...], block: np.ndarray) -> list[list[int]]:
    grid = np.ndindex(*(n // c for n, c in zip(block.shape, chunk, strict=True)))
    return [[i * c for i, c in zip(index, chunk, strict=True)] for index in grid]


def _decoded(encoded: bytes, dtype: str, chunk: tuple[int, ...]) -> np.ndarray:
    raw = numcodecs.Zstd().decode(encoded)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(chunk)


def _want(block: np.ndarray, origin: list[int], chunk: tuple[int, ...]) -> np.ndarray:
    return block[tuple(slice(o, o + c) for o, c in zip(origin, chunk, strict=True))]


@pytest.mark.parametrize("case", list(CASES))
def test_append_chunks_writes_each_chunk_where_it_says(tmp_path, case):
    dtype, chunk, fill = CASES[case]
    builder = _builder(dtype, chunk, fill)
    block = _block(dtype, chunk)
    origins = _origins(chunk, block)
    f = ChunkFile(tmp_path / "shard.part", 16)  # chunks start after a 16-byte index
    placed = builder.append_chunks(block.view(np.uint8), origins, f)
    f.close()
    data = (tmp_path / "shard.part").read_bytes()
    assert placed[0][0] == 16
    for origin, (at, size) in zip(origins, placed, strict=True):
        got = _decoded(data[at : at + size], dtype, chunk)
        np.testing.assert_array_equal(got, _want(block, origin, chunk))


def test_chunks_of_fill_values_only_are_left_out(tmp_path):
    chunk = (4, 8)
    builder = _builder("float32", chunk, "NaN")
    block = np.full((4, 24), np.nan, dtype=np.float32)
    block[:, 8:16] = np.arange(32, dtype=np.float32).reshape(4, 8)  # only the middle chunk
    origins = [[0, 0], [0, 8], [0, 16]]
    f = ChunkFile(tmp_path / "shard.part")
    placed = builder.append_chunks(block.view(np.uint8), origins, f)
    f.close()
    assert placed[0] is None and placed[2] is None
    at, size = placed[1]
    assert at == 0 and f.end == size
    data = (tmp_path / "shard.part").read_bytes()
    np.testing.assert_array_equal(_decoded(data, "float32", chunk), block[:, 8:16])


def test_a_chunk_outside_the_block_or_a_wrong_block_is_refused(tmp_path):
    builder = _builder("float32", (4, 8), "NaN")
    block = np.ones((4, 12), dtype=np.float32).view(np.uint8)
    f = ChunkFile(tmp_path / "shard.part")
    with pytest.raises(ValueError, match=r"\[0, 8\] is not inside the block of \[4, 12\]"):
        builder.append_chunks(block, [[0, 0], [0, 8]], f)
    with pytest.raises(ValueError, match="does not hold 4-byte cells of 2-d chunks"):
        builder.append_chunks(np.zeros((2, 4, 32), dtype=np.uint8), [[0, 0, 0]], f)
    with pytest.raises(ValueError, match="not inside the block"):
        builder.append_chunks(block, [[1, 0]], f)
    f.close()
