"""Defaults derived from the machine: region budget and worker count.

psutil is deliberately not a dependency: available memory is read from ``/proc/meminfo`` (Linux,
containers included) or ``os.sysconf``, and an unknown value falls back to CPU-bound defaults.
"""

from __future__ import annotations

import os

__all__ = [
    "DEFAULT_MAX_REGION_BYTES",
    "available_memory",
    "cpu_count",
    "default_max_workers",
]

#: Memory budget of one level-0 region (tile) read from the source: 256 MiB.
DEFAULT_MAX_REGION_BYTES: int = 256 * 1024**2

# Peak memory per worker is about this many regions: the source block, the level-0 copy handed
# to the codec pipeline, the kernel's outputs and the encoded bytes.
REGIONS_PER_WORKER = 5


def cpu_count() -> int:
    """CPUs this process may run on (affinity- and cgroup-aware where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def available_memory() -> int | None:
    """Bytes of memory available to new allocations, or ``None`` when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    if pages <= 0 or page_size <= 0:
        return None
    return int(pages) * int(page_size)


def default_max_workers(region_bytes: int | None = None) -> int:
    """Worker threads for region processing: one per CPU, fewer if memory is short.

    Parameters
    ----------
    region_bytes
        Uncompressed size of one region. When given and available memory is known, the count is
        capped so ``workers * REGIONS_PER_WORKER * region_bytes`` fits in half the available
        memory (the other half is left to the OS page cache, the store and the caller).
    """
    workers = cpu_count()
    avail = available_memory()
    if region_bytes and avail:
        workers = min(workers, (avail // 2) // (REGIONS_PER_WORKER * max(1, region_bytes)))
    return max(1, int(workers))
