"""Codec choice per dtype class: size, encode and decode speed on the three benchmark sources.

    uv run --no-sync python benchmarks/codecs.py --size 256M

For each source of ``bench_data.py`` (float32 DEM with ~30% NaN, float32 cube, uint8 land
cover), 48 chunks of topozarr's default chunk shape (about 512 KiB: 256x512 float32,
512x1024 uint8) are read from places spread over the array, and every candidate codec encodes
and decodes each of them on one thread (best of 3). MB/s are of uncompressed bytes; the ratio
is uncompressed / compressed over all sampled chunks. Every candidate is one zarrita.js (the
reader in zarr-layer) decodes: it registers ``zstd``, ``blosc`` (with lz4 and zstd inside),
``gzip`` and ``zlib``, and the native writer (zarrs: zstd, blosc, gzip) encodes all of them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_data import DATASETS, SIZES, make_source  # noqa: E402

SAMPLES = 48
CHUNK_BYTES = 512 * 1024
REPEAT = 3


def candidates(itemsize: int) -> dict[str, Any]:
    """numcodecs codecs equivalent to the zarr v3 chains compared (same C libraries)."""
    from numcodecs import Blosc, Zstd

    shuffle = Blosc.BITSHUFFLE if itemsize == 1 else Blosc.SHUFFLE
    name = "bitshuffle" if itemsize == 1 else "shuffle"
    return {
        "zstd 3 (zarr default)": Zstd(level=3),
        "zstd 1": Zstd(level=1),
        f"blosc lz4 5 + {name}": Blosc("lz4", 5, shuffle),
        "blosc lz4 5, no shuffle": Blosc("lz4", 5, Blosc.NOSHUFFLE),
        f"blosc zstd 1 + {name}": Blosc("zstd", 1, shuffle),
        f"blosc zstd 3 + {name}": Blosc("zstd", 3, shuffle),
        "blosc zstd 1, no shuffle": Blosc("zstd", 1, Blosc.NOSHUFFLE),
    }


def sample_chunks(path: Path, var: str) -> list[np.ndarray]:
    """``SAMPLES`` default-shaped chunks at evenly spread offsets (whole time steps for a cube)."""
    import zarr

    arr = zarr.open_array(path / var, mode="r")
    elements = CHUNK_BYTES // arr.dtype.itemsize
    ey = (elements.bit_length() - 1) // 2
    cy, cx = 2**ey, elements // 2**ey
    ny, nx = arr.shape[-2] // cy, arr.shape[-1] // cx
    steps = int(np.prod(arr.shape[:-2], dtype=np.int64))
    picks = np.linspace(0, steps * ny * nx - 1, SAMPLES).astype(np.int64)
    chunks = []
    for p in picks:
        t, rest = divmod(int(p), ny * nx)
        i, j = divmod(rest, nx)
        lead = np.unravel_index(t, arr.shape[:-2]) if arr.ndim > 2 else ()
        index = (*lead, slice(i * cy, (i + 1) * cy), slice(j * cx, (j + 1) * cx))
        chunks.append(np.ascontiguousarray(arr[index]))
    return chunks


def measure(codec: Any, chunks: list[np.ndarray]) -> tuple[float, float, float]:
    """(encode MB/s, decode MB/s, ratio), each time the best of ``REPEAT``."""
    nbytes = sum(c.nbytes for c in chunks)
    enc_t = dec_t = float("inf")
    encoded: list[bytes] = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        encoded = [codec.encode(c) for c in chunks]
        enc_t = min(enc_t, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for e in encoded:
            codec.decode(e)
        dec_t = min(dec_t, time.perf_counter() - t0)
    for e, c in zip(encoded, chunks, strict=True):  # the round trip is exact
        back = np.frombuffer(codec.decode(e), dtype=c.dtype).reshape(c.shape)
        assert np.array_equal(back, c, equal_nan=c.dtype.kind == "f")
    return nbytes / enc_t / 1e6, nbytes / dec_t / 1e6, nbytes / sum(len(e) for e in encoded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="256M", help="nominal source size")
    parser.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
    args = parser.parse_args()
    import numcodecs

    numcodecs.blosc.set_nthreads(1)  # per-core figures: the writers encode chunks in parallel
    numcodecs.blosc.use_threads = False
    for dataset in DATASETS if args.dataset == "all" else (args.dataset,):
        src = make_source(dataset, args.size)
        chunks = sample_chunks(src.path, src.var)
        print(
            f"\n{dataset} {args.size}: {len(chunks)} chunks of {chunks[0].shape} {chunks[0].dtype}"
        )
        print(f"{'codec':<28}{'encode MB/s':>12}{'decode MB/s':>12}{'ratio':>8}")
        for name, codec in candidates(chunks[0].dtype.itemsize).items():
            enc, dec, ratio = measure(codec, chunks)
            print(f"{name:<28}{enc:>12.0f}{dec:>12.0f}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
