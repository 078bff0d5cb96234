"""tune_worker_allocator: under dask's MALLOC_TRIM_THRESHOLD_, big buffers stop faulting in."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Allocates and frees a 4 MiB buffer (a tile-sized numpy array) 200 times, writing every page,
# and prints the minor page faults that took; with "tune" first, after tuning the allocator.
PROBE = """
import resource, sys
import numpy as np
from topozarr_plan.worker_malloc import tune_worker_allocator
if sys.argv[1] == "tune":
    assert tune_worker_allocator() and tune_worker_allocator()  # once, then cached
if sys.argv[1] == "opt-out":
    assert not tune_worker_allocator()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    np.ones(2**20, dtype="float32")
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, **extra: str) -> int:
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536", **extra}  # as dask's nanny sets
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tuning_stops_page_faults_of_reallocated_buffers() -> None:
    plain, tuned = _faults("plain"), _faults("tune")
    print(f"minor page faults for 200 x 4 MiB: {plain} as dask starts workers, {tuned} tuned")
    assert plain > 200 * 256  # each buffer faults its pages in again (1024 of 4 KiB)
    assert tuned < plain // 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_opting_out_leaves_the_allocator_as_dask_set_it() -> None:
    plain, kept = _faults("plain"), _faults("opt-out", TOPOZARR_WORKER_MALLOC="0")
    assert kept > plain // 2
