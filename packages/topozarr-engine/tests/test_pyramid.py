"""The single-pass writer against an independent numpy reference, on every level."""

from __future__ import annotations

import numpy as np
import pytest
from _engine_reference import reference_reduce
from _engine_testing import dem, make_array, write_levels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst
from topozarr_engine import PyramidSpec, RegionError, RegionTimer, coarsened_shape, plan_tiles


def build(
    store,
    a,
    factors,
    *,
    method="mean",
    fill=None,
    chunks=8,
    shards=2,
    out_dtype=None,
    lead=0,
    **kwargs,
):
    """Create one array per level (spatial axes last) and run the writer."""
    nlead = a.ndim - 2
    strides = [(1,) * nlead + (f, f) for f in factors]
    dsts = []
    for level, st in enumerate(strides):
        shape = coarsened_shape(a.shape, st)
        dtype = a.dtype if level == 0 else (out_dtype or a.dtype)
        ch = (1,) * nlead + (chunks, chunks)
        sh = None if shards is None else (1,) * nlead + (chunks * shards, chunks * shards)
        dsts.append(
            make_array(store, f"{level}/v", shape, dtype, chunks=ch, shards=sh, fill_value=fill)
        )
    timers = [RegionTimer() for _ in strides]
    write_levels(
        a, dsts, strides=strides, method=method, fill_value=fill, timers=timers, name="v", **kwargs
    )
    return dsts, strides, timers


def check(a, dsts, strides, method, fill=None, rtol=1e-6):
    for level, (dst, st) in enumerate(zip(dsts, strides, strict=True)):
        expected = reference_reduce(a, st, method, fill) if level else a
        got = dst[:]
        assert got.shape == expected.shape, level
        if got.dtype.kind == "f":
            np.testing.assert_allclose(
                got, expected, rtol=rtol, equal_nan=True, err_msg=f"level {level}"
            )
        else:
            np.testing.assert_array_equal(got, expected, err_msg=f"level {level}")


@pytest.mark.parametrize("max_region_bytes", [1, 2**30])
def test_float_mean_with_nan(store, max_region_bytes):
    a = dem((70, 90), np.float32, nan_frac=0.2)
    dsts, strides, timers = build(store, a, [1, 2, 4, 8, 16, 32], max_region_bytes=max_region_bytes)
    check(a, dsts, strides, "mean")
    assert timers[0].regions > 0


def test_int16_fill_mean(store):
    a = dem((64, 48), np.int16, fill=-9999, nan_frac=0.3)
    dsts, strides, _ = build(store, a, [1, 2, 4, 8, 16], fill=-9999)
    check(a, dsts, strides, "mean", -9999)


def test_uint8_max(store):
    a = (dem((50, 66), np.float32, nan_frac=0) % 255).astype(np.uint8)
    dsts, strides, _ = build(store, a, [1, 2, 4, 8, 16, 64], method="max")
    check(a, dsts, strides, "max")


def test_min_and_nearest(store):
    a = dem((40, 40), np.float64)
    dsts, strides, _ = build(store, a, [1, 2, 4, 8, 16, 32], method="min")
    check(a, dsts, strides, "min")
    store2 = type(store)()
    dsts, strides, _ = build(store2, a, [1, 2, 4, 8, 16, 32], method="nearest")
    check(a, dsts, strides, "nearest")


def test_sum_int_to_int64(store):
    a = dem((48, 48), np.int16, fill=-1)
    dsts, strides, _ = build(
        store, a, [1, 2, 4, 8, 16, 32], method="sum", fill=-1, out_dtype=np.int64
    )
    check(a, dsts, strides, "sum", -1)


def test_sum_float_all_nan_region_is_zero(store):
    a = dem((64, 64), np.float32)
    a[:32, :32] = np.nan
    dsts, strides, _ = build(store, a, [1, 2, 4, 8, 16, 32, 64], method="sum")
    check(a, dsts, strides, "sum", rtol=1e-5)


@pytest.mark.parametrize("factors", [[1, 4, 16], [1, 3, 9], [1, 3, 9, 27]])
@pytest.mark.parametrize("max_region_bytes", [1, 2**30])
def test_sparse_factors(store, factors, max_region_bytes):
    a = dem((61, 83), np.float32)
    dsts, strides, _ = build(store, a, factors, max_region_bytes=max_region_bytes)
    check(a, dsts, strides, "mean")


def test_time_cube(store):
    a = dem((3, 36, 44), np.float32)
    dsts, strides, _ = build(store, a, [1, 2, 4, 8, 16])
    check(a, dsts, strides, "mean")


def test_odd_sizes_and_axis_shorter_than_stride(store):
    a = dem((5, 131), np.float32)
    dsts, strides, _ = build(store, a, [1, 2, 4, 8, 16, 32], chunks=4)
    assert dsts[-1].shape == (1, 4)
    check(a, dsts, strides, "mean")


def test_unsharded(store):
    a = dem((33, 47), np.int16, fill=0)
    dsts, strides, _ = build(store, a, [1, 2, 4, 8], fill=0, shards=None, method="min")
    check(a, dsts, strides, "min", 0)


@pytest.mark.parametrize(("dtype", "fill"), [(np.float32, None), (np.int16, -9999)])
def test_recycled_shard_buffers_never_leak_values(store, dtype, fill):
    # 16x16 tiles, level-1 shards of 2x2 tiles: shard (0, 0) is all data, so its buffer goes
    # back to the pool and holds shard (0, 1), where one tile has no valid cell at all (its
    # piece is never delivered). Stale values from shard (0, 0) must not show through.
    a = dem((64, 64), dtype, nan_frac=0, fill=fill)
    a[0:16, 32:48] = np.nan if fill is None else fill
    dsts, strides, _ = build(store, a, [1, 2], fill=fill, max_region_bytes=1, max_workers=1)
    check(a, dsts, strides, "mean", fill)
    missing = np.isnan(dsts[1][0:8, 16:24]) if fill is None else dsts[1][0:8, 16:24] == fill
    assert missing.all()


def test_layout_inner_and_deep():
    layout = plan_tiles(
        (1000, 1000),
        4,
        (64, 64),
        PyramidSpec([(1, 1), (2, 2), (4, 4), (128, 128)], "mean", max_region_bytes=1),
    )
    assert layout.tile == (64, 64)
    assert layout.inner == [1, 2] and layout.deep == [3]
    # Sparse 3x factors: widened to a multiple of 3 when the budget allows.
    spec = PyramidSpec([(1, 1), (3, 3), (9, 9)], "mean", max_region_bytes=2**30)
    layout = plan_tiles((1000, 1000), 4, (64, 64), spec)
    assert all(t % 9 == 0 for t in layout.tile) and layout.deep == []


def test_each_source_chunk_read_once_and_no_readback(counting_store):
    a = dem((96, 128), np.float32)
    src = make_array(counting_store, "src", a.shape, a.dtype, chunks=(16, 32))
    src[:] = a
    counting_store.reset()
    dsts, strides, _ = build(
        counting_store, src, [1, 2, 4, 8, 16, 32], chunks=8, shards=2, source_chunks=src.chunks
    )
    reads = counting_store.reads
    src_reads = {k: n for k, n in reads.items() if k.startswith("src/c")}
    assert len(src_reads) == (96 // 16) * (128 // 32)
    assert set(src_reads.values()) == {1}
    # Nothing written is read back, nor even probed (metadata documents excepted).
    assert not [
        k for k in counting_store.gets if not k.startswith("src/") and not k.endswith("zarr.json")
    ]
    check(a, dsts, strides, "mean")


def test_empty_regions_not_written(counting_store):
    a = np.full((64, 64), np.nan, np.float32)
    a[:16, :16] = 1.0
    dsts, strides, timers = build(counting_store, a, [1, 2, 4, 8], chunks=8, shards=2)
    check(a, dsts, strides, "mean")
    level0_chunks = [k for k in counting_store.writes if k.startswith("0/v/c")]
    assert level0_chunks == ["0/v/c/0/0"]
    assert timers[0].skipped == 15


def test_worker_error_names_variable_level_region(store):
    a = dem((64, 64), np.float32)

    seen = []

    def hook(region, block):
        seen.append(region)
        if region.start == (16, 16):
            raise ValueError("injected")

    with pytest.raises(
        RegionError, match=r"variable 'v', level 0, region \[16:32, 16:32\].*injected"
    ) as info:
        build(store, a, [1, 2, 4], chunks=8, shards=2, after_read=hook, max_workers=1)
    assert isinstance(info.value.__cause__, ValueError)
    assert (info.value.variable, info.value.level) == ("v", 0)
    # Z-order visits (0,0), (0,1), (1,0), (1,1)=[16:32, 16:32]: the pool stops there.
    assert len(seen) == 4


def test_worker_error_on_coarse_level_write(store):
    a = dem((64, 64), np.float32)
    nlead = 0
    strides = [(f, f) for f in (1, 2, 4)]
    dsts = [
        make_array(store, f"{i}/v", coarsened_shape(a.shape, s), a.dtype, chunks=(8, 8))
        for i, s in enumerate(strides)
    ]

    class Broken:
        def __init__(self, arr):
            self.arr = arr
            self.shape, self.dtype, self.fill_value = arr.shape, arr.dtype, arr.fill_value
            self.chunks, self.shards = arr.chunks, arr.shards

        def __setitem__(self, key, value):
            raise OSError("store unavailable")

    dsts[2] = Broken(dsts[2])
    # Two workers: whichever level-2 region fails first is the one named.
    with pytest.raises(
        RegionError, match=r"variable 'v', level 2, region \[\d+:\d+, \d+:\d+\].*unavailable"
    ):
        write_levels(a, dsts, strides=strides, method="mean", name="v", max_workers=2)
    assert nlead == 0


@pytest.mark.parametrize(
    ("dtype", "method", "fill", "factors"),
    [
        (np.float32, "mean", None, [1, 3, 9, 27]),
        (np.int16, "mean", -9999, [1, 2, 4, 8, 16, 32]),
        (np.uint8, "max", None, [1, 4, 16]),
        (np.float64, "nearest", None, [1, 3, 9]),
        (np.int16, "sum", -1, [1, 2, 4, 8, 16, 32]),
    ],
)
def test_deep_levels_match_reference(store, dtype, method, fill, factors):
    """Smallest tiles: most levels are deep (kernel Accumulator across tiles)."""
    a = dem((45, 71), dtype, fill=fill)
    out = np.int64 if method == "sum" else None
    dsts, strides, _ = build(
        store, a, factors, method=method, fill=fill, out_dtype=out, max_region_bytes=1
    )
    check(a, dsts, strides, method, fill)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ny=hst.integers(1, 40),
    nx=hst.integers(1, 40),
    base=hst.sampled_from([2, 3]),
    nlevels=hst.integers(2, 4),
    chunk=hst.sampled_from([2, 3, 4, 8]),
    shards=hst.sampled_from([None, 1, 2]),
    budget=hst.sampled_from([1, 10**6]),
    method=hst.sampled_from(["mean", "max", "sum", "nearest"]),
)
def test_writer_property(ny, nx, base, nlevels, chunk, shards, budget, method):
    """Any shape, factors, chunking and tile budget: every level equals the reference."""
    from zarr.storage import MemoryStore

    factors = [base**k for k in range(nlevels)]
    a = dem((ny, nx), np.float32, nan_frac=0.3, seed=ny * 100 + nx)
    dsts, strides, _ = build(
        MemoryStore(),
        a,
        factors,
        method=method,
        chunks=chunk,
        shards=shards,
        max_region_bytes=budget,
    )
    check(a, dsts, strides, method, rtol=1e-5)


def test_tile_covering_whole_axis_keeps_sparse_levels_inner(store):
    spec = PyramidSpec([(1, 1), (3, 3), (9, 9)], "mean", max_region_bytes=1)
    layout = plan_tiles((100, 90), 4, (128, 128), spec)
    assert layout.inner == [1, 2] and layout.deep == []
    a = dem((100, 90), np.float32)
    dsts, strides, _ = build(store, a, [1, 3, 9], chunks=64, shards=2, max_region_bytes=1)
    check(a, dsts, strides, "mean")


@pytest.mark.parametrize(
    ("method", "dtype", "fill"), [("mean", np.float32, None), ("max", np.int16, -9)]
)
def test_skipna_false(store, method, dtype, fill):
    a = dem((40, 52), dtype, nan_frac=0.02, fill=fill)
    factors = [1, 2, 4, 8, 16]
    strides = [(f, f) for f in factors]
    dsts = [
        make_array(
            store, f"{i}/v", coarsened_shape(a.shape, s), dtype, chunks=(4, 4), fill_value=fill
        )
        for i, s in enumerate(strides)
    ]
    write_levels(
        a, dsts, strides=strides, method=method, fill_value=fill, skipna=False, max_region_bytes=1
    )
    for level, (dst, st) in enumerate(zip(dsts, strides, strict=True)):
        expected = reference_reduce(a, st, method, fill, skipna=False) if level else a
        np.testing.assert_allclose(dst[:], expected, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize(
    ("dtype", "fill", "method"),
    [(np.float32, None, "mean"), (np.int16, -9999, "mean"), (np.int16, -9999, "max")],
)
@pytest.mark.parametrize("max_region_bytes", [1, 2**30])
def test_level_subset_without_level0_is_exact(
    counting_store, dtype, fill, method, max_region_bytes
):
    # Levels 2 and 4 only: level 0 is read once and not written, each level comes from the
    # native cells by its cumulative stride (not a mean of means).
    a = dem((90, 130), dtype, nan_frac=0.3, fill=fill)
    strides = [(1, 1), (4, 4), (16, 16)]
    dsts = [None] + [
        make_array(
            counting_store,
            f"{level}/v",
            coarsened_shape(a.shape, st),
            dtype,
            chunks=(4, 4),
            shards=(8, 8),
            fill_value=fill,
        )
        for level, st in ((2, strides[1]), (4, strides[2]))
    ]
    counting_store.reset()
    write_levels(
        a,
        dsts,
        strides=strides,
        method=method,
        fill_value=fill,
        max_region_bytes=max_region_bytes,
        max_workers=2,
    )
    assert not [k for k in counting_store.gets if not k.endswith("zarr.json")]
    assert not [k for k in counting_store.writes if k.startswith("0/")]
    for dst, st in zip(dsts[1:], strides[1:], strict=True):
        np.testing.assert_array_equal(dst[:], reference_reduce(a, st, method, fill))


def test_only_level0_may_be_missing(store):
    a = dem((16, 16))
    dst = make_array(store, "0/v", (16, 16), a.dtype, chunks=(4, 4))
    with pytest.raises(ValueError, match="only dsts\\[0\\]"):
        write_levels(a, [dst, None], strides=[(1, 1), (2, 2)], method="mean")
    with pytest.raises(ValueError, match="nothing to write"):
        write_levels(a, [None], strides=[(1, 1)], method="mean")


def test_level_subset_tiles_follow_level0_block(store):
    # Only a coarse level: tiles stay level0_block-sized (the level accumulates across them)
    # instead of growing to one coarse shard scaled to level 0.
    a = dem((64, 96), np.float32, nan_frac=0.3)
    dst = make_array(store, "4/v", (4, 6), a.dtype, chunks=(4, 4), shards=(4, 8))
    shapes = set()
    write_levels(
        a,
        [None, dst],
        strides=[(1, 1), (16, 16)],
        method="mean",
        level0_block=(8, 8),
        max_region_bytes=1,
        max_workers=2,
        after_read=lambda region, block: shapes.add(block.shape),
    )
    assert shapes == {(8, 8)}
    np.testing.assert_allclose(dst[:], reference_reduce(a, (16, 16), "mean"), rtol=1e-6)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ny=hst.integers(1, 40),
    nx=hst.integers(1, 40),
    base=hst.sampled_from([2, 3]),
    keep=hst.lists(hst.integers(1, 3), min_size=1, max_size=3, unique=True),
    chunk=hst.sampled_from([2, 3, 4]),
    block=hst.sampled_from([None, (2, 2), (4, 6)]),
    budget=hst.sampled_from([1, 10**6]),
    method=hst.sampled_from(["mean", "max", "sum", "nearest"]),
)
def test_level_subset_property(ny, nx, base, keep, chunk, block, budget, method):
    """Any subset of coarse levels without level 0 equals the reference by cumulative stride."""
    from zarr.storage import MemoryStore

    store = MemoryStore()
    a = dem((ny, nx), np.float32, nan_frac=0.3, seed=ny * 100 + nx)
    levels = sorted(keep)
    strides = [(1, 1)] + [(base**k, base**k) for k in levels]
    out = None if method != "sum" else np.float32
    dsts = [None] + [
        make_array(
            store,
            f"{k}/v",
            coarsened_shape(a.shape, st),
            out or a.dtype,
            chunks=(chunk, chunk),
            shards=(2 * chunk, 2 * chunk),
        )
        for k, st in zip(levels, strides[1:], strict=True)
    ]
    write_levels(
        a,
        dsts,
        strides=strides,
        method=method,
        level0_block=block,
        max_region_bytes=budget,
        max_workers=2,
    )
    for dst, st in zip(dsts[1:], strides[1:], strict=True):
        np.testing.assert_allclose(
            dst[:], reference_reduce(a, st, method), rtol=1e-5, equal_nan=True, err_msg=str(st)
        )


@pytest.mark.parametrize(
    ("workers", "split_tiles"), [(1, None), (64, None), (1, False), (64, True)]
)
def test_the_kernel_splits_tiles_only_with_fewer_tile_threads_than_cpus(
    store, monkeypatch, workers, split_tiles
):
    from topozarr_engine import kernel
    from topozarr_engine.resources import cpu_count

    seen: list[bool] = []
    tile = kernel.pyramid_tile

    def spy(*args, **kwargs):
        seen.append(kwargs["parallel"])
        return tile(*args, **kwargs)

    monkeypatch.setattr(kernel, "pyramid_tile", spy)
    a = dem((64, 96), np.float32)
    dsts, strides, _ = build(
        store, a, [1, 2, 4], max_workers=workers, split_tiles=split_tiles, max_region_bytes=1
    )
    check(a, dsts, strides, "mean")
    want = workers < cpu_count() if split_tiles is None else split_tiles
    assert seen and set(seen) == {want}
