"""Single-pass pyramid writer throughput on a synthetic float32 DEM (engine only, no xarray).

Run: ``uv run --no-sync python packages/topozarr-engine/benchmarks/bench_pyramid.py [GiB]``.
Writes 6 levels (factors 1..32) to a LocalStore in a temporary directory with 512x256 chunks
and 4x4-chunk shards, once with zarr's default codec (zstd level 3... as zarr configures it)
and once with topozarr's default (blosc lz4 + shuffle). Prints seconds, GB/s of level-0 input
and the output size.
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr
from topozarr_engine import RegionTimer, coarsened_shape, write_pyramid_arrays
from topozarr_engine.codecs import default_compressors
from zarr.codecs import ZstdCodec


def dem(ny: int, nx: int) -> np.ndarray:
    y = np.linspace(0, 40, ny, dtype=np.float32)[:, None]
    x = np.linspace(0, 40, nx, dtype=np.float32)[None, :]
    z = 1000 + 300 * np.sin(y) * np.cos(x * 0.7) + 50 * np.sin(3.1 * x + y)
    z = np.round(z, 2).astype(np.float32)
    z[: ny // 10, : nx // 10] = np.nan
    return z


def run(values: np.ndarray, compressors, label: str) -> None:
    factors = [1, 2, 4, 8, 16, 32]
    tmp = Path(tempfile.mkdtemp(prefix="tzbench"))
    try:
        store = zarr.storage.LocalStore(tmp / "p.zarr")
        dsts = []
        for level, f in enumerate(factors):
            shape = coarsened_shape(values.shape, (f, f))
            chunks = (min(256, shape[0]), min(512, shape[1]))
            shards = tuple(
                min(4 * c, math.ceil(n / c) * c) for c, n in zip(chunks, shape, strict=True)
            )
            dsts.append(
                zarr.create_array(
                    store,
                    name=f"{level}/z",
                    shape=shape,
                    dtype="f4",
                    chunks=chunks,
                    shards=shards,
                    fill_value=np.nan,
                    compressors=compressors,
                )
            )
        timers = [RegionTimer() for _ in factors]
        t0 = time.perf_counter()
        write_pyramid_arrays(
            values, dsts, strides=[(f, f) for f in factors], method="mean", timers=timers
        )
        wall = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (tmp / "p.zarr").rglob("*") if p.is_file())
        t = timers[0].as_dict()
        print(
            f"{label:28s} {wall:6.2f} s  {values.nbytes / wall / 1e9:5.2f} GB/s  "
            f"out {size / 2**20:7.1f} MiB  (level-0 write_s {t['write_s']:.2f}, "
            f"reduce_s {timers[1].reduce_s:.2f})"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    gib = float(sys.argv[1]) if len(sys.argv) > 1 else 0.25
    n = int(math.sqrt(gib * 2**30 / 4))
    n -= n % 1024
    values = dem(n, n)
    print(f"source {n}x{n} float32 = {values.nbytes / 2**30:.2f} GiB")
    run(values, (ZstdCodec(level=3),), "zstd level 3 (zarr default)")
    run(values, default_compressors(), "blosc lz4 (topozarr default)")


if __name__ == "__main__":
    main()
