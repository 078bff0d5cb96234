"""io="rust" in the engine: NativeWriter stores the same values zarr-python would."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from _engine_reference import reference_reduce
from _engine_testing import dem, make_array, write_levels
from topozarr_engine import Region, RegionError, coarsened_shape
from topozarr_engine.storage.native import NativeWriter


def _levels(root, a, factors, *, fill=None, chunks=8, shards=2):
    store = zarr.storage.LocalStore(root)
    dsts = []
    for level, f in enumerate(factors):
        shape = coarsened_shape(a.shape, (f, f))
        dsts.append(
            make_array(
                store,
                f"{level}/v",
                shape,
                a.dtype,
                chunks=(chunks, chunks),
                shards=(chunks * shards, chunks * shards),
                fill_value=fill,
            )
        )
    return dsts


@pytest.mark.parametrize(
    ("dtype", "method", "fill"),
    [("float32", "mean", None), ("int16", "mean", -9999), ("uint8", "max", None)],
)
def test_pyramid_through_native_writer_equals_python_path(tmp_path, dtype, method, fill):
    a = dem((75, 61), dtype, fill=fill)
    factors = [1, 2, 4, 8]
    strides = [(f, f) for f in factors]
    native_dsts = _levels(tmp_path / "rust", a, factors, fill=fill)
    python_dsts = _levels(tmp_path / "python", a, factors, fill=fill)
    writer = NativeWriter.local(str(tmp_path / "rust"))
    kwargs = {"strides": strides, "method": method, "fill_value": fill, "max_region_bytes": 1}
    write_levels(a, native_dsts, sink=writer, **kwargs)
    writer.flush()
    write_levels(a, python_dsts, **kwargs)
    for level, (p, st) in enumerate(zip(python_dsts, strides, strict=True)):
        got = zarr.open_array(zarr.storage.LocalStore(tmp_path / "rust"), path=f"{level}/v")[...]
        np.testing.assert_array_equal(got, p[...], err_msg=f"level {level}")
        expected = reference_reduce(a, st, method, fill) if level else a
        np.testing.assert_allclose(got, expected, rtol=1e-6, equal_nan=True)
        meta = [
            (tmp_path / side / f"{level}/v/zarr.json").read_text() for side in ("rust", "python")
        ]
        assert meta[0] == meta[1]
    # The same shard keys exist on both paths (all-fill shards skipped on both).
    keys = {
        str(path.relative_to(tmp_path / side))
        for side in ("rust", "python")
        for path in (tmp_path / side).rglob("c/*/*")
    }
    for key in keys:
        assert (tmp_path / "rust" / key).exists() == (tmp_path / "python" / key).exists(), key


def test_write_region_splits_regions_into_shards_and_pads_edges(tmp_path):
    a = np.arange(20 * 37, dtype="int32").reshape(20, 37)
    store = zarr.storage.LocalStore(tmp_path)
    dst = make_array(store, "a", a.shape, a.dtype, chunks=(4, 4), shards=(8, 16))
    writer = NativeWriter.local(str(tmp_path))
    for start, stop in [((0, 0), (16, 32)), ((16, 0), (20, 37)), ((0, 32), (16, 37))]:
        region = Region.from_bounds(start, stop)
        writer.write_region(dst, region, a[region.slices])
    writer.flush()
    np.testing.assert_array_equal(dst[...], a)
    assert writer.url.startswith("file://")


def test_misaligned_region_and_wrong_root_are_refused(tmp_path):
    store = zarr.storage.LocalStore(tmp_path / "z")
    dst = make_array(store, "a", (16, 16), np.float32, chunks=(4, 4), shards=(8, 8))
    writer = NativeWriter.local(str(tmp_path / "z"))
    with pytest.raises(ValueError, match="aligned"):
        writer.write_region(dst, Region.from_bounds((0, 0), (4, 8)), np.ones((4, 8), np.float32))
    elsewhere = NativeWriter.local(str(tmp_path / "other"))
    with pytest.raises(FileNotFoundError, match=r"a/zarr\.json"):
        elsewhere.write_region(dst, Region.from_bounds((0, 0), (8, 8)), np.ones((8, 8)))


def test_first_array_is_read_back_the_others_come_from_zarr_python(tmp_path):
    store = zarr.storage.LocalStore(tmp_path / "z")
    a = make_array(store, "a", (16, 16), np.float32, chunks=(4, 4), shards=(8, 8))
    b = make_array(store, "b", (16, 16), np.float32, chunks=(4, 4), shards=(8, 8))
    # A target holding a different array "a": the read-back check refuses it.
    other = zarr.storage.LocalStore(tmp_path / "other")
    make_array(other, "a", (8, 8), np.float32, chunks=(4, 4), shards=(8, 8))
    with pytest.raises(ValueError, match="not the zarr store's root"):
        NativeWriter.local(str(tmp_path / "other")).write_region(
            a, Region.from_bounds((0, 0), (16, 16)), np.ones((16, 16), np.float32)
        )
    # Once the root is proven, later arrays are opened from zarr-python's metadata: b's
    # zarr.json is not read (it is gone from disk), and its shards still decode.
    (tmp_path / "z" / "b" / "zarr.json").unlink()
    writer = NativeWriter.local(str(tmp_path / "z"))
    data = np.arange(256, dtype=np.float32).reshape(16, 16)
    for dst in (a, b):
        writer.write_region(dst, Region.from_bounds((0, 0), (16, 16)), data)
    writer.flush()
    np.testing.assert_array_equal(a[...], data)
    np.testing.assert_array_equal(b[...], data)


def test_storage_error_is_a_region_error_or_raised_by_flush(tmp_path):
    a = dem((32, 32))
    dsts = _levels(tmp_path, a, [1, 2])
    (tmp_path / "1/v/c").write_bytes(b"blocks level 1's chunk directory")
    writer = NativeWriter.local(str(tmp_path))
    with pytest.raises((RegionError, OSError), match="1/v/c/0"):
        write_levels(a, dsts, strides=[(1, 1), (2, 2)], method="mean", sink=writer)
        writer.flush()
