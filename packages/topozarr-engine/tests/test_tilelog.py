"""The single-pass writer's journal hooks: skip and replay finished tiles, write only ``within``."""

from __future__ import annotations

import numpy as np
import pytest
from _engine_reference import reference_reduce
from _engine_testing import dies_after_reads, make_array, write_levels
from topozarr_engine import Region, coarsened_shape
from topozarr_engine.tilelog import MemoryTileLog, TileHistory
from zarr.storage import MemoryStore


def dem(shape, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=shape).astype(np.float32)
    a[rng.random(shape) < 0.2] = np.nan
    return a


def arrays(store, shape, factors, *, lead=0):
    strides = [(1,) * lead + (f, f) for f in factors]
    dsts = [
        make_array(
            store,
            f"{level}/v",
            coarsened_shape(shape, st),
            np.float32,
            chunks=(1,) * lead + (4, 4),
            shards=(2,) * lead + (8, 8),
        )
        for level, st in enumerate(strides)
    ]
    return dsts, strides


def expect(a, dsts, strides):
    for level, (dst, st) in enumerate(zip(dsts, strides, strict=True)):
        want = reference_reduce(a, st, "mean", None) if level else a
        np.testing.assert_allclose(dst[...], want, rtol=1e-6, equal_nan=True, err_msg=str(level))


@pytest.mark.parametrize("budget", [1, 2**30])
def test_a_resumed_write_skips_finished_tiles_and_equals_a_clean_one(budget):
    a = dem((40, 56))
    store = MemoryStore()
    dsts, strides = arrays(store, a.shape, [1, 2, 4, 8])
    first = MemoryTileLog()
    stop_after, reads = dies_after_reads(7)

    with pytest.raises(Exception, match="Dies"):
        write_levels(
            a, dsts, strides=strides, method="mean", journal=first, after_read=stop_after,
            max_region_bytes=budget, max_workers=1,
        )  # fmt: skip
    assert 0 < len(first.ran) < len(reads)
    second = MemoryTileLog(first.snapshot())
    again = []
    write_levels(
        a, dsts, strides=strides, method="mean", journal=second, replay_from=dsts[0],
        after_read=lambda region, block: again.append(region), max_region_bytes=budget,
        max_workers=1,
    )  # fmt: skip
    expect(a, dsts, strides)
    # No finished tile is run again; the replayed ones were read back from level 0.
    assert not set(second.ran) & set(first.ran)
    assert set(second.replayed) <= set(first.ran)
    assert len(again) == len(second.ran) + len(second.replayed)


def test_replayed_tiles_are_read_from_replay_from_not_the_source():
    a = dem((32, 32))
    store = MemoryStore()
    dsts, strides = arrays(store, a.shape, [1, 2, 4])
    log = MemoryTileLog()
    write_levels(a, dsts, strides=strides, method="mean", journal=log, max_workers=1)
    # Forget every coarse shard: all tiles are finished but feed shards not stored.
    history = TileHistory(frozenset(log.done), {})
    dsts[1][...] = 0
    dsts[2][...] = 0

    class Poisoned:
        shape, dtype = a.shape, a.dtype

        def __getitem__(self, key):
            raise AssertionError("the source was read for a finished tile")

    rerun = MemoryTileLog(history)
    write_levels(
        Poisoned(), dsts, strides=strides, method="mean", journal=rerun, replay_from=dsts[0],
        max_workers=1,
    )  # fmt: skip
    expect(a, dsts, strides)
    assert sorted(rerun.replayed) == sorted(log.done) and not rerun.ran


@pytest.mark.parametrize("first_new", [4, 3])
def test_within_writes_only_the_new_time_steps(first_new):
    old = dem((6, 16, 16), seed=1)
    new = dem((6, 16, 16), seed=2)
    new[:first_new] = old[:first_new]  # steps before first_new unchanged: the "appended" ones
    store = MemoryStore()
    dsts, strides = arrays(store, old.shape, [1, 2, 4], lead=1)
    write_levels(old, dsts, strides=strides, method="mean")
    before = dict(store._store_dict)
    within = Region.from_bounds([first_new, 0, 0], [6, 16, 16])
    log = MemoryTileLog()
    write_levels(new, dsts, strides=strides, method="mean", within=within, journal=log)
    expect(new, dsts, strides)
    # Shards of steps 0..1 (shard length 2 along time) are untouched; with first_new=3 the
    # shard of steps 2..3 was completed from its stored values and rewritten.
    untouched = [k for k in before if "/c/0/" in k]
    assert untouched and all(store._store_dict[k] is before[k] for k in untouched)
    full = MemoryTileLog()
    write_levels(new, dsts, strides=strides, method="mean", journal=full)
    assert 0 < len(log.ran) < len(full.ran)  # the tiles of the old steps were not read
