from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
import pytest
from _engine_testing import dem, make_array
from topozarr_engine import RegionError, RegionTimer, copy_array


def test_copy_roundtrip_and_regions(store):
    a = dem((40, 50))
    dst = make_array(store, "a", a.shape, a.dtype, chunks=(8, 8), shards=(16, 16))
    timer = RegionTimer()
    seen = []
    futures = copy_array(a, dst, timer=timer, on_region=lambda: seen.append(1), max_workers=2)
    assert all(f.done() for f in futures)
    np.testing.assert_array_equal(dst[:], a)
    assert len(seen) == len(futures) == 3 * 4
    assert timer.regions == 12
    assert (16, 16) in timer.region_shapes


def test_copy_widens_to_source_chunks(store):
    a = dem((64, 64))
    dst = make_array(store, "a", a.shape, a.dtype, chunks=(8, 8), shards=(16, 16))
    blocks = []
    copy_array(a, dst, source_chunks=(32, 48), on_block=lambda r, b: blocks.append(r.shape))
    assert set(blocks) <= {(32, 48), (32, 16)}
    np.testing.assert_array_equal(dst[:], a)


def test_copy_skip_empty_and_write_region(store):
    a = np.full((32, 32), np.nan, np.float32)
    a[:16, :16] = 1.0
    dst = make_array(store, "a", a.shape, a.dtype, chunks=(16, 16))
    written = []

    def write_region(region, block):
        written.append(region)
        dst[region.slices] = block

    timer = RegionTimer()
    copy_array(a, dst, write_region=write_region, timer=timer)
    assert [str(r) for r in written] == ["[0:16, 0:16]"]
    assert timer.skipped == 3
    np.testing.assert_array_equal(dst[:], a)
    # skip_empty=False writes everything.
    written.clear()
    copy_array(a, dst, write_region=write_region, skip_empty=False)
    assert len(written) == 4


def test_copy_int_fill_skipped(store):
    a = np.full((16, 16), -9999, np.int16)
    dst = make_array(store, "a", a.shape, a.dtype, chunks=(8, 8), fill_value=-9999)
    timer = RegionTimer()
    copy_array(a, dst, timer=timer)
    assert timer.skipped == 4 and timer.writes == 0
    assert list(store._store_dict) == ["a/zarr.json"] or all(
        k.endswith("zarr.json") for k in store._store_dict
    )


def test_copy_strided_input(store):
    base = dem((64, 80))
    a = base[::2, 1::2]  # non-contiguous view
    dst = make_array(store, "a", a.shape, a.dtype, chunks=(8, 8))
    copy_array(a, dst)
    np.testing.assert_array_equal(dst[:], a)


def test_copy_executor_mode_returns_futures(store):
    a = dem((32, 32))
    dst = make_array(store, "a", a.shape, a.dtype, chunks=(8, 8))
    with ThreadPoolExecutor(2) as pool:
        futures = copy_array(a, dst, executor=pool)
        assert len(futures) == 16
        wait(futures)
    assert all(f.exception() is None for f in futures)
    np.testing.assert_array_equal(dst[:], a)


def test_copy_error_names_region_and_stops(store):
    a = dem((64, 64))
    dst = make_array(store, "a", a.shape, a.dtype, chunks=(8, 8))
    calls = []

    def boom(region, block):
        calls.append(region)
        if region.start == (0, 0):
            raise OSError("disk on fire")
        dst[region.slices] = block

    with pytest.raises(RegionError, match=r"region \[0:8, 0:8\].*disk on fire") as info:
        copy_array(a, dst, write_region=boom, max_workers=1)
    assert isinstance(info.value.__cause__, OSError)
    # One worker: the failure is the first task and stops all pending ones.
    assert len(calls) == 1


def test_copy_shape_mismatch(store):
    dst = make_array(store, "a", (4, 4), np.float32, chunks=(2, 2))
    with pytest.raises(ValueError, match="shape"):
        copy_array(np.zeros((4, 5), np.float32), dst)


def test_copy_lazy_values(store):
    class Lazy:
        shape = (20, 20)
        dtype = np.dtype(np.float32)

        def __init__(self):
            self.data = dem(self.shape)
            self.reads = 0

        def __getitem__(self, key):
            self.reads += 1
            return self.data[key].tolist()  # not an ndarray: must be materialized

    lazy = Lazy()
    dst = make_array(store, "a", lazy.shape, np.float32, chunks=(10, 10))
    copy_array(lazy, dst)
    np.testing.assert_array_equal(dst[:], lazy.data)
    assert lazy.reads == 4


def test_copy_reads_each_source_chunk_once(counting_store):
    a = dem((48, 96))
    src = make_array(counting_store, "src", a.shape, a.dtype, chunks=(24, 48))
    src[:] = a
    dst = make_array(counting_store, "dst", a.shape, a.dtype, chunks=(8, 8), shards=(16, 16))
    counting_store.reset()
    copy_array(src, dst, source_chunks=src.chunks)
    src_reads = {k: n for k, n in counting_store.reads.items() if k.startswith("src/c")}
    assert len(src_reads) == 4 and set(src_reads.values()) == {1}
    assert not [k for k in counting_store.gets if k.startswith("dst/c")]
    np.testing.assert_array_equal(dst[:], a)


class _FailingReads:
    """A lazy source whose read of the region starting at (8, 0) fails."""

    shape = (16, 16)
    dtype = np.dtype(np.float32)

    def __getitem__(self, key):
        if key[0].start == 8 and key[1].start == 0:
            raise OSError("source gone")
        return np.ones([s.stop - s.start for s in key], np.float32)


def test_copy_failure_names_the_stage_and_no_level(store):
    dst = make_array(store, "a", (16, 16), np.float32, chunks=(8, 8))
    with pytest.raises(RegionError) as info:
        copy_array(_FailingReads(), dst, max_workers=1)
    # One array: the message names the region and the stage, never a level or a variable.
    assert str(info.value) == "failed writing region [8:16, 0:8] (read): OSError: source gone"
    assert isinstance(info.value.__cause__, OSError)

    def on_block(region, block):
        raise ValueError("hook refused")

    with pytest.raises(RegionError, match=r"^failed writing region \[0:8, 0:8\] \(on_block\)"):
        copy_array(np.ones((16, 16), np.float32), dst, on_block=on_block, max_workers=1)


def test_copy_timer_counts_every_read_and_write(store):
    a = dem((24, 40))
    dst = make_array(store, "a", a.shape, a.dtype, chunks=(8, 8))
    timer = RegionTimer()
    futures = copy_array(a, dst, timer=timer, skip_empty=False, max_workers=2)
    assert timer.bytes_read == timer.bytes_written == a.nbytes
    assert timer.regions == timer.writes == len(futures) == 3 * 5
    assert timer.read_s > 0 and timer.write_s > 0
