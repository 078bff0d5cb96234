"""tune_worker_allocator: under dask's MALLOC_TRIM_THRESHOLD_, big buffers stop faulting in."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

# Allocates and frees a 4 MiB buffer (a tile-sized numpy array) 200 times, then allocates one
# more and keeps it; prints the minor page faults of the 200 and whether the kept buffer is a
# fresh mmap (glibc's mallinfo2 count of mmapped blocks; the faults alone are not a reliable
# witness: numpy asks for transparent huge pages, which fault a buffer in at 2 MiB a time when
# the kernel has them). With "tune" first, after tuning the allocator.
PROBE = """
import ctypes, resource, sys
import numpy as np
from topozarr_plan.worker_malloc import tune_worker_allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split())]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tune":
    assert tune_worker_allocator() and tune_worker_allocator()  # once, then cached
if sys.argv[1] == "opt-out":
    assert not tune_worker_allocator()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    np.ones(2**20, dtype="float32")
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
mapped = libc.mallinfo2().hblks
kept = np.ones(2**20, dtype="float32")
print(faults, libc.mallinfo2().hblks - mapped)
"""


def _probe(mode: str, **extra: str) -> tuple[int, bool]:
    """(minor page faults of 200 x 4 MiB, whether a 4 MiB buffer is its own mmap)."""
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536", **extra}  # as dask's nanny sets
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True
    )
    faults, mapped = out.stdout.split()
    return int(faults), int(mapped) == 1


linux = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "mallinfo2"),
    reason="glibc's mallopt and mallinfo2 (glibc >= 2.33)",
)


@linux
def test_tuning_takes_tile_buffers_from_the_heap() -> None:
    (plain, plain_mapped), (tuned, tuned_mapped) = _probe("plain"), _probe("tune")
    print(f"minor page faults for 200 x 4 MiB: {plain} as dask starts workers, {tuned} tuned")
    assert plain_mapped  # dask's setting: every tile-sized buffer is a fresh mmap
    assert not tuned_mapped  # tuned: it comes from the heap, reused
    assert tuned < 2 * 1024  # not faulted in again each time (1024 pages of 4 KiB each)


@linux
def test_opting_out_leaves_the_allocator_as_dask_set_it() -> None:
    _, mapped = _probe("opt-out", TOPOZARR_WORKER_MALLOC="0")
    assert mapped
