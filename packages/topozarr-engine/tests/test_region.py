import pytest
from topozarr_engine.region import (
    Region,
    coarsened_shape,
    grid_shape,
    iter_grid,
    morton_key,
    morton_order,
    region_block,
)


def test_region_basics():
    r = Region.from_bounds((2, 4), (5, 10))
    assert r.shape == (3, 6) and r.size == 18 and r.ndim == 2
    assert str(r) == "[2:5, 4:10]"
    assert r.intersect(Region.from_bounds((0, 8), (3, 20))) == Region.from_bounds((2, 8), (3, 10))
    assert r.relative_to((2, 4)) == Region.from_bounds((0, 0), (3, 6))
    assert r.scaled((2, 3), limit=(9, 100)) == Region.from_bounds((4, 12), (9, 30))
    assert hash(r) == hash(Region.from_bounds((2, 4), (5, 10)))
    with pytest.raises(ValueError):
        Region((slice(3, 1),))


def test_derived_regions_hold_plain_ints_and_keep_the_checks():
    import numpy as np

    r = Region.from_bounds((2, 4), (5, 10))
    # Disjoint: empty, with start == stop on the axis they miss each other on.
    gap = r.intersect(Region.from_bounds((6, 0), (8, 20)))
    assert gap.is_empty() and gap.start == (6, 4) and gap.stop == (6, 10)
    moved = r.relative_to((np.int64(1), np.int32(2)))  # numpy origins give plain ints
    assert moved == Region.from_bounds((1, 2), (4, 8))
    assert all(type(b) is int for b in moved.start + moved.stop)
    assert moved.slices == (slice(1, 4), slice(2, 8))
    assert r.relative_to(Region.from_bounds((2, 4), (3, 5))) == Region.from_bounds((0, 0), (3, 6))
    with pytest.raises(ValueError, match="forward"):
        r.relative_to((3, 0))  # the origin is past the region's start
    with pytest.raises(ValueError):
        r.relative_to((1, 2, 3))
    with pytest.raises(ValueError):
        r.intersect(Region.from_bounds((0,), (4,)))


def test_grid_covers_clipped():
    regions = [r for _, r in iter_grid((5, 7), (2, 3))]
    assert grid_shape((5, 7), (2, 3)) == (3, 3)
    assert len(regions) == 9
    assert sum(r.size for r in regions) == 35
    assert regions[-1] == Region.from_bounds((4, 6), (5, 7))


def test_morton():
    assert [morton_key(i) for i in [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2)]] == [0, 1, 2, 3, 4]
    order = morton_order(
        [(t, y, x) for t in range(2) for y in range(2) for x in range(2)], axes=[1, 2]
    )
    assert order[:4] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)]
    # Every 2x2 block of a 4x4 grid is one contiguous run.
    order = morton_order([(y, x) for y in range(4) for x in range(4)])
    for k in range(4):
        run = order[4 * k : 4 * k + 4]
        assert len({(y // 2, x // 2) for y, x in run}) == 1


def test_region_block_widening():
    # Source chunks 3x the shard on the last axis: widened when it fits.
    assert region_block((100, 100), 4, (8, 8), widen_to=(8, 24), max_region_bytes=10**6) == (
        8,
        24,
    )
    # Not when over budget (never below the shard).
    assert region_block((100, 100), 4, (8, 8), widen_to=(8, 24), max_region_bytes=100) == (
        8,
        8,
    )
    # lcm, not product
    assert region_block((100, 100), 1, (4, 4), widen_to=(6, 6), max_region_bytes=10**6) == (
        12,
        12,
    )
    # Shard already covers the axis: nothing to do.
    assert region_block((4, 100), 1, (8, 4), widen_to=(3, 4), max_region_bytes=10**6) == (8, 4)


def test_coarsened_shape():
    assert coarsened_shape((10, 7, 3), (1, 2, 4)) == (10, 3, 1)
    assert coarsened_shape((0, 5), (2, 2)) == (0, 2)
