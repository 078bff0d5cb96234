"""The cluster writer's plan, without a cluster: blocks that tile the grid and hold whole
shards (and whole source chunks when aligned), and the tree of deep-level tasks of the design
notes' 1.5 TB DEM. Checked against independent counts (numpy coverage arrays)."""

from __future__ import annotations

import numpy as np
import pytest
from topozarr_plan.cluster import plan_blocks


def footprints(
    shape: tuple[int, ...], stride: int, shard: int
) -> list[tuple[tuple[int, ...], ...]]:
    """Level-0 cells under each shard of a level (xarray's trim: the tail left out)."""
    axes = []
    for n in shape:
        covered = n if n < stride else n // stride * stride
        step = shard * stride
        axes.append([(a, min(a + step, covered)) for a in range(0, covered, step)])
    return [((y0, x0), (y1, x1)) for y0, y1 in axes[0] for x0, x1 in axes[1]]


@pytest.mark.parametrize("shape", [(203, 317), (64, 64), (70, 300), (10, 1000), (37, 1029)])
def test_blocks_tile_the_grid_and_hold_each_shard_whole(shape: tuple[int, int]) -> None:
    strides = [(1, 1), (2, 2), (4, 4), (8, 8)]
    shards = [(32, 32), (32, 32), (16, 16), (16, 16)]
    blocks = plan_blocks(shape, strides, shards)
    cover = np.zeros(shape, dtype=int)
    for b in blocks:
        cover[b.slices] += 1
    assert (cover == 1).all()
    for (stride, _), (shard, _) in zip(strides, shards, strict=True):
        for start, stop in footprints(shape, stride, shard):
            holders = [
                b
                for b in blocks
                if all(
                    a <= c < d <= e for a, c, d, e in zip(b.start, start, stop, b.stop, strict=True)
                )
            ]
            assert len(holders) == 1, (stride, start, stop)
        # A block reduced on its own (xarray's rule on its length) gives the level's cells in
        # it: a lone tail shorter than the stride would give a window the level trims away.
        for b in blocks:
            for n, a, e in zip(shape, b.start, b.stop, strict=True):
                own = (e - a) // stride if e - a >= stride else 1
                level = n // stride if n >= stride else 1
                assert own == len([c for c in range(level) if a <= c * stride < e])


def test_aligned_blocks_hold_each_source_chunk_whole() -> None:
    shape, chunks = (203, 317), (48, 40)
    blocks = plan_blocks(shape, [(1, 1), (2, 2)], [(32, 32), (16, 16)], align=chunks)
    cover = np.zeros(shape, dtype=int)
    for b in blocks:
        cover[b.slices] += 1
    assert (cover == 1).all() and len(blocks) > 1
    owner = np.zeros(shape, dtype=int)
    for i, b in enumerate(blocks):
        owner[b.slices] = i
    for y in range(0, shape[0], chunks[0]):
        for x in range(0, shape[1], chunks[1]):
            assert len(np.unique(owner[y : y + chunks[0], x : x + chunks[1]])) == 1, (y, x)


def test_deep_plan_of_the_design_notes_1_5_tb_dem() -> None:
    """The tree of docs/design.md's 1.5 TB DEM: one task per deep shard (196 + 49 + 16 + 4 +
    1); each task's inputs are exactly the partials that meet its cells, and they cover them.
    A level of one shard writes the levels under it in the same task (the 1 GiB DEM's)."""
    from topozarr_engine import Region
    from topozarr_plan.cluster_partials import DeepJob, Reduction, plan_deep, touched

    shape, shard = (432_000, 864_000), (1024, 2048)
    stage1 = [(2**k, 2**k) for k in range(5)]
    blocks = plan_blocks(shape, stage1, [shard] * 5, align=(2048, 2048))
    strides = tuple((2**k, 2**k) for k in range(5, 10))
    reduction = Reduction("float32", "mean", None)
    job = DeepJob(None, "dem", reduction, tuple(range(5, 10)), strides)  # type: ignore[arg-type]
    first = [touched(b, strides[0]) for b in blocks]
    tiers = plan_deep(job, shape, [shard] * 5, first)
    assert len(blocks) == 729
    assert [len(t) for t in tiers] == [196, 49, 16, 4, 1]
    above = first
    for tier in tiers:
        for task in tier:
            cover = np.zeros(task.cells.shape, dtype=int)
            for k in task.inputs:
                part = above[k].intersect(task.cells)
                assert not part.is_empty()
                cover[part.relative_to(task.cells).slices] += 1
            assert (cover == 1).all()
        above = [t.output(job) or Region.from_bounds((0, 0), (0, 0)) for t in tier]
    assert max(len(t.inputs) for t in tiers[0]) == 4
    small_job = DeepJob(None, "dem", reduction, (3, 4, 5), ((8, 8), (16, 16), (32, 32)))  # type: ignore[arg-type]
    whole = [Region.from_bounds((0, 0), (2048, 2048))]
    small = plan_deep(small_job, (16384, 16384), [shard] * 3, whole)
    assert [len(t) for t in small] == [2, 1]
    assert list(small[1][0].levels) == [1, 2] and small[1][0].output(small_job) is None
