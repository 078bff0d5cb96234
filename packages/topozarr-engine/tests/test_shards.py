"""The whole-shard fast path: written shards are never read back, on the installed zarr."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import zarr
from _engine_testing import make_array
from topozarr_engine import shards
from topozarr_engine.region import Region
from zarr.codecs import BloscCodec, ZstdCodec


def _chunk_gets(store):
    return [k for k in store.gets if not k.endswith("zarr.json")]


@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_fast_path_writes_whole_shards_without_reading(counting_store, dtype):
    # If this fails after a zarr upgrade, zarr's internals moved: fix shards._encode_and_store.
    a = (np.arange(20 * 36).reshape(20, 36) % 1000).astype(dtype)
    dst = make_array(counting_store, "a", a.shape, dtype, chunks=(4, 4), shards=(8, 8))
    counting_store.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error", shards.FastPathWarning)
        for _ in range(2):  # fresh store, then overwrite: neither reads anything
            for start, stop in [((0, 0), (16, 32)), ((16, 0), (20, 36)), ((0, 32), (16, 36))]:
                region = Region.from_bounds(start, stop)
                shards.write_region(dst, region, a[region.slices])
    assert shards.fast_path_available()
    assert _chunk_gets(counting_store) == []
    assert set(counting_store.writes) == {f"a/c/{i}/{j}" for i in range(3) for j in range(5)}
    np.testing.assert_array_equal(zarr.open_array(counting_store, path="a")[...], a)


def test_all_fill_shard_is_deleted(counting_store):
    dst = make_array(counting_store, "a", (8, 8), np.float32, chunks=(4, 4), shards=(8, 8))
    region = Region.from_bounds((0, 0), (8, 8))
    shards.write_region(dst, region, np.ones((8, 8), np.float32))
    assert "a/c/0/0" in counting_store.writes
    shards.write_region(dst, region, np.full((8, 8), np.nan, np.float32))
    assert _chunk_gets(counting_store) == []
    assert np.isnan(zarr.open_array(counting_store, path="a")[...]).all()


def test_partial_shard_region_uses_zarr(counting_store):
    a = np.arange(16 * 16, dtype=np.float32).reshape(16, 16)
    dst = make_array(counting_store, "a", a.shape, a.dtype, chunks=(4, 4), shards=(8, 8))
    region = Region.from_bounds((0, 0), (4, 8))
    shards.write_region(dst, region, a[region.slices])
    out = zarr.open_array(counting_store, path="a")[...]
    np.testing.assert_array_equal(out[:4, :8], a[:4, :8])
    assert np.isnan(out[4:]).all()


def test_moved_internals_warn_and_fall_back(store, monkeypatch):
    a = np.arange(8 * 8, dtype=np.float32).reshape(8, 8)
    dst = make_array(store, "a", a.shape, a.dtype, chunks=(4, 4), shards=(8, 8))

    async def broken(*args):
        raise AttributeError("'ArrayV3Metadata' object has no attribute 'get_chunk_spec'")

    def broken_kernel(*args):
        raise AttributeError("module 'topozarr_engine.kernel' has no attribute 'ShardEncoder'")

    monkeypatch.setattr(shards, "_encode_and_store", broken)
    monkeypatch.setattr(shards, "_kernel_encoder", broken_kernel)
    monkeypatch.setattr(shards, "_FAST_PATH_OK", True)
    with pytest.warns(shards.FastPathWarning, match="fast path"):
        shards.write_region(dst, Region.from_bounds((0, 0), (8, 8)), a)
    assert not shards.fast_path_available()
    np.testing.assert_array_equal(zarr.open_array(store, path="a")[...], a)


@pytest.mark.parametrize(
    "compressors",
    ["auto", None, [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")], [ZstdCodec(level=1)]],
    ids=["zarr-default", "none", "blosc", "zstd1"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.uint8])
def test_kernel_and_zarr_pipeline_encodings_decode_identically(monkeypatch, compressors, dtype):
    a = (np.arange(20 * 37).reshape(20, 37) % 251).astype(dtype)
    if a.dtype.kind == "f":
        a[3:9, 5:30] = np.nan
    kwargs = {} if compressors == "auto" else {"compressors": compressors}
    stores = {}
    for encoder in ("kernel", "zarr"):
        store = zarr.storage.MemoryStore()
        dst = zarr.create_array(
            store, name="a", shape=a.shape, dtype=dtype, chunks=(4, 4), shards=(8, 16), **kwargs
        )
        with monkeypatch.context() as m:
            if encoder == "zarr":
                m.setattr(shards, "_kernel_encoder", lambda arr: None)
            for start, stop in [((0, 0), (16, 32)), ((16, 0), (20, 37)), ((0, 32), (16, 37))]:
                region = Region.from_bounds(start, stop)
                shards.write_region(dst, region, a[region.slices])
        stores[encoder] = store
        np.testing.assert_array_equal(zarr.open_array(store, path="a")[...], a)
    assert set(stores["kernel"]._store_dict) == set(stores["zarr"]._store_dict)


def test_codecs_unknown_to_the_kernel_use_zarr_pipeline(monkeypatch):
    def unsupported(path, doc):
        raise ValueError("unsupported codec")

    monkeypatch.setattr(shards.kernel, "ShardEncoder", unsupported)
    monkeypatch.setattr(shards, "_ENCODERS", {})
    store = zarr.storage.MemoryStore()
    a = np.arange(64, dtype=np.float32).reshape(8, 8)
    dst = make_array(store, "a", a.shape, a.dtype, chunks=(4, 4), shards=(8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error", shards.FastPathWarning)
        shards.write_region(dst, Region.from_bounds((0, 0), (8, 8)), a)
    assert shards._kernel_encoder(dst._async_array) is None
    np.testing.assert_array_equal(zarr.open_array(store, path="a")[...], a)
