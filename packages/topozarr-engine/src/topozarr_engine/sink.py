"""Where ``copy_array`` and ``downsample_level`` put a finished region: stored through a
:class:`~topozarr_engine.storage.sinks.ShardSink`, or skipped when it holds nothing but fill,
with the time and counts on the caller's timer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from topozarr_engine.blocks import is_all_fill
from topozarr_engine.region import Region
from topozarr_engine.storage.sinks import ShardSink
from topozarr_engine.timer import RegionTimer, encode_seconds

__all__ = ["RegionSink"]


@dataclass(frozen=True)
class RegionSink:
    """Stores regions of one destination array.

    Attributes
    ----------
    sink
        Stores each region (``sink.write_region(dst, region, block)``).
    dst
        The destination array.
    fill
        The destination's fill value: an all-fill region is not written when ``skip_empty``
        (the destination must then be a fresh array).
    timer
        Gets write and encode seconds and region counts, when given.
    """

    sink: ShardSink
    dst: Any
    fill: Any
    timer: RegionTimer | None = None
    skip_empty: bool = True

    def put(self, region: Region, block: np.ndarray) -> None:
        timer = self.timer
        if self.skip_empty and is_all_fill(block, self.fill):
            if timer is not None:
                timer.count(regions=1, skipped=1, shape=region.shape)
            return
        t0, e0 = time.perf_counter(), encode_seconds()
        self.sink.write_region(self.dst, region, block)
        if timer is not None:
            timer.add("write", time.perf_counter() - t0)
            timer.add("encode", encode_seconds() - e0)
            timer.count(regions=1, writes=1, bytes_written=block.nbytes, shape=region.shape)
