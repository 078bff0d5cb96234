"""Engine test helpers (uniquely named: tests run with --import-mode=importlib)."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import zarr
from zarr.storage import MemoryStore


class CountingStore(MemoryStore):
    """A MemoryStore counting reads per key.

    ``reads`` counts gets that returned stored bytes; ``gets`` counts every get (zarr-python
    3.1 probes a shard key before writing it, even when the write covers the whole shard).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()
        self.gets: Counter[str] = Counter()  # every get, including keys that do not exist
        self._count_lock = threading.Lock()

    async def get(self, key, prototype, byte_range=None):
        out = await super().get(key, prototype, byte_range)
        with self._count_lock:
            self.gets[key] += 1
            if out is not None:  # a read that returned stored bytes
                self.reads[key] += 1
        return out

    async def get_partial_values(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        with self._count_lock:
            for key, _ in key_ranges:
                self.gets[key] += 1
                self.reads[key] += 1
        return await super().get_partial_values(prototype, key_ranges)

    async def set(self, key, value):
        with self._count_lock:
            self.writes[key] += 1
        return await super().set(key, value)

    def reset(self):
        self.reads.clear()
        self.writes.clear()
        self.gets.clear()


def make_array(store, path, shape, dtype, *, chunks, shards=None, fill_value=None):
    """Create a zarr v3 array (NaN fill for floats unless given)."""
    dtype = np.dtype(dtype)
    if fill_value is None:
        fill_value = np.nan if dtype.kind == "f" else 0
    return zarr.create_array(
        store,
        name=path,
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        shards=shards,
        fill_value=fill_value,
        overwrite=True,
    )


def dem(shape, dtype=np.float32, *, nan_frac=0.1, seed=0, fill=None):
    """Synthetic terrain-like values with holes (NaN for floats, ``fill`` for ints)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(100, 30, size=shape).cumsum(axis=-1) / 10
    a = a.astype(dtype) if np.dtype(dtype).kind == "f" else np.clip(a, -3000, 3000).astype(dtype)
    holes = rng.random(shape) < nan_frac
    if np.dtype(dtype).kind == "f":
        a[holes] = np.nan
    elif fill is not None:
        a[holes] = fill
    return a


def write_levels(values, dsts, *, executor=None, after_read=None, **options):
    """``write_pyramid_arrays`` with its spec and hooks given as keywords, as the tests read.

    Keywords naming a :class:`WriteHooks` field go to the hooks (``after_read`` is its
    ``on_read``), the rest to the :class:`PyramidSpec`.
    """
    import dataclasses

    from topozarr_engine import PyramidSpec, WriteHooks, write_pyramid_arrays

    hook_names = {f.name for f in dataclasses.fields(WriteHooks)}
    hooks = WriteHooks(on_read=after_read, **{k: v for k, v in options.items() if k in hook_names})
    spec = PyramidSpec(**{k: v for k, v in options.items() if k not in hook_names})
    return write_pyramid_arrays(values, dsts, spec, hooks, executor)


class Dies(Exception):
    """The failure a test injects into a write (a killed process, as far as the write sees)."""


def dies_after_reads(n: int):  # type: ignore[no-untyped-def]
    """An ``after_read`` hook that raises :class:`Dies` on read ``n + 1``, and the list of the
    regions read so far (the first ``n`` tiles are written, then the write fails)."""
    reads: list = []

    def after_read(region, block):  # type: ignore[no-untyped-def]
        reads.append(region)
        if len(reads) > n:
            raise Dies

    return after_read, reads
