"""The single-pass pyramid writer: read level 0 once, write every level, read nothing back.

Algorithm (docs/design.md, "Engine (`topozarr-engine`) and `Pyramid.write`"):

1. Level 0 is read in tiles aligned to its shards, widened to whole source chunks (each source
   chunk decoded once) and to multiples of the pyramid strides when that fits
   ``max_region_bytes``. Each tile is written to level 0 as soon as it is read.
2. "Inner" levels, whose cumulative stride divides the tile edge, get their final values for the
   cells the tile covers from one ``pyramid_tile`` kernel call (exact: every level is computed
   from native cells). "Deep" levels, whose windows span several tiles, fold the tile into a
   whole-level accumulator (sum + count, running max/min, top-left cell).
3. Inner-level values go to the level shard they belong to; a shard is written as soon as its
   last contributing tile is in (a countdown per shard). Where the kernel knows the codecs
   (``shard_assembly``), an open shard is held as the encoded bytes of its finished inner
   chunks plus the inner chunks still being filled; otherwise as one whole-shard buffer.
   Level 0 is held the same way when its shards span tiles (tiles then follow the source
   chunks rather than level 0's shards). Deep-level shards are finalised from the accumulator.
4. Tiles are visited in Z-order over the spatial axes, so with power-of-two edges the tiles
   under a coarse shard are one contiguous run and few shards are open at once. Peak memory
   is about ``workers x tile x 3`` plus the encoded bytes of one open shard per level (none
   where the sink streams shards to a local directory: ``chunk_streams``), plus the deep
   levels' accumulators, which are small: they are the coarsest levels.
5. Written levels are never read back; regions whose values are all fill are not written.
6. With a ``journal`` (a :class:`~topozarr_engine.tilelog.TileLog`), each finished tile task is
   recorded; a rerun of the same plan skips finished tiles and replays, from ``replay_from``
   (the stored level 0), only those that still feed a coarse shard not yet stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from topozarr_engine.pyramid_writer import PyramidWriter
from topozarr_engine.region_writer import WriteHooks
from topozarr_engine.specs import PyramidSpec

__all__ = ["write_pyramid_arrays"]


def write_pyramid_arrays(
    values: Any,
    dsts: Sequence[Any],
    spec: PyramidSpec,
    hooks: WriteHooks | None = None,
    executor: ThreadPoolExecutor | None = None,
) -> list[Future[None]]:
    """Write all pyramid levels of one variable in a single pass over its level-0 values.

    Parameters
    ----------
    values
        Level-0 values (numpy or lazy, indexable by a tuple of slices).
    dsts
        Destination ``zarr.Array`` per level; ``dsts[0]`` has ``values.shape`` and
        ``dsts[i].shape == coarsened_shape(values.shape, spec.strides[i])``. ``dsts[0]`` may
        be ``None``: level 0 is then read (once) but not written, and only the coarser levels
        in ``dsts`` are produced, each from the native cells by its cumulative stride (a
        subset of the levels, not necessarily consecutive).
    spec
        What to compute (strides, method, fill, tiling budget).
    hooks
        Progress, timers, storage, journal (see :class:`WriteHooks`).
    executor
        A shared pool: the futures are returned without waiting. ``None``: the writer's own
        pool of ``spec.max_workers`` threads, waited for.

    Returns
    -------
    list of Future
        One future per tile (all done unless ``executor`` was given).

    Raises
    ------
    ValueError
        Bad strides, method or destination shapes (before any I/O).
    RegionError
        Naming the variable, level and region of the first failure.
    """
    return PyramidWriter(values, dsts, spec, hooks or WriteHooks()).run(executor)
