"""``ChunkFile`` (a streamed shard's temporary file) and ``ShardBuilder.append_chunk``, checked
against the file's bytes as Python reads them and against ``encode_chunk``."""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ThreadPoolExecutor

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


def _builder() -> ShardBuilder:
    meta = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [8, 8],
        "data_type": "float32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [8, 8]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": "NaN",
        "codecs": [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": [4, 4],
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
