"""Writing whole shards without zarr-python's read-modify-write.

zarr-python (3.1 and 3.4) fetches a shard before writing into it, even when the write covers
the whole shard: one extra GET per shard (a 404 on a fresh store, a full download + decode when
overwriting). The engine only ever writes whole shards (regions are shard-aligned), so it
encodes each shard with the array's own codec pipeline and stores the bytes directly.

The fast path touches as little of zarr-python as it can, all of it present and unchanged from
zarr 3.1 to 3.4: ``Array.shards`` / ``fill_value`` / ``store`` / ``path`` (public),
``ArraySpec(shape, dtype, fill_value, config, prototype)``, the ``CodecPipeline.encode`` ABC
method, ``metadata.encode_chunk_key`` and the ``Store.set`` / ``Store.delete`` ABC methods. A
write that is not made of whole shards, or an array with another codec pipeline (zarrs),
goes through ``array[region] = block``. If the zarr internals move, the first failed attempt
emits a :class:`FastPathWarning` (once) and the writer falls back, so nothing breaks silently;
``test_shards.py`` fails on such a zarr version.
"""

from __future__ import annotations

import asyncio
import itertools
import warnings
from typing import Any

import numpy as np

from topozarr_engine.region import Region

__all__ = ["FastPathWarning", "fast_path_available", "write_region"]

_FAST_PATH_OK = True  # flipped off (with a warning) the first time the zarr internals differ


class FastPathWarning(RuntimeWarning):
    """The installed zarr-python cannot take the whole-shard fast path (internals moved).

    Writes still succeed through ``array[region] = block``, which reads every shard back.
    """


def fast_path_available() -> bool:
    """False once a whole-shard write had to fall back to zarr's read-modify-write."""
    return _FAST_PATH_OK


def _whole_shards(region: Region, shard: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    return all(
        a % s == 0 and (b % s == 0 or b == n)
        for a, b, s, n in zip(region.start, region.stop, shard, shape, strict=True)
    )


def _key(arr: Any, coords: tuple[int, ...]) -> str:
    key = str(arr.metadata.encode_chunk_key(coords))
    path = str(arr.store_path.path)
    return f"{path}/{key}" if path else key


async def _encode_and_store(dst: Any, arr: Any, region: Region, block: np.ndarray) -> None:
    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import default_buffer_prototype

    meta = arr.metadata
    shard = tuple(int(s) for s in dst.shards)
    shape = tuple(int(n) for n in dst.shape)
    prototype = default_buffer_prototype()
    # Regular grid: every shard has the same spec (edge shards are padded to full size).
    spec = ArraySpec(
        shape=shard,
        dtype=meta.dtype,
        fill_value=meta.fill_value,
        config=arr.config,
        prototype=prototype,
    )
    jobs = []
    ranges = [
        range(a // s, -(-b // s)) for a, b, s in zip(region.start, region.stop, shard, strict=True)
    ]
    for coords in itertools.product(*ranges):
        lo = [c * s for c, s in zip(coords, shard, strict=True)]
        piece = block[
            tuple(
                slice(a - r, min(a + s, n) - r)
                for a, s, n, r in zip(lo, shard, shape, region.start, strict=True)
            )
        ]
        if piece.shape != shard:  # edge shard: pad to the full shard with the fill value
            full = np.full(shard, dst.fill_value, dtype=piece.dtype)
            full[tuple(slice(0, n) for n in piece.shape)] = piece
            piece = full
        jobs.append((coords, prototype.nd_buffer.from_numpy_array(np.ascontiguousarray(piece))))
    encoded = await arr.codec_pipeline.encode([(buf, spec) for _, buf in jobs])
    store = arr.store_path.store
    writes = []
    for (coords, _), data in zip(jobs, encoded, strict=True):
        key = _key(arr, coords)
        writes.append(store.delete(key) if data is None else store.set(key, data))
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
                sync(_encode_and_store(dst, arr, region, block))
                return
            except (AttributeError, TypeError, ImportError, NotImplementedError) as exc:
                _FAST_PATH_OK = False  # internals moved: use the public API from now on
                warnings.warn(
                    f"topozarr: the installed zarr-python cannot take the whole-shard fast path "
                    f"({type(exc).__name__}: {exc}); every shard write now reads the shard "
                    "back first (slower, more requests). Please report this.",
                    FastPathWarning,
                    stacklevel=2,
                )
    dst[region.slices] = block
