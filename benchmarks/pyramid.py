"""End-to-end pyramid benchmark: topozarr vs xarray+dask vs the codec-bound limit, in one run.

    uv run --no-sync python benchmarks/pyramid.py                 # 1G DEM, 6 levels
    uv run --no-sync python benchmarks/pyramid.py --size 256M     # or 4G
    uv run --no-sync python benchmarks/pyramid.py --dataset all   # DEM, cube and land cover
    uv run --no-sync python benchmarks/pyramid.py --io rust       # the table with io="rust"
    uv run --no-sync python benchmarks/pyramid.py --target s3     # io paths to SeaweedFS
    uv run --no-sync python benchmarks/pyramid.py --target s3 --latency-ms 20   # ... 20 ms away
    uv run --no-sync python benchmarks/pyramid.py --journal-cost  # with vs without the journal

Every run ends with the two write paths side by side, io="python" and io="rust" at topozarr's
default codecs, to ``--target`` (a local directory, or an S3 bucket on a SeaweedFS server the
benchmark starts on 127.0.0.1 with the test suite's launcher). ``--target s3`` skips the
xarray+dask baseline and the codec bound, which are local-disk comparisons.

The sources (``bench_data.py``) are deterministic and written once under benchmarks/data/: a
float32 DEM (fractal terrain, ~30% NaN ocean, measured and printed), a float32 12-step cube
and a uint8 13-class land-cover map whose 2x2 windows are mostly mixed (reduced with
``nearest``). Every contender runs in its own subprocess, so each peak RSS is that
contender's alone; each row gives the whole process's wall time (start-up, imports and
planning included) and the in-process write time. Timings on a shared machine are noisy:
read the ratios, which come from one run, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_data import (  # noqa: E402  (the sibling module, found through HERE)
    DATA,
    DATASETS,
    LEVELS,
    SIZES,
    Source,
    describe,
    make_source,
    numcodec,
    output_stats,
    peak_rss,
    source,
)


def _open(src: Source, *, dask: bool) -> Any:
    import xarray as xr
    import xproj  # noqa: F401

    ds = xr.open_zarr(src.path, chunks={} if dask else None, consolidated=False)
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


def _zarr_default_compressors() -> Any:
    from zarr.codecs import ZstdCodec

    return (ZstdCodec(level=3),)  # zarr-python's default for numeric v3 arrays (level 0 = 3)


def _with_compressors(encoding: dict[str, Any], compressors: Any) -> dict[str, Any]:
    return {
        path: {var: {**enc, "compressors": compressors} for var, enc in variables.items()}
        for path, variables in encoding.items()
    }


def _plan(src: Source, ds: Any) -> Any:
    from topozarr import create_pyramid

    return create_pyramid(ds, levels=LEVELS, x_dim="lon", y_dim="lat", method=src.method)


def run_topozarr(
    src: Source, out: str, codecs: str, io: str, journal: bool = True
) -> dict[str, Any]:
    # Both contenders import the writer before the clock starts: otherwise only the write with
    # the journal would pay for importing the writer's modules inside the timed window.
    import topozarr_plan.writer as writer
    from topozarr_plan.journal import NoJournal

    if not journal:
        # The write without its journal (no lease, no records): what the journal costs.
        writer.journal_for = lambda *a: NoJournal(*a)  # type: ignore[assignment]

    pyramid = _plan(src, _open(src, dask=False))
    if codecs == "zarr":
        pyramid.encoding = _with_compressors(pyramid.encoding, _zarr_default_compressors())
    start, cpu = time.perf_counter(), time.process_time()
    pyramid.write(out, io=io)
    return {"seconds": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}


def run_baseline(src: Source, out: Path, codecs: str) -> dict[str, Any]:
    """What users do today: chained dask coarsen().mean(), DataTree.to_zarr, same chunks/shards.

    ``nearest`` (the land cover) is the dask equivalent: every other row and column.
    """
    import xarray as xr

    ds = _open(src, dask=True)
    encoding = _plan(src, ds).encoding
    if codecs == "zarr":
        encoding = _with_compressors(encoding, _zarr_default_compressors())
    start = time.perf_counter()
    levels = {"0": ds}
    for k in range(1, LEVELS):
        prev = levels[str(k - 1)]
        if src.method == "nearest":
            levels[str(k)] = prev.isel(lat=slice(None, None, 2), lon=slice(None, None, 2))
        else:
            levels[str(k)] = prev.coarsen(lat=2, lon=2, boundary="trim").mean()
    # Dask chunks must line up with shards, or to_zarr refuses (unsafe partial shard writes).
    dims = ds[src.var].dims
    for k, level in levels.items():
        enc = encoding[f"/{k}"][src.var]
        levels[k] = level.chunk(dict(zip(dims, enc.get("shards") or enc["chunks"], strict=True)))
    tree = xr.DataTree.from_dict(levels)
    tree.to_zarr(str(out), zarr_format=3, consolidated=False, encoding=encoding)
    return {"seconds": time.perf_counter() - start}


def run_codec_bound(src: Source, out: Path, codecs: str) -> dict[str, Any]:
    """The floor set by I/O and codecs: one read of the source, then encode every level's bytes.

    Each level's bytes are a strided sample of level 0 (realistic content, the right size),
    encoded chunk by chunk on all cores with the same codec as the contenders.
    """
    import numcodecs
    import zarr
    from topozarr_engine.codecs import default_compressors

    arr = zarr.open_array(src.path / src.var, mode="r")
    # The codec object is made before the clock starts (zarr resolves it in a few ms).
    compressor = _zarr_default_compressors() if codecs == "zarr" else default_compressors(arr.dtype)
    codec = numcodec(compressor[0], arr.dtype)
    start = time.perf_counter()
    data = arr[:]
    numcodecs.blosc.use_threads = False  # parallel over chunks instead
    chunk = 512
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        for k in range(LEVELS):
            level = data[..., :: 2**k, :: 2**k]
            level = level.reshape(-1, *level.shape[-2:])  # a cube's steps one after another
            blocks = [
                level[t, i : i + chunk, j : j + chunk]
                for t in range(level.shape[0])
                for i in range(0, level.shape[1], chunk)
                for j in range(0, level.shape[2], chunk)
            ]
            list(pool.map(lambda b: codec.encode(np.ascontiguousarray(b)), blocks))
    del out
    return {"seconds": time.perf_counter() - start}


def _child(args: argparse.Namespace) -> None:
    src, out = source(args.dataset, args.size), args.out
    local = not out.startswith("s3://")
    if local:
        shutil.rmtree(out, ignore_errors=True)
    if args.child == "topozarr":
        result = run_topozarr(src, out, args.codecs, args.io, journal=not args.no_journal)
    elif args.child == "baseline":
        result = run_baseline(src, Path(out), args.codecs)
    else:
        result = run_codec_bound(src, Path(out), args.codecs)
    result["peak_rss"] = peak_rss()
    result["bytes"], result["objects"] = output_stats(out)
    if local:
        shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(result))


def _run(
    child: str,
    src: Source,
    codecs: str,
    io: str,
    *,
    out: str | None = None,
    env: Any = None,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One contender in its own process; adds ``wall`` (the whole process, start-up included)."""
    out = out or str(DATA / f"out-{child}-{codecs}.zarr")
    # Delete the previous run's output and flush the dirty pages first, so neither the
    # deletion of hundreds of MiB nor their write-back lands in this contender's time.
    if not out.startswith("s3://"):
        shutil.rmtree(out, ignore_errors=True)
    os.sync()
    cmd = [sys.executable, __file__, "--child", child, "--out", out, "--codecs", codecs]
    cmd += ["--dataset", src.dataset, "--size", src.size, "--io", io, *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{child} failed:\n{proc.stderr[-3000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "wall": wall}


def _s3_server() -> Any:
    """SeaweedFS on 127.0.0.1, started by the test suite's launcher (tests/s3server.py)."""
    import tempfile

    sys.path.insert(0, str(HERE.parent / "tests"))
    from s3server import start_s3_server

    # 64 MiB volumes: room for a few GiB of pyramids.
    return start_s3_server(Path(tempfile.mkdtemp(prefix="topozarr-bench-s3-")), volumes=160)


def _server_cpu_s(cluster: Any) -> float:
    """CPU seconds used so far by the SeaweedFS processes (Linux /proc; 0 elsewhere)."""
    total = 0.0
    for proc in cluster.procs:
        try:
            stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return total


def _table(runs: dict[str, dict[str, Any]], *, cpu: bool = False) -> None:
    """One row per contender: whole-process wall, in-process write, peak RSS, bytes, objects."""
    head = f"{'run':<28}{'wall s':>8}{'write s':>9}{'peak RSS GiB':>14}{'output MiB':>12}"
    print(head + f"{'objects':>9}" + (f"{'writer CPU s':>14}" if cpu else ""))
    for name, r in runs.items():
        row = f"{name:<28}{r['wall']:>8.2f}{r['seconds']:>9.2f}{r['peak_rss'] / 2**30:>14.2f}"
        row += f"{r['bytes'] / 2**20:>12.1f}{r['objects']:>9}"
        print(row + (f"{r['cpu_s']:>14.2f}" if cpu else ""))


def compare_io(src: Source, target: str, latency_ms: float = 0.0, rounds: int = 1) -> None:
    """io="python" and io="rust" side by side, topozarr's default codecs, same target.

    With ``rounds`` > 1 the pair runs that many times, the order alternating (ABBA), each
    round's ratio taken within the round; the table shows the last round.
    """
    env, server, cluster, proxy = None, None, None, None
    if target == "s3":
        server, cluster = _s3_server()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(server.env())
        if latency_ms > 0:
            from latency_proxy import LatencyProxy

            host, port = server.endpoint.removeprefix("http://").rsplit(":", 1)
            proxy = LatencyProxy(host, int(port), latency_ms / 1000)
            env["AWS_ENDPOINT_URL"] = proxy.endpoint
    runs: dict[str, dict[str, Any]] = {}
    server_cpu: dict[str, float] = {}
    speedups = []
    try:
        for i in range(rounds):
            for io in ("python", "rust")[:: -1 if i % 2 else 1]:
                # A fresh prefix per run: no write lands on an earlier pyramid.
                out = server.url(f"bench-{io}-{i}.zarr") if server is not None else None
                before = _server_cpu_s(cluster) if cluster is not None else 0.0
                runs[io] = _run("topozarr", src, "default", io, out=out, env=env)
                if cluster is not None:
                    server_cpu[io] = _server_cpu_s(cluster) - before
            speedups.append(runs["python"]["seconds"] / runs["rust"]["seconds"])
    finally:
        if proxy is not None:
            proxy.stop()
        if cluster is not None:
            cluster.stop()
    where = f"{target}, +{latency_ms:g} ms per request" if latency_ms > 0 else target
    print(f"\nwrite paths to {where} ({src.dataset} {src.size}, topozarr defaults)")
    _table(runs, cpu=True)
    if server_cpu:
        cpu = ", ".join(f"{v:.2f} s during io={k}" for k, v in server_cpu.items())
        print(f"  S3 server CPU (same {os.cpu_count()} cores): {cpu}")
    target_ratio = ">= 1.3" if target == "s3" else ">= 1"
    each = ", ".join(f"{r:.2f}" for r in speedups)
    speedup = statistics.median(speedups)
    print(
        f"  io=rust speed-up over io=python ({where}): {speedup:.2f}x (target {target_ratio})"
        + (f"; median of {rounds} rounds: {each}" if rounds > 1 else "")
    )


def journal_cost(src: Source, rounds: int = 9) -> None:
    """The write with and without its journal, interleaved; each ratio within one round.

    Wall time of the write varies by +-15% from run to run on a shared 2-core machine, so the
    CPU time of the writing process (all its threads) is printed beside it: the journal's work
    (lease, records, cleanup) is CPU work, and CPU time hides scheduling and disk noise.
    """
    print(f"\njournal cost ({rounds} rounds, {src.dataset} {src.size}, topozarr defaults, local)")
    print(f"{'io':<8}{'round':>6}{'with s':>9}{'without s':>11}{'ratio':>8}{'cpu ratio':>11}")
    for io in ("python", "rust"):
        ratios, cpu_ratios = [], []
        for i in range(rounds):
            pair = [("with", ()), ("without", ("--no-journal",))]
            if i % 2:
                pair.reverse()  # alternate which one runs first
            t = {name: _run("topozarr", src, "default", io, extra=x) for name, x in pair}
            ratios.append(t["with"]["seconds"] / t["without"]["seconds"])
            cpu_ratios.append(t["with"]["cpu_s"] / t["without"]["cpu_s"])
            print(
                f"{io:<8}{i:>6}{t['with']['seconds']:>9.2f}{t['without']['seconds']:>11.2f}"
                f"{ratios[-1]:>8.3f}{cpu_ratios[-1]:>11.3f}"
            )
        ratios.sort()
        cpu_ratios.sort()
        print(
            f"  io={io}: with / without journal, median {ratios[len(ratios) // 2]:.3f} "
            f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}; target <= 1.05); CPU time median "
            f"{cpu_ratios[len(cpu_ratios) // 2]:.3f} (range {cpu_ratios[0]:.3f}-{cpu_ratios[-1]:.3f})"
        )


def compare_local(src: Source, io: str) -> None:
    """topozarr vs xarray+dask vs the codec bound on local disk, then both io paths."""
    runs = {
        "baseline (zarr codecs)": _run("baseline", src, "zarr", io),
        "codec-bound (zarr codecs)": _run("codec-bound", src, "zarr", io),
        "topozarr (zarr codecs)": _run("topozarr", src, "zarr", io),
        "topozarr (its defaults)": _run("topozarr", src, "default", io),
    }
    print(f"\n{_title(src)}, {LEVELS} levels ({src.method}), io={io}, {os.cpu_count()} cores")
    _table(runs)
    base, bound = runs["baseline (zarr codecs)"], runs["codec-bound (zarr codecs)"]
    same, ours = runs["topozarr (zarr codecs)"], runs["topozarr (its defaults)"]
    ratios = [
        ("speed-up vs xarray+dask, same codecs", base["seconds"] / same["seconds"], ">= 2.5"),
        ("time / codec-bound limit, same codecs", same["seconds"] / bound["seconds"], "<= 1.25"),
        ("speed-up vs xarray+dask, our defaults", base["seconds"] / ours["seconds"], ">= 4"),
        ("output size, our defaults / baseline", ours["bytes"] / base["bytes"], "<= 1"),
        ("peak RSS, topozarr / baseline", same["peak_rss"] / base["peak_rss"], "< 1"),
    ]
    print("\nratios (same run, in-process write times)")
    for label, value, target in ratios:
        print(f"  {label + ':':<42}{value:.2f} (target {target})")
    compare_io(src, "local")


def _title(src: Source) -> str:
    import zarr

    arr = zarr.open_array(src.path / src.var, mode="r")
    shape = "x".join(map(str, arr.shape))
    return f"{src.dataset} {shape} {arr.dtype} ({arr.nbytes / 2**20:.0f} MiB): {describe(src)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="1G", help="nominal source size")
    parser.add_argument(
        "--dataset", choices=[*DATASETS, "all"], default="dem", help="which source (default dem)"
    )
    parser.add_argument("--io", choices=["python", "rust"], default="python")
    parser.add_argument("--child", choices=["topozarr", "baseline", "codec-bound"])
    parser.add_argument("--out")
    parser.add_argument("--codecs", choices=["zarr", "default"], default="default")
    parser.add_argument("--target", choices=["local", "s3"], default="local")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="with --target s3: delay every S3 reply by this much (a proxy on loopback)",
    )
    parser.add_argument("--no-journal", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--rounds", type=int, help="rounds of --journal-cost (default 9) or --target s3 (default 1)"
    )
    parser.add_argument(
        "--journal-cost", action="store_true", help="only compare writes with/without the journal"
    )
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    for dataset in DATASETS if args.dataset == "all" else (args.dataset,):
        src = make_source(dataset, args.size)
        if args.journal_cost:
            journal_cost(src, args.rounds or 9)
        elif args.target == "s3":
            compare_io(src, "s3", args.latency_ms, args.rounds or 1)
        else:
            compare_local(src, args.io)


if __name__ == "__main__":
    main()
