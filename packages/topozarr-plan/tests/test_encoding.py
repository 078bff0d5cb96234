"""Chunk / shard heuristics."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from topozarr_plan.encoding import (
    ChunkLayout,
    base_chunk_edges,
    source_chunk_sizes,
    variable_encoding,
)


def enc(shape, dims=("y", "x"), dtype="float32", target=512 * 1024, cps=4, src=None):  # type: ignore[no-untyped-def]
    return variable_encoding(dims, shape, np.dtype(dtype), ChunkLayout("y", "x", target, cps), src)


def test_base_edges_float32_default() -> None:
    # 512 KiB / 4 B = 2**17 elements -> 256 rows x 512 columns (x gets the larger half).
    assert base_chunk_edges(4, 512 * 1024) == (256, 512)
    assert base_chunk_edges(8, 512 * 1024) == (256, 256)
    assert base_chunk_edges(1, 512 * 1024) == (512, 1024)
    assert base_chunk_edges(4, 1) == (1, 1)


def test_large_level() -> None:
    assert enc((4096, 8192)) == {"chunks": (256, 512), "shards": (1024, 2048)}


def test_odd_level_shards_cover_whole_chunks() -> None:
    e = enc((1001, 733))
    assert e["chunks"] == (256, 512)
    # 1001 rows need 4 chunks (shard 1024 > 1001 is fine: partial shard); 733 columns need 2.
    assert e["shards"] == (1024, 1024)


def test_level_smaller_than_chunk() -> None:
    assert enc((100, 90)) == {"chunks": (100, 90), "shards": (100, 90)}


def test_thin_level_redistributes_budget() -> None:
    e = enc((100, 100_000))
    assert e["chunks"] == (100, 1024)  # 100 x 1024 x 4 B = 400 KB, near the target
    assert e["shards"] == (100, 4096)


def test_no_sharding() -> None:
    assert enc((4096, 8192), cps=None) == {"chunks": (256, 512)}


def test_non_spatial_dims_chunk_one_and_shard_widening() -> None:
    # Large level: the shard budget is spent spatially, time stays 1.
    e = enc((10, 4096, 4096), dims=("time", "y", "x"))
    assert e == {"chunks": (1, 256, 512), "shards": (1, 1024, 2048)}
    # Small level: one 100x100 float32 chunk (40 000 B) per spatial shard; the 16 x 512 KiB
    # budget holds 209 of them, the ~2 KiB index 128 inner chunks: time gets 128.
    e = enc((10, 100, 100), dims=("time", "y", "x"))
    assert e == {"chunks": (1, 100, 100), "shards": (128, 100, 100)}
    # Innermost non-spatial dim first: band takes the whole spare budget.
    e = enc((7, 5, 64, 64), dims=("time", "band", "y", "x"))
    assert e["shards"] == (1, 128, 64, 64)
    # A level of 2x2 chunks of 128 KiB: a 512 KiB spatial shard, 4 of them fit 16 x 128 KiB.
    e = enc((3, 256, 512), dims=("time", "y", "x"), target=128 * 1024)
    assert e["chunks"] == (1, 128, 256)
    assert e["shards"] == (4, 256, 512)


def test_non_spatial_shard_independent_of_dim_length() -> None:
    # Appending along time must keep the layout of a store written at once.
    for dims, shape in ((("time", "y", "x"), (64, 100)), (("time", "band", "y", "x"), (64, 64))):
        layouts = {
            n: enc((*([n] * (len(dims) - 2)), *shape), dims=dims)["shards"][:-2]
            for n in (1, 3, 7, 1000)
        }
        assert len(set(layouts.values())) == 1, layouts


def test_widening_capped_by_shard_index_size() -> None:
    from topozarr_plan.types import MAX_SHARD_INDEX_BYTES

    e = enc((1000, 64, 64), dims=("time", "y", "x"), cps=32)
    inner = e["shards"][0]
    # zarr's shard index: 16 bytes per inner chunk plus a 4-byte checksum.
    assert 16 * inner + 4 <= MAX_SHARD_INDEX_BYTES < 16 * (2 * inner) + 4


def test_one_spatial_dim_variable() -> None:
    # A profile along x: the whole 2**17-element budget along x, 4 chunks per shard.
    assert enc((1_000_000,), dims=("x",)) == {"chunks": (131072,), "shards": (524288,)}
    e = enc((5, 300), dims=("time", "y"))
    assert e["chunks"] == (1, 300)
    assert e["shards"][1] == 300


def test_spatial_dims_not_last() -> None:
    e = enc((4096, 8192, 3), dims=("y", "x", "band"))
    assert e == {"chunks": (256, 512, 1), "shards": (1024, 2048, 1)}


@pytest.mark.parametrize(
    ("src", "chunks", "shards"),
    [
        # Already nested: source chunk is a multiple / divisor of the shard.
        ({"y": 512, "x": 512}, (256, 512), (1024, 2048)),
        ({"y": 4096, "x": 4096}, (256, 512), (1024, 2048)),
        # Source chunk a multiple of our chunk: shard snaps to a multiple of it.
        ({"y": 768, "x": 1536}, (256, 512), (768, 1536)),
        # Source chunk larger than the shard: shard becomes a divisor of it.
        ({"y": 3072, "x": 6144}, (256, 512), (1024, 2048)),
        ({"y": 2560, "x": 2560}, (256, 512), (512, 512)),
        # Incommensurate: the chunk drops to a divisor of the source chunk.
        ({"y": 1000, "x": 1000}, (250, 500), (1000, 2000)),
        # Prime source chunk edge: within 2x of our x chunk it becomes the chunk; far from
        # our y chunk it is left alone (the writer widens its reads instead).
        ({"y": 1009, "x": 1009}, (256, 1009), (1024, 2018)),
    ],
)
def test_level0_snaps_to_source_chunks(src, chunks, shards) -> None:  # type: ignore[no-untyped-def]
    e = enc((8000, 8000), src=src)
    assert e["chunks"] == chunks
    assert e["shards"] == shards


@pytest.mark.skipif(importlib.util.find_spec("dask") is None, reason="needs dask")
def test_source_chunk_sizes_from_dask_and_encoding() -> None:
    import dask.array as da
    import xarray as xr

    v = xr.Variable(("y", "x"), da.zeros((100, 100), chunks=(30, 50)))
    assert source_chunk_sizes(v) == {"y": 30, "x": 50}
    irregular = xr.Variable(("y", "x"), da.zeros((100, 100), chunks=((10, 90), (50, 50))))
    assert source_chunk_sizes(irregular) == {"x": 50}
    z = xr.Variable(("y", "x"), np.zeros((4, 4)))
    z.encoding = {"chunks": (2, 2), "shards": (4, 4)}
    assert source_chunk_sizes(z) == {"y": 4, "x": 4}
    z.encoding = {"preferred_chunks": {"y": 3, "x": 2}}
    assert source_chunk_sizes(z) == {"y": 3, "x": 2}
    assert source_chunk_sizes(xr.Variable(("y", "x"), np.zeros((4, 4)))) == {}


@settings(max_examples=300, deadline=None)
@given(
    ny=st.integers(1, 20000),
    nx=st.integers(1, 20000),
    nt=st.integers(1, 50),
    itemsize=st.sampled_from([1, 2, 4, 8]),
    target=st.integers(1, 4 * 1024 * 1024),
    cps=st.sampled_from([None, 1, 2, 4, 8, 16, 32]),
    sy=st.one_of(st.none(), st.integers(1, 5000)),
    sx=st.one_of(st.none(), st.integers(1, 5000)),
)
def test_invariants(ny, nx, nt, itemsize, target, cps, sy, sx) -> None:  # type: ignore[no-untyped-def]
    dtype = {1: "uint8", 2: "int16", 4: "float32", 8: "float64"}[itemsize]
    src = {k: v for k, v in (("y", sy), ("x", sx)) if v is not None}
    e = enc((nt, ny, nx), dims=("t", "y", "x"), dtype=dtype, target=target, cps=cps, src=src)
    ct, cy, cx = e["chunks"]
    assert ct == 1
    assert 1 <= cy <= ny and 1 <= cx <= nx
    if not src:
        # Within the byte target (or a single element when the target is tiny).
        assert cy * cx * itemsize <= max(target, itemsize)
    if cps is None:
        assert "shards" not in e
        return
    st_, sy_, sx_ = e["shards"]
    assert sy_ % cy == 0 and sx_ % cx == 0
    # A shard never extends a whole chunk past the level edge.
    assert sy_ < ny + cy and sx_ < nx + cx
    inner = (sy_ // cy) * (sx_ // cx)
    assert math.log2(st_).is_integer()
    assert inner * st_ <= 128 or st_ == 1
    # Widening only spends the bytes the spatial shard leaves unused.
    assert st_ * sy_ * sx_ * itemsize <= max(cps * cps * target, sy_ * sx_ * itemsize)
    # Along time: does not depend on nt (appends keep the layout).
    assert e == enc(
        (nt + 7, ny, nx), dims=("t", "y", "x"), dtype=dtype, target=target, cps=cps, src=src
    )
    if ny <= cy:
        assert sy_ == cy == ny
    if not src:
        assert sy_ // cy <= cps and sx_ // cx <= cps
        assert math.log2(cy).is_integer() or cy == ny
        assert math.log2(cx).is_integer() or cx == nx
