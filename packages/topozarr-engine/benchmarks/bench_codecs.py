"""Codec choice for topozarr's default compressors: encode speed and ratio on a synthetic DEM.

Run: ``uv run --no-sync python packages/topozarr-engine/benchmarks/bench_codecs.py``.
Encodes 256x512 float32 chunks (what the encoding heuristics pick at ~512 KiB) one at a time,
single-threaded, and prints MB/s (uncompressed bytes per second) and compression ratio.
"""

from __future__ import annotations

import time

import numcodecs
import numpy as np
from numcodecs import Blosc, Zstd


def synthetic_dem(
    ny: int = 2048, nx: int = 2048, *, beta: float = 1.6, seed: int = 0
) -> np.ndarray:
    """Fractal-ish terrain in metres: spectral synthesis (1/f^beta), stored as float32."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(ny)[:, None]
    fx = np.fft.rfftfreq(nx)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f**beta
    z = np.fft.irfft2(spectrum, s=(ny, nx))
    z = (z - z.min()) / (z.max() - z.min()) * 2500.0
    # Typical DEM precision: centimetres stored in float32, plus a sea (nodata) patch.
    z = np.round(z, 2).astype(np.float32)
    z[: ny // 8, : nx // 6] = np.nan
    return z


def bench(
    codec: numcodecs.abc.Codec, chunks: list[np.ndarray], repeat: int = 3
) -> tuple[float, float]:
    nbytes = sum(c.nbytes for c in chunks)
    best = float("inf")
    out = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = sum(len(codec.encode(c)) for c in chunks)
        best = min(best, time.perf_counter() - t0)
    return nbytes / best / 1e6, nbytes / out


def main() -> None:
    Blosc.use_threads = False  # per-core numbers
    numcodecs.blosc.set_nthreads(1)
    for beta in (1.6, 2.2):
        run(synthetic_dem(beta=beta), f"synthetic DEM, spectral slope {beta}")


def run(dem: np.ndarray, label: str) -> None:
    chunks = [
        np.ascontiguousarray(dem[y : y + 256, x : x + 512])
        for y in range(0, dem.shape[0], 256)
        for x in range(0, dem.shape[1], 512)
    ]
    codecs = {
        "zstd level 3 (zarr default)": Zstd(level=3),
        "zstd level 1": Zstd(level=1),
        "blosc lz4 + shuffle": Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE),
        "blosc zstd(1) + shuffle": Blosc(cname="zstd", clevel=1, shuffle=Blosc.SHUFFLE),
        "blosc zstd(3) + shuffle": Blosc(cname="zstd", clevel=3, shuffle=Blosc.SHUFFLE),
    }
    print(label)
    print(f"{'codec':32s} {'encode MB/s':>12s} {'ratio':>7s}")
    for name, codec in codecs.items():
        speed, ratio = bench(codec, chunks)
        print(f"{name:32s} {speed:12.0f} {ratio:7.2f}")


if __name__ == "__main__":
    main()
