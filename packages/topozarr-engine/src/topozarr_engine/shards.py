"""Writing whole shards without zarr-python's read-modify-write.

zarr-python (3.1 and 3.4) fetches a shard before writing into it, even when the write covers
the whole shard: one extra GET per shard (a 404 on a fresh store, a full download + decode when
overwriting). The engine only ever writes whole shards (regions are shard-aligned), so it
encodes each shard itself and stores the bytes directly through the store's API.

The encoder is the kernel's (``topozarr_core.ShardEncoder``, the zarrs codecs), built from the
array's own ``zarr.json``: it runs in the worker thread with the GIL released, where
zarr-python's pipeline would run its Python per-inner-chunk loop on the event loop thread.
Arrays whose codecs the kernel does not know are encoded by zarr-python's pipeline. Either
way the bytes go through zarr-python's store (``Store.set`` / ``Store.delete``), so every zarr
store works and the tests decode both encodings with zarr-python.

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
import threading
import time
import warnings
from typing import Any

import numpy as np

from topozarr_engine import kernel
from topozarr_engine.region import Region
from topozarr_engine.timer import add_encode

__all__ = [
    "FastPathWarning",
    "fast_path_available",
    "shard_pieces",
    "whole_shards",
    "write_region",
    "zarr_json",
]

_FAST_PATH_OK = True  # flipped off (with a warning) the first time the zarr internals differ


class FastPathWarning(RuntimeWarning):
    """The installed zarr-python cannot take the whole-shard fast path (internals moved).

    Writes still succeed through ``array[region] = block``, which reads every shard back.
    """


def fast_path_available() -> bool:
    """False once a whole-shard write had to fall back to zarr's read-modify-write."""
    return _FAST_PATH_OK


def whole_shards(region: Region, shard: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    """True when ``region`` is made of whole shards (edge shards clipped to ``shape``)."""
    return all(
        a % s == 0 and (b % s == 0 or b == n)
        for a, b, s, n in zip(region.start, region.stop, shard, shape, strict=True)
    )


def _key(arr: Any, coords: tuple[int, ...]) -> str:
    key = str(arr.metadata.encode_chunk_key(coords))
    path = str(arr.store_path.path)
    return f"{path}/{key}" if path else key


async def _encode_and_store(dst: Any, arr: Any, region: Region, block: np.ndarray) -> float:
    """Encode with zarr-python's pipeline and store; returns the encode seconds."""
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
    for coords, piece in shard_pieces(region, block, shard, shape):
        if piece.shape != shard:  # edge shard: pad to the full shard with the fill value
            full = np.full(shard, dst.fill_value, dtype=piece.dtype)
            full[tuple(slice(0, n) for n in piece.shape)] = piece
            piece = full
        jobs.append((coords, prototype.nd_buffer.from_numpy_array(np.ascontiguousarray(piece))))
    t0 = time.perf_counter()
    encoded = await arr.codec_pipeline.encode([(buf, spec) for _, buf in jobs])
    encode_s = time.perf_counter() - t0
    store = arr.store_path.store
    writes = []
    for (coords, _), data in zip(jobs, encoded, strict=True):
        key = _key(arr, coords)
        writes.append(store.delete(key) if data is None else store.set(key, data))
    await asyncio.gather(*writes)
    return encode_s


#: Encoders by (id of the array's metadata object, path). zarr-python's metadata is immutable,
#: so its identity stands for its content; the entry holds the object, so the id is not reused
#: while cached. Serialising zarr.json per region would repeat work on the write path.
_ENCODERS: dict[tuple[int, str], tuple[Any, Any]] = {}
_ENCODERS_LOCK = threading.Lock()


def zarr_json(arr: Any) -> bytes:
    """The ``zarr.json`` document zarr-python wrote for ``arr`` (``Array`` or ``AsyncArray``)."""
    from zarr.core.buffer import default_buffer_prototype

    return bytes(arr.metadata.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes())


def _kernel_encoder(arr: Any) -> Any:
    """The kernel's encoder for ``arr``'s codec chain, or ``None`` when it does not know it.

    Built from the array's own ``zarr.json`` document, so it encodes exactly what zarr-python
    would (the tests decode both with zarr-python and compare).
    """
    meta = arr.metadata
    path = str(arr.store_path.path)
    key = (id(meta), path)
    with _ENCODERS_LOCK:
        cached = _ENCODERS.get(key)
    if cached is not None:
        return cached[1]
    try:
        encoder = kernel.ShardEncoder(path, zarr_json(arr))
    except (ValueError, TypeError):
        encoder = None  # e.g. a codec only zarr-python has: its own pipeline encodes
    with _ENCODERS_LOCK:
        if len(_ENCODERS) > 1024:
            _ENCODERS.clear()
        _ENCODERS[key] = (meta, encoder)
    return encoder


def shard_pieces(
    region: Region, block: np.ndarray, shard: tuple[int, ...], shape: tuple[int, ...]
) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """The whole shards a shard-aligned region covers: (shard index, in-bounds block)."""
    ranges = [
        range(a // s, -(-b // s)) for a, b, s in zip(region.start, region.stop, shard, strict=True)
    ]
    out = []
    for coords in itertools.product(*ranges):
        piece = block[
            tuple(
                slice(c * s - a, min((c + 1) * s, n) - a)
                for c, s, n, a in zip(coords, shard, shape, region.start, strict=True)
            )
        ]
        out.append((coords, piece))
    return out


def _kernel_encode_and_store(arr: Any, encoder: Any, region: Region, block: np.ndarray) -> None:
    """Encode in this (worker) thread with the GIL released; store through zarr-python."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    shard = tuple(int(s) for s in encoder.shard_shape)
    shape = tuple(int(n) for n in arr.shape)
    prototype = default_buffer_prototype()
    items = []
    t0 = time.perf_counter()
    for coords, piece in shard_pieces(region, block, shard, shape):
        raw = np.ascontiguousarray(piece).reshape(-1).view(np.uint8)
        data = encoder.encode(list(coords), raw)
        items.append((_key(arr, coords), data))
    add_encode(time.perf_counter() - t0)
    store = arr.store_path.store

    async def put_all() -> None:
        await asyncio.gather(
            *(
                store.delete(key)
                if data is None
                else store.set(key, prototype.buffer.from_bytes(data))
                for key, data in items
            )
        )

    sync(put_all())


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
            and whole_shards(region, tuple(shards), shape)
        ):
            try:
                from zarr.core.sync import sync

                block = np.asarray(block, dtype=np.dtype(dst.dtype))
                encoder = _kernel_encoder(arr)
                if encoder is not None:
                    _kernel_encode_and_store(arr, encoder, region, block)
                else:
                    add_encode(sync(_encode_and_store(dst, arr, region, block)))
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
