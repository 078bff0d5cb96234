"""Conformance tests every shard sink passes (in the style of zarr-python's ``StoreTests``).

A subclass says where to write (:meth:`ShardSinkTests.location`: what a user would pass to
``Pyramid.write``), which sink to use (``native``: the kernel's native writer, else the
zarr-python path) and how to make writes fail (:meth:`ShardSinkTests.broken`). Every test
writes through the sink, then reads back with zarr-python from a store opened afresh and
compares with numpy.
"""

from __future__ import annotations

import pickle
from typing import Any, ClassVar

import numpy as np
import pytest
import zarr
from topozarr_engine.region import Region
from topozarr_engine.storage import StorageTarget, resolve_target, store_errors
from topozarr_engine.storage.sinks import ShardSink, ZarrShardSink
from topozarr_engine.timer import encode_seconds
from zarr.storage import StorePath

SECRET = "sink-S3cr3t-that-must-never-show"
SHAPE = (21, 27)  # odd edges: neither divides the shard shape
SHARDS = (8, 8)
CHUNKS = (4, 4)


def region(start: tuple[int, ...], stop: tuple[int, ...]) -> Region:
    return Region.from_bounds(list(start), list(stop))


def shard_regions(shape: tuple[int, ...], shards: tuple[int, ...]) -> list[Region]:
    """Every shard of the array as a region (edge shards clipped)."""
    out = []
    for i in range(0, shape[0], shards[0]):
        for j in range(0, shape[1], shards[1]):
            out.append(region((i, j), (min(i + shards[0], shape[0]), min(j + shards[1], shape[1]))))
    return out


class ShardSinkTests:
    """The tests; subclasses set ``native`` and implement ``location`` and ``broken``."""

    native: ClassVar[bool] = False

    @pytest.fixture
    def location(self, tmp_path: Any) -> Any:
        """What a user passes as the store (a path, a URL, a zarr store)."""
        raise NotImplementedError

    @pytest.fixture
    def broken(self, location: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
        """A target over ``location`` whose writes of array ``a``'s shards fail (with
        ``SECRET`` among the environment's or the store's secrets)."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------- helpers

    def sink(self, target: StorageTarget) -> ShardSink:
        return target.native_writer() if self.native else ZarrShardSink()

    def create(self, target: StorageTarget, dtype: str, fill: Any, shape: Any = SHAPE) -> Any:
        return zarr.create_array(
            target.store,
            name="a",
            shape=shape,
            chunks=CHUNKS,
            shards=SHARDS,
            dtype=dtype,
            fill_value=fill,
            zarr_format=3,
        )

    def read_back(self, location: Any) -> np.ndarray:
        fresh = resolve_target(location, check=False)
        return np.asarray(zarr.open_array(fresh.store, path="a", mode="r")[...])

    def write(self, target: StorageTarget, arr: Any, regions: list[Region], data: np.ndarray):
        sink = self.sink(target)
        for r in regions:
            sink.write_region(arr, r, data[r.slices])
        sink.flush()

    # ----------------------------------------------------------------------------- tests

    def test_the_sink_follows_the_protocol(self, location: Any) -> None:
        assert isinstance(self.sink(resolve_target(location, check=False)), ShardSink)

    def test_whole_shards_read_back(self, location: Any) -> None:
        target = resolve_target(location, check=False)
        arr = self.create(target, "float32", np.nan)
        data = np.random.default_rng(1).normal(size=SHAPE).astype("float32")
        self.write(target, arr, [region((0, 0), (16, 16))], data)
        expected = np.full(SHAPE, np.nan, "float32")
        expected[:16, :16] = data[:16, :16]
        np.testing.assert_array_equal(self.read_back(location), expected)

    def test_every_shard_up_to_the_odd_edges(self, location: Any) -> None:
        target = resolve_target(location, check=False)
        arr = self.create(target, "float64", np.nan)
        data = np.arange(np.prod(SHAPE), dtype="float64").reshape(SHAPE)
        self.write(target, arr, shard_regions(SHAPE, SHARDS), data)
        np.testing.assert_array_equal(self.read_back(location), data)

    def test_partial_regions(self, location: Any) -> None:
        target = resolve_target(location, check=False)
        arr = self.create(target, "float32", 0.0)
        data = np.random.default_rng(2).normal(size=SHAPE).astype("float32")
        part = region((3, 5), (11, 13))  # inside, not aligned to any shard
        if self.native:
            with pytest.raises(ValueError, match="whole shards only"):
                self.sink(target).write_region(arr, part, data[part.slices])
            return
        self.write(target, arr, [part], data)
        expected = np.zeros(SHAPE, "float32")
        expected[part.slices] = data[part.slices]
        np.testing.assert_array_equal(self.read_back(location), expected)

    @pytest.mark.parametrize(("dtype", "fill"), [("int16", -9999), ("uint8", 255), ("int32", 0)])
    def test_integers_with_a_fill_value(self, location: Any, dtype: str, fill: int) -> None:
        target = resolve_target(location, check=False)
        arr = self.create(target, dtype, fill)
        info = np.iinfo(dtype)
        data = np.random.default_rng(3).integers(info.min, info.max, SHAPE, dtype=dtype)
        data[0, :5] = fill  # fill values inside a written shard stay as they are
        written = region((8, 8), (16, 24))
        self.write(target, arr, [written], data)
        expected = np.full(SHAPE, fill, dtype)
        expected[written.slices] = data[written.slices]
        got = self.read_back(location)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, expected)

    def test_nan_values_survive(self, location: Any) -> None:
        target = resolve_target(location, check=False)
        arr = self.create(target, "float32", -1.0)
        data = np.ones(SHAPE, "float32")
        data[::3, ::2] = np.nan
        self.write(target, arr, shard_regions(SHAPE, SHARDS), data)
        np.testing.assert_array_equal(self.read_back(location), data)  # NaN == NaN here

    def test_flush_makes_every_write_visible(self, location: Any) -> None:
        target = resolve_target(location, check=False)
        arr = self.create(target, "float32", np.nan)
        sink = self.sink(target)
        data = np.random.default_rng(4).normal(size=SHAPE).astype("float32")
        for r in shard_regions(SHAPE, SHARDS):
            sink.write_region(arr, r, data[r.slices])
        sink.flush()  # the native sink uploads in the background until here
        np.testing.assert_array_equal(self.read_back(location), data)

    def test_whole_shards_report_their_encoding_time(self, location: Any) -> None:
        target = resolve_target(location, check=False)
        arr = self.create(target, "float32", np.nan)
        before = encode_seconds()  # this thread's clock, which the writers' timers read
        self.write(target, arr, shard_regions(SHAPE, SHARDS), np.ones(SHAPE, "float32"))
        assert encode_seconds() > before

    def test_a_failed_write_names_the_key_and_no_secret(self, location: Any, broken: Any) -> None:
        good = resolve_target(location, check=False)
        arr = self.create(good, "float32", np.nan)
        data = np.ones(SHAPE, "float32")
        # The array as the broken store would hold it, opened without a request.
        view = zarr.Array(zarr.AsyncArray(arr.metadata, StorePath(broken.store, "a")))
        with pytest.raises(OSError) as info, store_errors(broken.store):
            self.write(broken, view, [region((0, 0), (8, 8))], data)
        message = str(info.value)
        assert "/a/" in message  # names the array's key (its shard, or its zarr.json)
        assert SECRET not in message and SECRET not in repr(info.value)

    def test_a_pickled_target_reopens_the_store(self, location: Any) -> None:
        target = resolve_target(location, check=False)
        arr = self.create(target, "float32", np.nan)
        copy = pickle.loads(pickle.dumps(target))
        assert copy.store is not target.store and copy.description == target.description
        assert SECRET not in repr(pickle.dumps(target))
        data = np.random.default_rng(5).normal(size=SHAPE).astype("float32")
        # Written through the reopened store (as a cluster worker would), read back afresh.
        view = zarr.open_array(copy.store, path="a", mode="r+")
        assert view.shape == arr.shape
        self.write(copy, view, shard_regions(SHAPE, SHARDS), data)
        np.testing.assert_array_equal(self.read_back(location), data)
