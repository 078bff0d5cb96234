"""Append benchmark: one new time step vs writing the whole cube again, in interleaved rounds.

    uv run --no-sync python benchmarks/append.py             # 12 x 4096 x 8192 float32 cube
    uv run --no-sync python benchmarks/append.py --rows 1024 # smaller (12 x 1024 x 2048)

Each round writes the full 12-step pyramid (the cost an append saves) and appends step 12 to
a pyramid of the first 11 steps (made before the round, not timed), in alternating order;
each ratio is taken within its round. The cube is synthetic (smooth fields plus noise, ~10%
NaN), held in memory, so the source read costs the same for both.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import xproj  # noqa: F401


def cube(steps: int, rows: int) -> xr.Dataset:
    cols = 2 * rows
    rng = np.random.default_rng(1)
    y = np.linspace(0, 6, rows, dtype=np.float32)[:, None]
    x = np.linspace(0, 12, cols, dtype=np.float32)[None, :]
    data = np.empty((steps, rows, cols), dtype=np.float32)
    for t in range(steps):
        data[t] = 280 + 10 * np.sin(x + t / 3) * np.cos(y) + rng.normal(0, 1, (rows, cols))
    data[rng.random(data.shape) < 0.1] = np.nan
    cell = 180 / rows
    ds = xr.Dataset(
        {"temp": (("time", "lat", "lon"), data)},
        coords={
            "time": pd.date_range("2024-01-01", periods=steps, freq="D"),
            "lat": 90 - cell * (np.arange(rows) + 0.5),
            "lon": -180 + cell * (np.arange(cols) + 0.5),
        },
    )
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from topozarr import create_pyramid

    ds = cube(args.steps, args.rows)
    nan = float(np.isnan(ds.temp.values).mean())
    print(
        f"cube {dict(ds.sizes)} float32, {ds.temp.nbytes / 2**20:.0f} MiB, NaN fraction {nan:.3f}"
    )

    def pyramid(part: xr.Dataset):  # type: ignore[no-untyped-def]
        return create_pyramid(part, levels=5, x_dim="lon", y_dim="lat")

    work = Path(tempfile.mkdtemp(prefix="topozarr-append-"))
    ratios: list[float] = []
    # CPU time of the process (all threads) beside wall time: on a shared machine it is the
    # steadier measure of the work each write does.
    cpu_ratios: list[float] = []
    try:
        print(
            f"{'round':<7}{'full write s':>14}{'append 1 step s':>17}{'ratio':>8}{'cpu ratio':>11}"
        )
        for i in range(args.rounds):
            base = work / f"grown-{i}.zarr"
            pyramid(ds.isel(time=slice(0, args.steps - 1))).write(str(base))
            new = pyramid(ds.isel(time=slice(args.steps - 1, args.steps)))
            whole = pyramid(ds)

            def full(out: Path = work / f"full-{i}.zarr", whole=whole) -> tuple[float, float]:  # type: ignore[no-untyped-def]
                t0, c0 = time.perf_counter(), time.process_time()
                whole.write(str(out))
                return time.perf_counter() - t0, time.process_time() - c0

            def append(base: Path = base, new=new) -> tuple[float, float]:  # type: ignore[no-untyped-def]
                t0, c0 = time.perf_counter(), time.process_time()
                new.write(str(base), append_dim="time")
                return time.perf_counter() - t0, time.process_time() - c0

            if i % 2:
                a, f = append(), full()
            else:
                f, a = full(), append()
            ratios.append(a[0] / f[0])
            cpu_ratios.append(a[1] / f[1])
            print(f"{i:<7}{f[0]:>14.2f}{a[0]:>17.2f}{ratios[-1]:>8.3f}{cpu_ratios[-1]:>11.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios.sort()
    cpu_ratios.sort()
    print(
        f"append one step / full write: median {ratios[len(ratios) // 2]:.3f} "
        f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}; target <= 0.125); CPU time median "
        f"{cpu_ratios[len(cpu_ratios) // 2]:.3f} (range {cpu_ratios[0]:.3f}-{cpu_ratios[-1]:.3f})"
    )


if __name__ == "__main__":
    main()
