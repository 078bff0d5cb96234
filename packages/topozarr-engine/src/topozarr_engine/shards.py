"""Writing whole shards without zarr-python's read-modify-write.

zarr-python (3.1) always fetches a shard before writing into it, even when the write covers the
whole shard: one extra GET per shard (a 404 on a fresh store, a full download + decode when
overwriting). The engine only ever writes whole shards (regions are shard-aligned), so it
encodes each shard with the array's own codec pipeline and stores the bytes directly. Any write
that is not made of whole shards, or a zarr version whose internals differ, falls back to
``array[region] = block``.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import numpy as np

from topozarr_engine.region import Region

__all__ = ["write_region"]

_FAST_PATH_OK = True  # flipped off for good the first time the zarr internals do not match


def _whole_shards(region: Region, shard: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    return all(
        a % s == 0 and (b % s == 0 or b == n)
        for a, b, s, n in zip(region.start, region.stop, shard, shape, strict=True)
    )


async def _encode_and_store(arr: Any, region: Region, block: np.ndarray) -> None:
    from zarr.core.buffer import default_buffer_prototype

    meta = arr.metadata
    shard = tuple(meta.chunk_grid.chunk_shape)
    prototype = default_buffer_prototype()
    jobs = []
    ranges = [
        range(a // s, -(-b // s)) for a, b, s in zip(region.start, region.stop, shard, strict=True)
    ]
    for coords in itertools.product(*ranges):
        lo = [c * s for c, s in zip(coords, shard, strict=True)]
        piece = block[
            tuple(
                slice(a - r, min(a + s, n) - r)
                for a, s, n, r in zip(lo, shard, arr.shape, region.start, strict=True)
            )
        ]
        if piece.shape != shard:  # edge shard: pad to the full shard with the fill value
            full = np.full(shard, meta.fill_value, dtype=piece.dtype)
            full[tuple(slice(0, n) for n in piece.shape)] = piece
            piece = full
        spec = meta.get_chunk_spec(coords, arr.config, prototype)
        jobs.append(
            (coords, prototype.nd_buffer.from_numpy_array(np.ascontiguousarray(piece)), spec)
        )
    encoded = await arr.codec_pipeline.encode([(buf, spec) for _, buf, spec in jobs])
    writes = []
    for (coords, _, _), data in zip(jobs, encoded, strict=True):
        target = arr.store_path / meta.encode_chunk_key(coords)
        writes.append(target.delete() if data is None else target.set(data))
    await asyncio.gather(*writes)


def write_region(dst: Any, region: Region, block: np.ndarray) -> None:
    """``dst[region] = block``, storing whole shards directly when ``region`` is made of them."""
    global _FAST_PATH_OK
    shards = getattr(dst, "shards", None)
    if _FAST_PATH_OK and shards is not None:
        arr = getattr(dst, "_async_array", None)
        shape = tuple(int(n) for n in dst.shape)
        # Only zarr-python's own pipeline is known to encode whole shards (zarrs' does not).
        pipeline = type(getattr(arr, "codec_pipeline", None)).__name__
        if (
            arr is not None
            and pipeline == "BatchedCodecPipeline"
            and _whole_shards(region, tuple(shards), shape)
        ):
            try:
                from zarr.core.sync import sync

                block = np.asarray(block, dtype=np.dtype(dst.dtype))
                sync(_encode_and_store(arr, region, block))
                return
            except (AttributeError, TypeError, ImportError, NotImplementedError):
                _FAST_PATH_OK = False  # internals moved: use the public API from now on
    dst[region.slices] = block
