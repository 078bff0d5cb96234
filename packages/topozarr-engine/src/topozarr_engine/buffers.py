"""Recycled shard buffers for the single-pass pyramid writer.

Every shard of an inner level is assembled in a buffer before it is written. A fresh buffer
of a few MiB is fresh memory: the kernel has to fault in and zero every page (huge pages for
numpy's large arrays) before the fill value even goes in, and on the S3 benchmark that page
zeroing was ~5% of the writer's CPU. Shards of one level (and often of several levels) share
a shape, so a written shard's buffer can hold the next one.

A buffer goes back to the pool only after the write that used it returned: the engine's
writers (zarr-python, the kernel's encoders) are done with a block when they return.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

__all__ = ["BufferPool"]


class BufferPool:
    """Buffers of one dtype, handed out filled with a value and taken back after use.

    At most ``max_free`` idle buffers are kept (the rest are freed), so the pool holds no
    more memory than the writer's own peak plus ``max_free`` shards.
    """

    def __init__(self, dtype: np.dtype[Any], max_free: int) -> None:
        if max_free < 0:
            raise ValueError(f"max_free must be >= 0, got {max_free}")
        self.dtype = np.dtype(dtype)
        self.max_free = max_free
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], fill: Any) -> np.ndarray:
        """A C-contiguous buffer of ``shape`` with every element set to ``fill``."""
        shape = tuple(int(n) for n in shape)
        with self._lock:
            for i, buf in enumerate(self._free):
                if buf.shape == shape:
                    del self._free[i]
                    break
            else:
                buf = None
        if buf is None:
            return np.full(shape, fill, dtype=self.dtype)
        buf.fill(fill)
        return buf

    def give(self, buf: np.ndarray) -> None:
        """Return ``buf`` (from :meth:`take`); the caller must not use it afterwards."""
        if buf.dtype != self.dtype or not buf.flags.c_contiguous or not buf.flags.writeable:
            return
        with self._lock:
            if len(self._free) < self.max_free:
                self._free.append(buf)

    def __len__(self) -> int:
        """Idle buffers held."""
        with self._lock:
            return len(self._free)
