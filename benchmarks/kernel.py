"""Kernel benchmark: NaN-aware 2x2 float32 mean against memcpy and numpy; mode against mean.

Run with ``uv run --no-sync python benchmarks/kernel.py``. Prints input GB/s and ratios; it is
not a test. Single-thread figures come from child processes started with RAYON_NUM_THREADS=1
(rayon reads it once, when its pool starts); the "generic" figure sets TOPOZARR_CORE_NO_SIMD,
which makes the kernel skip its run-time AVX2 path, i.e. what a CPU without AVX2 gets from the
same wheel.

The mode section (``--mode`` runs only it) times ``mode`` against ``mean`` on the same integer
class maps (uint8 with 8 and 256 classes, uint16 with 256 and 65536 classes; 2x2 to 16x16
windows, all threads) and prints time(mode) / time(mean); the target is <= 3x.

The tile section (``--tile`` runs only it) times the writer's ``pyramid_tile`` call (five mean
levels of one 1024x1024 float32 tile, on the calling thread) against one 2x2 level of the same
tile and numpy's nanmean per level.

The nearest section (``--nearest`` runs only it) times ``pyramid_tile``'s five nearest levels
against numpy's strided copies of the same cells (checked equal), on a uint8 and a float32 tile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

MIB = 1 << 20


def make_array(mib: int) -> np.ndarray:
    """Deterministic float32 raster of `mib` MiB with 30% NaN."""
    side = int(np.sqrt(mib * MIB / 4))
    side -= side % 2
    rng = np.random.default_rng(20240501)
    a = rng.standard_normal((side, side), dtype=np.float32)
    a[rng.random((side, side), dtype=np.float32) < 0.3] = np.nan
    return a


def best_of(fn, repeat: int) -> float:
    fn()  # warm-up: page faults, thread pool start, lazy SIMD detection
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def time_kernel(mib: int, repeat: int) -> dict:
    import topozarr_core

    a = make_array(mib)
    t = best_of(lambda: topozarr_core.block_reduce(a, (2, 2), "mean"), repeat)
    return {"seconds": t, "bytes": a.nbytes, "simd": topozarr_core.SIMD}


def child(env: dict[str, str], mib: int, repeat: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--mib", str(mib), "--repeat", str(repeat)],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def numpy_nanmean(a: np.ndarray) -> np.ndarray:
    h, w = a.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
        return np.nanmean(a.reshape(h // 2, 2, w // 2, 2), axis=(1, 3))


def class_map(mib: int, dtype: str, classes: int) -> np.ndarray:
    """Deterministic class map of `mib` MiB: 8x8 blocks of one class, 30% of cells re-drawn."""
    itemsize = np.dtype(dtype).itemsize
    side = int(np.sqrt(mib * MIB / itemsize)) // 8 * 8
    rng = np.random.default_rng(7)
    a = rng.integers(0, classes, (side // 8, side // 8)).repeat(8, 0).repeat(8, 1)
    noise = rng.random(a.shape) < 0.3
    a[noise] = rng.integers(0, classes, int(noise.sum()))
    return a.astype(dtype)


def mode_vs_mean(mib: int, repeat: int) -> None:
    import topozarr_core

    print(f"mode vs mean on the same class map ({mib} MiB, all threads), best of {repeat}")
    for dtype, classes in (("uint8", 8), ("uint8", 256), ("uint16", 256), ("uint16", 65536)):
        a = class_map(mib, dtype, classes)
        for s in (2, 4, 8, 16):
            t_mean = best_of(lambda a=a, s=s: topozarr_core.block_reduce(a, (s, s), "mean"), repeat)
            t_mode = best_of(lambda a=a, s=s: topozarr_core.block_reduce(a, (s, s), "mode"), repeat)
            print(
                f"  {dtype:<6} {classes:>5} classes {s}x{s}: mean {a.nbytes / t_mean / 1e9:6.2f} GB/s"
                f"  mode {a.nbytes / t_mode / 1e9:6.2f} GB/s  mode/mean {t_mode / t_mean:5.2f}x"
            )


def nearest_vs_numpy(mib: int, repeat: int) -> None:
    """pyramid_tile's nearest levels (each the top-left cell of its windows) against numpy's
    strided copies of the same cells, one level at a time, on one tile of each dtype."""
    import topozarr_core

    print(f"nearest, 5 levels (2x..32x) of one tile ({mib} MiB), best of {repeat}")
    levels = [(2**k, 2**k) for k in range(1, 6)]
    for dtype in ("uint8", "float32"):
        a = class_map(mib, dtype, 13)

        def strided(a: np.ndarray = a) -> list[np.ndarray]:
            return [np.ascontiguousarray(a[:: s[0], :: s[1]]) for s in levels]

        got = topozarr_core.pyramid_tile(a, levels, "nearest")
        assert all(np.array_equal(g, w) for g, w in zip(got, strided(), strict=True))
        t_np = best_of(strided, repeat)
        t_k = best_of(lambda a=a: topozarr_core.pyramid_tile(a, levels, "nearest"), repeat)
        print(
            f"  {dtype:<7} numpy strided copies {t_np * 1e3:7.2f} ms   pyramid_tile"
            f" {t_k * 1e3:7.2f} ms   numpy/kernel {t_np / t_k:5.1f}x"
        )


def tile_vs_levels(repeat: int) -> None:
    """The writer's call: ``pyramid_tile``'s five mean levels of one 1024x1024 float32 tile
    (30% NaN) on the calling thread (``parallel=False``, as each writer thread runs it), against
    the kernel's single 2x2 level of the same tile and numpy's nanmean of each level from the
    native cells (checked equal)."""
    import topozarr_core

    rng = np.random.default_rng(20240501)
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    a[rng.random(a.shape) < 0.3] = np.nan
    levels = [(2**k, 2**k) for k in range(1, 6)]

    def tile() -> list[np.ndarray]:
        return topozarr_core.pyramid_tile(a, levels, "mean", parallel=False)

    def per_level() -> list[np.ndarray]:
        out = []
        for f, _ in levels:
            w = a.reshape(a.shape[0] // f, f, a.shape[1] // f, f).astype(np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
                out.append(np.nanmean(w, axis=(1, 3)).astype(np.float32))
        return out

    for g, w in zip(tile(), per_level(), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6, equal_nan=True)
    t_tile = best_of(tile, repeat)
    t_one = best_of(lambda: topozarr_core.block_reduce(a, (2, 2), "mean"), repeat)
    t_np = best_of(per_level, max(1, repeat // 2))
    print(f"pyramid_tile, one 1024x1024 float32 tile (30% NaN), 5 mean levels, best of {repeat}")
    print(
        f"  5 levels {t_tile * 1e3:6.2f} ms   one 2x2 level {t_one * 1e3:6.2f} ms"
        f" (5 levels / 1 level {t_tile / t_one:4.2f}x)   numpy per level {t_np * 1e3:6.2f} ms"
        f" (numpy/kernel {t_np / t_tile:5.1f}x)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mib", type=int, default=256, help="input size in MiB (default 256)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per kernel case (best of)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", action="store_true", help="only the mode-vs-mean comparison")
    p.add_argument("--nearest", action="store_true", help="only nearest vs numpy")
    p.add_argument("--tile", action="store_true", help="only the writer's pyramid_tile call")
    args = p.parse_args()
    if args.child:
        print(json.dumps(time_kernel(args.mib, args.repeat)))
        return
    if args.mode:
        mode_vs_mean(args.mib, args.repeat)
        return
    if args.nearest:
        nearest_vs_numpy(args.mib, args.repeat)
        return
    if args.tile:
        tile_vs_levels(args.repeat * 4)
        return

    import topozarr_core

    a = make_array(args.mib)
    gb = a.nbytes / 1e9
    dst = np.empty_like(a)
    t_copy = best_of(lambda: np.copyto(dst, a), args.repeat)
    t_numpy = best_of(lambda: numpy_nanmean(a), max(1, args.repeat // 2))
    one = child({"RAYON_NUM_THREADS": "1"}, args.mib, args.repeat)
    generic = child({"RAYON_NUM_THREADS": "1", "TOPOZARR_CORE_NO_SIMD": "1"}, args.mib, args.repeat)
    t_all = best_of(lambda: topozarr_core.block_reduce(a, (2, 2), "mean"), args.repeat)
    levels = [(2**k, 2**k) for k in range(1, 6)]
    t_pyr = best_of(lambda: topozarr_core.pyramid_tile(a, levels, "mean"), args.repeat)

    copy_gbs = gb / t_copy
    numpy_gbs = gb / t_numpy
    print(
        f"topozarr-core {topozarr_core.__version__}: 2x2 NaN-aware mean, float32 "
        f"{a.shape[0]}x{a.shape[1]} ({a.nbytes / MIB:.0f} MiB, 30% NaN), best of {args.repeat}"
    )
    print(f"  memcpy (numpy.copyto)          {copy_gbs:7.2f} GB/s")
    print(f"  numpy reshape-nanmean          {numpy_gbs:7.2f} GB/s")
    rows = [
        (f"kernel 1 thread ({one['simd']})", gb / one["seconds"]),
        (f"kernel 1 thread ({generic['simd']})", gb / generic["seconds"]),
        (f"kernel {os.cpu_count()} threads ({topozarr_core.SIMD})", gb / t_all),
    ]
    for name, gbs in rows:
        print(
            f"  {name:<30} {gbs:7.2f} GB/s   kernel/memcpy {gbs / copy_gbs:5.0%}"
            f"   kernel/numpy {gbs / numpy_gbs:6.1f}x"
        )
    pyr_gbs = gb / t_pyr
    print(
        f"  pyramid_tile 2x..32x, {os.cpu_count()} threads {pyr_gbs:7.2f} GB/s   (5 exact levels"
        f" in one pass, {pyr_gbs / copy_gbs:.0%} of memcpy)"
    )
    mode_vs_mean(args.mib, args.repeat)
    nearest_vs_numpy(args.mib, args.repeat)
    tile_vs_levels(args.repeat * 4)


if __name__ == "__main__":
    main()
