from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
import pytest
from _engine_reference import reference_reduce
from _engine_testing import dem, make_array
from topozarr_engine import RegionError, RegionTimer, downsample_level


@pytest.mark.parametrize(
    ("dtype", "method", "fill"),
    [
        (np.float32, "mean", None),
        (np.float64, "max", None),
        (np.int16, "mean", -9999),
        (np.uint8, "max", None),
        (np.int16, "min", -9999),
        (np.float32, "nearest", None),
    ],
)
def test_downsample_matches_reference(store, dtype, method, fill):
    a = dem((37, 53), dtype, fill=fill)
    src = make_array(store, "src", a.shape, dtype, chunks=(8, 8), fill_value=fill)
    src[:] = a
    expected = reference_reduce(a, (2, 2), method, fill)
    dst = make_array(
        store, "dst", expected.shape, dtype, chunks=(4, 4), shards=(8, 8), fill_value=fill
    )
    timer = RegionTimer()
    downsample_level(src, dst, stride=(2, 2), method=method, fill_value=fill, timer=timer)
    np.testing.assert_allclose(dst[:], expected, rtol=1e-6, equal_nan=True)
    assert timer.regions > 0 and timer.reduce_s > 0


def test_downsample_sum_int_and_time_axis(store):
    a = dem((3, 20, 24), np.int16, fill=-1)
    src = make_array(store, "src", a.shape, np.int16, chunks=(1, 8, 8), fill_value=-1)
    src[:] = a
    expected = reference_reduce(a, (1, 4, 4), "sum", -1)
    dst = make_array(store, "dst", expected.shape, np.int64, chunks=(1, 2, 2), fill_value=-1)
    downsample_level(src, dst, stride=(1, 4, 4), method="sum", fill_value=-1)
    np.testing.assert_array_equal(dst[:], expected)


def test_downsample_axis_shorter_than_stride(store):
    a = dem((3, 40))
    expected = reference_reduce(a, (4, 4), "mean")
    assert expected.shape == (1, 10)
    dst = make_array(store, "dst", expected.shape, a.dtype, chunks=(1, 4))
    downsample_level(a, dst, stride=(4, 4), method="mean")  # numpy source is fine too
    np.testing.assert_allclose(dst[:], expected, rtol=1e-6, equal_nan=True)


def test_downsample_strided_source(store):
    a = dem((64, 64))[::2, ::2]
    expected = reference_reduce(a, (2, 2), "mean")
    dst = make_array(store, "dst", expected.shape, a.dtype, chunks=(4, 4))
    downsample_level(a, dst, stride=(2, 2), method="mean")
    np.testing.assert_allclose(dst[:], expected, rtol=1e-6, equal_nan=True)


def test_downsample_executor_skip_empty_write_region(store):
    a = np.full((32, 32), np.nan, np.float32)
    a[:8, :8] = 2.0
    dst = make_array(store, "dst", (16, 16), np.float32, chunks=(4, 4))
    written = []
    with ThreadPoolExecutor(2) as pool:
        futures = downsample_level(
            a,
            dst,
            stride=(2, 2),
            method="mean",
            executor=pool,
            write_region=lambda r, b: (written.append(r), dst.__setitem__(r.slices, b)),
        )
        wait(futures)
    assert len(futures) == 16
    assert [str(r) for r in written] == ["[0:4, 0:4]"]
    np.testing.assert_allclose(dst[:], reference_reduce(a, (2, 2), "mean"), equal_nan=True)


def test_downsample_validation(store):
    a = np.zeros((8, 8), np.float32)
    dst = make_array(store, "dst", (3, 4), np.float32, chunks=(4, 4))
    with pytest.raises(ValueError, match="expected"):
        downsample_level(a, dst, stride=(2, 2), method="mean")
    dst = make_array(store, "dst", (4, 4), np.float32, chunks=(4, 4))
    with pytest.raises(ValueError, match="method"):
        downsample_level(a, dst, stride=(2, 2), method="median")


def test_downsample_error(store):
    a = dem((16, 16))
    dst = make_array(store, "dst", (8, 8), np.float32, chunks=(4, 4))

    def fail(region, block):
        raise RuntimeError("nope")

    with pytest.raises(RegionError, match=r"region \[0:4, 0:4\].*RuntimeError: nope"):
        downsample_level(a, dst, stride=(2, 2), method="mean", write_region=fail, max_workers=1)


def test_downsample_progress_and_timer(store):
    a = dem((32, 48))
    expected = reference_reduce(a, (4, 4), "max")
    dst = make_array(store, "dst", expected.shape, a.dtype, chunks=(4, 4))
    timer, seen = RegionTimer(), []
    futures = downsample_level(
        a, dst, stride=(4, 4), method="max", timer=timer, on_region=lambda: seen.append(1)
    )
    np.testing.assert_array_equal(dst[:], expected)
    # One task per destination chunk: each reads the source cells under it once.
    assert len(seen) == len(futures) == timer.regions == 2 * 3
    assert timer.bytes_read == a.nbytes and timer.bytes_written == expected.nbytes
    assert timer.read_s > 0 and timer.reduce_s > 0 and timer.write_s > 0


def test_downsample_failures_name_the_stage(store, monkeypatch):
    import topozarr_engine.kernel as kernel

    a = dem((16, 16))
    dst = make_array(store, "dst", (8, 8), np.float32, chunks=(4, 4))

    def broken(*args, **kwargs):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(kernel, "block_reduce", broken)
    with pytest.raises(RegionError) as info:
        downsample_level(a, dst, stride=(2, 2), method="mean", max_workers=1)
    # The region is the destination's; one array, so no level and no variable.
    assert str(info.value) == (
        "failed writing region [0:4, 0:4] (reduce): RuntimeError: kernel exploded"
    )
