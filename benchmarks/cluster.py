"""``Pyramid.write(client=...)`` on a LocalCluster vs ``as_datatree().to_zarr`` vs the threads.

    uv run --no-sync python benchmarks/cluster.py                  # 1G DEM, 3 rounds
    uv run --no-sync python benchmarks/cluster.py --rounds 5 --memory 1G,4G

Each contender runs in a child process of its own, every round: the cluster write and the lazy
``as_datatree().to_zarr()`` (its source opened dask-backed, the writers' without dask, see
``_pyramid``) each on a fresh ``LocalCluster(n_workers=2, threads_per_worker=1)`` whose workers
have imported the libraries before the clock starts, the threaded writer with
``max_workers=2``: the same two cores. Nothing carries over between contenders (a scheduler's
state in a shared client process, our block tasks' allocator tuning in shared workers, see
``topozarr_plan.worker_malloc``). Rounds interleave them so that the machine's drift falls on
all, and each round gives its own ratios.

``--memory`` then writes each listed DEM size on a fresh cluster of its own and reports the
workers' peak RSS (VmHWM, read in each worker process): a block task's memory is bounded by
the tile budget, so it should not grow with the source. Timings on a shared machine are noisy:
read the per-round ratios.

Each round also times the codec-bound limit of ``peers.py`` (in a child process: decode the
source once and encode every level's bytes with the same codecs, on both cores, storing
nothing). No writer with these codecs can beat it, so ``as_datatree / limit`` is the largest
speed-up over ``as_datatree().to_zarr`` that any writer could show on this machine.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_data import DATA, LEVELS, describe, make_source, peak_rss  # noqa: E402


def _pyramid(path: Path, *, dask: bool = False, corner: int | None = None) -> Any:
    """The plan over the DEM opened lazily: without dask (``chunks=None``, what our writers
    read best: each tile straight from the Zarr) or dask-backed (what ``as_datatree`` needs to
    stay lazy). Either way the values and the output are the same. ``corner``: only the first
    ``corner`` x ``corner`` cells (a warm-up)."""
    import xarray as xr
    import xproj  # noqa: F401

    from topozarr import create_pyramid

    chunks: Any = {} if dask else None
    ds = xr.open_zarr(path, chunks=chunks, consolidated=False)
    if corner is not None:
        ds = ds.isel(lat=slice(0, corner), lon=slice(0, corner))
    ds = ds.proj.assign_crs(spatial_ref="EPSG:4326")
    return create_pyramid(ds, levels=LEVELS, x_dim="lon", y_dim="lat")


def _cluster() -> tuple[Any, Any]:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return cluster, Client(cluster)


def _timed(run: Callable[[], Any], out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def _print_plan(pyramid: Any, threads: int) -> None:
    from topozarr_plan.cluster import _describe, split_levels

    var = _describe(pyramid, "elevation")
    first, deep, aligned = split_levels([var], len(pyramid.factors), threads)
    shards = sum(
        math.prod(-(-n // c) for n, c in zip(coarse, var.shards[lv], strict=True))
        for lv in deep
        for coarse in [[-(-n // s) for n, s in zip(var.shape, var.strides[lv], strict=True)]]
    )
    print(
        f"stage 1: levels {first} in {len(var.blocks(first, aligned=aligned))} blocks; "
        f"deep levels {deep} from the blocks' partials ({shards} shards)"
    )


def _codec_bound(size: str) -> float:
    """Seconds of ``peers.py``'s codec-bound child on the DEM of ``size`` (our default layout)."""
    out = DATA / "out-codec-bound.zarr"
    cmd = [sys.executable, str(HERE / "peers.py"), "--child", "codec-bound", "--dataset", "dem"]
    cmd += ["--size", size, "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])


def _warm() -> None:
    """Import what a write's tasks use, in a worker, before the clock starts."""
    import dask.array  # noqa: F401
    import numpy  # noqa: F401
    import xarray  # noqa: F401
    import zarr  # noqa: F401

    import topozarr  # noqa: F401


def _write(name: str, pyramid: Any, out: Path, client: Any) -> None:
    if name == "threads":
        pyramid.write(out, max_workers=2)
    elif name == "cluster":
        pyramid.write(out, client=client)
    else:
        pyramid.as_datatree().to_zarr(
            out, zarr_format=3, consolidated=False, encoding=pyramid.encoding
        )


def _child(name: str, size: str, out: Path) -> None:
    """Time one contender in this (fresh) process; print its seconds as JSON.

    Each contender first writes a 4096 x 4096 corner the same way, untimed: imports, codec
    registries and thread pools are then loaded in every process that works, as on a
    long-lived cluster, for every contender alike.
    """
    src = make_source("dem", size)
    dask = name == "datatree"
    cluster = client = None
    if name != "threads":
        cluster, client = _cluster()
        client.run(_warm)
    warm = out.with_name(f"{out.name}-warm")
    _write(name, _pyramid(src.path, dask=dask, corner=4096), warm, client)
    shutil.rmtree(warm, ignore_errors=True)
    pyramid = _pyramid(src.path, dask=dask)
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    _write(name, pyramid, out, client)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds}))
    shutil.rmtree(out, ignore_errors=True)
    if client is not None and cluster is not None:
        client.close()
        cluster.close()


def _run_child(name: str, size: str) -> float:
    out = DATA / f"out-cluster-{name}.zarr"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--size", size]
    proc = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, check=True)
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])


def speed(size: str, rounds: int) -> None:
    src = make_source("dem", size)
    print(f"DEM {size}: shape {src.shape}, float32, {describe(src)}; {LEVELS} levels")
    _print_plan(_pyramid(src.path), threads=2)
    rows = []
    for r in range(rounds):
        times = {name: _run_child(name, size) for name in ("cluster", "datatree", "threads")}
        times["limit"] = _codec_bound(size)
        rows.append(times)
        print(
            f"round {r + 1}: cluster {times['cluster']:.1f} s, as_datatree().to_zarr "
            f"{times['datatree']:.1f} s, threads {times['threads']:.1f} s, codec-bound "
            f"limit {times['limit']:.1f} s; "
            f"datatree/cluster {times['datatree'] / times['cluster']:.2f}x, "
            f"cluster/threads {times['cluster'] / times['threads']:.2f}x, "
            f"datatree/limit {times['datatree'] / times['limit']:.2f}x"
        )
    vs_tree = [t["datatree"] / t["cluster"] for t in rows]
    vs_threads = [t["cluster"] / t["threads"] for t in rows]
    vs_limit = [t["datatree"] / t["limit"] for t in rows]
    print(
        f"median: as_datatree().to_zarr is {statistics.median(vs_tree):.2f}x the cluster write "
        f"(target >= 3x); the cluster write is {statistics.median(vs_threads):.2f}x the "
        "threaded writer on 2 threads (target <= 1.3x); as_datatree().to_zarr is "
        f"{statistics.median(vs_limit):.2f}x the codec-bound limit (the most any writer with "
        "these codecs could gain over it)"
    )


def memory(sizes: list[str]) -> None:
    peaks = {}
    for size in sizes:
        src = make_source("dem", size)
        pyramid = _pyramid(src.path)
        out = DATA / f"out-cluster-{size}.zarr"
        cluster, client = _cluster()  # fresh workers: VmHWM is their peak for this write
        try:
            seconds = _timed(lambda: pyramid.write(out, client=client), out)  # noqa: B023
            peaks[size] = max(client.run(peak_rss).values())
        finally:
            client.close()
            cluster.close()
        print(
            f"DEM {size} {src.shape}: cluster write {seconds:.1f} s, peak worker RSS "
            f"{peaks[size] / 2**20:.0f} MiB"
        )
    if len(peaks) > 1:
        lo, hi = min(peaks.values()), max(peaks.values())
        print(f"peak worker RSS: largest / smallest = {hi / lo:.2f} (target < 1.20)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1G", help="DEM size of the speed rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", default="1G,4G", help="DEM sizes for peak RSS ('' skips)")
    parser.add_argument("--no-speed", action="store_true", help="only the memory runs")
    parser.add_argument(
        "--child", choices=("cluster", "datatree", "threads"), help=argparse.SUPPRESS
    )
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.size, Path(args.out))
        return
    if not args.no_speed:
        speed(args.size, args.rounds)
    if args.memory:
        memory(args.memory.split(","))


if __name__ == "__main__":
    main()
