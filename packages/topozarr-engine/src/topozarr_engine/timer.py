"""Thread-safe cumulative timing of region work (read / reduce / write = encode + store).

The writers that encode in the calling thread (``shards.write_region``, the native writer)
report their encode seconds on a per-thread clock (:func:`add_encode`); the engine reads it
around each write, so a write's seconds split into encode and store without every writer
taking a timer argument.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["RegionTimer", "add_encode", "breakdown", "encode_seconds"]

_STAGES = ("read", "reduce", "write", "encode")
_CLOCK = threading.local()


def add_encode(seconds: float) -> None:
    """Add ``seconds`` of encoding done in this thread (read back by :func:`encode_seconds`)."""
    _CLOCK.encode = getattr(_CLOCK, "encode", 0.0) + seconds


def encode_seconds() -> float:
    """Encode seconds this thread has reported so far."""
    return float(getattr(_CLOCK, "encode", 0.0))


def breakdown(timers: list[RegionTimer], wall_s: float, workers: int) -> dict[str, float]:
    """Where a write's thread time went: decode, reduce, encode, store and the rest.

    ``decode_s`` is reading the source (I/O and decode), ``store_s`` the part of writes that
    is not encoding (handing bytes to the store and waiting for it), and ``other_s`` the
    workers' remaining time (``workers * wall_s`` minus the stages): Python between the
    stages, waiting for locks or for work. Seconds are summed over threads.
    """
    decode = sum(t.read_s for t in timers)
    reduce = sum(t.reduce_s for t in timers)
    encode = sum(t.encode_s for t in timers)
    store = sum(t.write_s - t.encode_s for t in timers)
    other = max(0.0, workers * wall_s - decode - reduce - encode - store)
    return {
        "decode_s": decode,
        "reduce_s": reduce,
        "encode_s": encode,
        "store_s": store,
        "other_s": other,
        "wall_s": wall_s,
        "workers": float(workers),
    }


#: The counters :meth:`RegionTimer.count` increments.
_COUNTERS = ("regions", "skipped", "writes", "bytes_read", "bytes_written")


class RegionTimer:
    """Cumulative seconds and counts of region work, summed across worker threads.

    Seconds are summed over threads, so with several workers they can exceed the wall time.
    ``encode_s`` is the part of ``write_s`` spent encoding (when the writer reports it).
    Counts: ``regions`` (processed), ``skipped`` (all-fill regions not written), ``writes``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.read_s = 0.0
        self.reduce_s = 0.0
        self.write_s = 0.0
        self.encode_s = 0.0
        self.regions = 0
        self.skipped = 0
        self.writes = 0
        self.bytes_read = 0
        self.bytes_written = 0
        self.region_shapes: set[tuple[int, ...]] = set()

    def add(self, stage: str, seconds: float) -> None:
        """Add ``seconds`` to ``stage`` (``"read"``, ``"reduce"``, ``"write"``, ``"encode"``)."""
        if stage not in _STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {_STAGES}")
        with self._lock:
            setattr(self, f"{stage}_s", getattr(self, f"{stage}_s") + seconds)

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        """Context manager adding the elapsed time of its body to ``stage``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0)

    def count(self, *, shape: tuple[int, ...] | None = None, **counts: int) -> None:
        """Increment counters (thread-safe): ``regions``, ``skipped``, ``writes``,
        ``bytes_read`` and ``bytes_written`` by keyword; ``shape`` records a region shape."""
        unknown = set(counts) - set(_COUNTERS)
        if unknown:
            raise TypeError(f"unknown counters {sorted(unknown)}; expected {_COUNTERS}")
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)
            if shape is not None:
                self.region_shapes.add(tuple(shape))

    def as_dict(self) -> dict[str, Any]:
        """Snapshot of all counters as plain Python values."""
        with self._lock:
            return {
                "read_s": self.read_s,
                "reduce_s": self.reduce_s,
                "write_s": self.write_s,
                "encode_s": self.encode_s,
                "store_s": self.write_s - self.encode_s,
                "regions": self.regions,
                "skipped": self.skipped,
                "writes": self.writes,
                "bytes_read": self.bytes_read,
                "bytes_written": self.bytes_written,
                "region_shapes": sorted(self.region_shapes),
            }

    def __repr__(self) -> str:
        d = self.as_dict()
        return (
            f"RegionTimer(read_s={d['read_s']:.3f}, reduce_s={d['reduce_s']:.3f}, "
            f"write_s={d['write_s']:.3f}, regions={d['regions']}, skipped={d['skipped']})"
        )
