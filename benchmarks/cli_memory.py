"""Peak memory of `topozarr build` on a large NetCDF source (the CLI opens it lazily).

    uv run --no-sync python benchmarks/cli_memory.py            # 4 GiB float32 source
    uv run --no-sync python benchmarks/cli_memory.py --gib 1

Writes a chunked NetCDF-4 file under benchmarks/data/ once (an analytic pattern with a NaN
band: peak memory does not depend on the terrain, and this takes seconds, not minutes), runs
`topozarr build` on it as a user would, and prints the child's peak RSS as a fraction of the
source size, and whether a progress bar was shown.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"
CHUNK = 1024


def make_netcdf(gib: int) -> Path:
    import h5netcdf

    path = DATA / f"cli-{gib}G.nc"
    if path.exists():
        return path
    edge = int(np.sqrt(gib * 2**30 / 4))
    edge -= edge % CHUNK
    tmp = path.with_suffix(".tmp")
    cell = 180.0 / edge
    with h5netcdf.File(tmp, "w") as f:
        f.dimensions = {"lat": edge, "lon": edge}
        lat = f.create_variable("lat", ("lat",), "f8")
        lat[:] = 90.0 - cell * (np.arange(edge) + 0.5)
        lon = f.create_variable("lon", ("lon",), "f8")
        lon[:] = -90.0 + cell * (np.arange(edge) + 0.5)
        crs = f.create_variable("crs", (), "i4")
        crs.attrs["crs_wkt"] = _wkt()
        var = f.create_variable(
            "elevation", ("lat", "lon"), "f4", chunks=(CHUNK, CHUNK), fillvalue=np.float32(np.nan)
        )
        var.attrs["grid_mapping"] = "crs"
        cols = np.arange(edge, dtype=np.float32)
        for start in range(0, edge, CHUNK):
            rows = np.arange(start, start + CHUNK, dtype=np.float32)[:, None]
            band = 1000 * np.sin(rows / 977) * np.cos(cols / 613) + 500
            band[band < 0] = np.nan  # an "ocean" of missing cells
            var[start : start + CHUNK] = band.astype(np.float32)
    tmp.rename(path)
    return path


def _wkt() -> str:
    import pyproj

    return pyproj.CRS("EPSG:4326").to_wkt()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gib", type=int, default=4)
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    src = make_netcdf(args.gib)
    out = DATA / "cli-out.zarr"
    topozarr = str(Path(sys.executable).parent / "topozarr")
    start = time.perf_counter()
    proc = subprocess.run(
        [topozarr, "build", str(src), str(out), "--levels", "6"],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    source = src.stat().st_size
    print(proc.stdout)
    print(f"source {source / 2**30:.2f} GiB, build {seconds:.1f} s")
    print(
        f"peak RSS of `topozarr build`: {peak / 2**30:.2f} GiB ({peak / source:.2f} of the source)"
    )
    print(
        f"progress bar shown: {'%|' in proc.stderr or 'it/s' in proc.stderr or 'B/s' in proc.stderr}"
    )


if __name__ == "__main__":
    main()
