"""End-to-end pyramid benchmark: topozarr vs xarray+dask vs the codec-bound limit, in one run.

    uv run --no-sync python benchmarks/pyramid.py                 # 1 GiB DEM, 6 levels
    uv run --no-sync python benchmarks/pyramid.py --size 256M     # or 4G
    uv run --no-sync python benchmarks/pyramid.py --io rust       # the table with io="rust"
    uv run --no-sync python benchmarks/pyramid.py --target s3     # io paths to SeaweedFS
    uv run --no-sync python benchmarks/pyramid.py --target s3 --latency-ms 20   # ... 20 ms away
    uv run --no-sync python benchmarks/pyramid.py --journal-cost  # with vs without the journal

Every run ends with the two write paths side by side, io="python" and io="rust" at topozarr's
default codecs, to ``--target`` (a local directory, or an S3 bucket on a SeaweedFS server the
benchmark starts on 127.0.0.1 with the test suite's launcher). ``--target s3`` skips the
xarray+dask baseline and the codec bound, which are local-disk comparisons.

The source is a deterministic float32 DEM (fractal terrain, ~30% NaN ocean, descending
latitude) written once as a chunked Zarr under benchmarks/data/. Every contender runs in its own
subprocess, so each peak RSS is that contender's alone. Timings on a shared machine are noisy:
read the ratios, which come from one run, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
DATA = HERE / "data"
SIZES = {"256M": 8192, "1G": 16384, "4G": 32768}  # float32 edge for a square source
LEVELS = 6
SOURCE_CHUNK = 1024
BAND_ROWS = 1024


def _source_path(size: str) -> Path:
    return DATA / f"dem-{size}.zarr"


def make_source(size: str) -> Path:
    """Write the deterministic DEM as a chunked Zarr v3 store, band by band (bounded memory)."""
    import xarray as xr
    import zarr

    from topozarr.demo import FractalTerrain

    path = _source_path(size)
    if (path / "zarr.json").exists():
        return path
    edge = SIZES[size]
    rows, cols = edge, edge
    cell = 180.0 / rows
    lat = 90.0 - cell * (np.arange(rows) + 0.5)
    lon = -90.0 + cell * (np.arange(cols) + 0.5)
    tmp = path.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    template = xr.Dataset(
        {"elevation": (("lat", "lon"), _lazy_zeros((rows, cols)))},
        coords={"lat": lat, "lon": lon},
    )
    template.to_zarr(
        tmp,
        compute=False,
        zarr_format=3,
        consolidated=False,
        encoding={"elevation": {"chunks": (SOURCE_CHUNK, SOURCE_CHUNK), "fill_value": np.nan}},
    )
    arr = zarr.open_array(tmp / "elevation", mode="r+")
    terrain = FractalTerrain(rows, cols, seed=7, octaves=12)
    for start in range(0, rows, BAND_ROWS):
        arr[start : start + BAND_ROWS] = terrain.band(start, min(rows, start + BAND_ROWS))
        print(f"  source rows {start + BAND_ROWS}/{rows}", end="\r", file=sys.stderr)
    tmp.rename(path)
    return path


def _lazy_zeros(shape: tuple[int, int]) -> Any:
    import dask.array as da

    return da.zeros(shape, dtype=np.float32, chunks=(SOURCE_CHUNK, SOURCE_CHUNK))


def _open(src: Path, *, dask: bool) -> Any:
    import xarray as xr
    import xproj  # noqa: F401

    ds = xr.open_zarr(src, chunks={} if dask else None, consolidated=False)
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


def _zarr_default_compressors() -> Any:
    from zarr.codecs import ZstdCodec

    return (ZstdCodec(level=3),)  # zarr-python's default for numeric v3 arrays


def _with_compressors(encoding: dict[str, Any], compressors: Any) -> dict[str, Any]:
    return {
        path: {var: {**enc, "compressors": compressors} for var, enc in variables.items()}
        for path, variables in encoding.items()
    }


def run_topozarr(src: Path, out: str, codecs: str, io: str, journal: bool = True) -> dict[str, Any]:
    from topozarr import create_pyramid

    if not journal:
        # The write without its journal (no lease, no records): what the journal costs.
        import topozarr_plan.writer as writer
        from topozarr_plan.journal import NoJournal

        writer.journal_for = lambda *a: NoJournal(*a)  # type: ignore[assignment]

    ds = _open(src, dask=False)
    pyramid = create_pyramid(ds, levels=LEVELS, x_dim="lon", y_dim="lat")
    if codecs == "zarr":
        pyramid.encoding = _with_compressors(pyramid.encoding, _zarr_default_compressors())
    start, cpu = time.perf_counter(), time.process_time()
    pyramid.write(out, io=io)
    return {"seconds": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}


def _output_bytes(out: str) -> int:
    if out.startswith("s3://"):
        import obstore
        from topozarr_plan.stores import open_s3_store

        store = open_s3_store(out)
        return sum(m["size"] for batch in obstore.list(store) for m in batch)
    path = Path(out)
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def run_baseline(src: Path, out: Path, codecs: str) -> dict[str, Any]:
    """What users do today: chained dask coarsen().mean(), DataTree.to_zarr, same chunks/shards."""
    import xarray as xr

    from topozarr import create_pyramid

    ds = _open(src, dask=True)
    encoding = create_pyramid(ds, levels=LEVELS, x_dim="lon", y_dim="lat").encoding
    if codecs == "zarr":
        encoding = _with_compressors(encoding, _zarr_default_compressors())
    start = time.perf_counter()
    levels = {"0": ds}
    for k in range(1, LEVELS):
        levels[str(k)] = levels[str(k - 1)].coarsen(lat=2, lon=2, boundary="trim").mean()
    # Dask chunks must line up with shards, or to_zarr refuses (unsafe partial shard writes).
    for k, level in levels.items():
        shards = (
            encoding[f"/{k}"]["elevation"].get("shards") or encoding[f"/{k}"]["elevation"]["chunks"]
        )
        levels[k] = level.chunk(dict(zip(("lat", "lon"), shards, strict=True)))
    tree = xr.DataTree.from_dict(levels)
    tree.to_zarr(str(out), zarr_format=3, consolidated=False, encoding=encoding)
    return {"seconds": time.perf_counter() - start}


def run_codec_bound(src: Path, out: Path, codecs: str) -> dict[str, Any]:
    """The floor set by I/O and codecs: one read of the source, then encode every level's bytes.

    Each level's bytes are a strided sample of level 0 (realistic content, the right size),
    encoded chunk by chunk on all cores with the same codec as the contenders.
    """
    import numcodecs
    import zarr

    start = time.perf_counter()
    data = zarr.open_array(src / "elevation", mode="r")[:]
    codec = numcodecs.Zstd(level=3) if codecs == "zarr" else numcodecs.Zstd(level=1)
    chunk = 512
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        for k in range(LEVELS):
            level = np.ascontiguousarray(data[:: 2**k, :: 2**k])
            blocks = [
                level[i : i + chunk, j : j + chunk]
                for i in range(0, level.shape[0], chunk)
                for j in range(0, level.shape[1], chunk)
            ]
            list(pool.map(lambda b: codec.encode(np.ascontiguousarray(b)), blocks))
    del out
    return {"seconds": time.perf_counter() - start}


def _child(args: argparse.Namespace) -> None:
    src, out = Path(args.src), args.out
    local = not out.startswith("s3://")
    if local:
        shutil.rmtree(out, ignore_errors=True)
    if args.child == "topozarr":
        result = run_topozarr(src, out, args.codecs, args.io, journal=not args.no_journal)
    elif args.child == "baseline":
        result = run_baseline(src, Path(out), args.codecs)
    else:
        result = run_codec_bound(src, Path(out), args.codecs)
    result["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["bytes"] = _output_bytes(out)
    if local:
        shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(result))


def _run(
    child: str,
    src: Path,
    codecs: str,
    io: str,
    *,
    out: str | None = None,
    env: Any = None,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    out = out or str(DATA / f"out-{child}-{codecs}.zarr")
    # Flush the previous contender's dirty pages first, so its write-back does not land in
    # this contender's time (each run writes and deletes hundreds of MiB).
    os.sync()
    cmd = [sys.executable, __file__, "--child", child, "--src", str(src), "--out", out]
    cmd += ["--codecs", codecs, "--io", io, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode:
        raise SystemExit(f"{child} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


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


def compare_io(src: Path, target: str, latency_ms: float = 0.0) -> None:
    """io="python" and io="rust" side by side, topozarr's default codecs, same target."""
    env, cluster, proxy, outs = None, None, None, {}
    if target == "s3":
        server, cluster = _s3_server()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(server.env())
        if latency_ms > 0:
            from latency_proxy import LatencyProxy

            host, port = server.endpoint.removeprefix("http://").rsplit(":", 1)
            proxy = LatencyProxy(host, int(port), latency_ms / 1000)
            env["AWS_ENDPOINT_URL"] = proxy.endpoint
        outs = {io: server.url(f"bench-{io}.zarr") for io in ("python", "rust")}
    runs, server_cpu = {}, {}
    try:
        for io in ("python", "rust"):
            before = _server_cpu_s(cluster) if cluster is not None else 0.0
            runs[io] = _run("topozarr", src, "default", io, out=outs.get(io), env=env)
            if cluster is not None:
                server_cpu[io] = _server_cpu_s(cluster) - before
    finally:
        if proxy is not None:
            proxy.stop()
        if cluster is not None:
            cluster.stop()
    where = f"{target}, +{latency_ms:g} ms per request" if latency_ms > 0 else target
    print(f"\nwrite paths to {where} (topozarr defaults)")
    print(f"{'io':<28}{'seconds':>9}{'peak RSS GiB':>14}{'output MiB':>12}{'writer CPU s':>14}")
    for io, r in runs.items():
        print(
            f"{io:<28}{r['seconds']:>9.2f}{r['peak_rss'] / 2**30:>14.2f}{r['bytes'] / 2**20:>12.1f}"
            f"{r['cpu_s']:>14.2f}"
        )
    if server_cpu:
        cpu = ", ".join(f"{v:.2f} s during io={k}" for k, v in server_cpu.items())
        print(f"  S3 server CPU (same {os.cpu_count()} cores): {cpu}")
    target_ratio = ">= 1.3" if target == "s3" else ">= 1"
    speedup = runs["python"]["seconds"] / runs["rust"]["seconds"]
    print(f"  io=rust speed-up over io=python ({where}): {speedup:.2f}x (target {target_ratio})")


def journal_cost(src: Path, rounds: int = 5) -> None:
    """The write with and without its journal, interleaved; each ratio within one round."""
    print(f"\njournal cost ({rounds} rounds, topozarr defaults, local disk)")
    print(f"{'io':<8}{'round':>6}{'with s':>9}{'without s':>11}{'ratio':>8}")
    for io in ("python", "rust"):
        ratios = []
        for i in range(rounds):
            pair = [("with", ()), ("without", ("--no-journal",))]
            if i % 2:
                pair.reverse()  # alternate which one runs first
            t = {name: _run("topozarr", src, "default", io, extra=x)["seconds"] for name, x in pair}
            ratios.append(t["with"] / t["without"])
            print(f"{io:<8}{i:>6}{t['with']:>9.2f}{t['without']:>11.2f}{ratios[-1]:>8.3f}")
        ratios.sort()
        print(
            f"  io={io}: with / without journal, median {ratios[len(ratios) // 2]:.3f} "
            f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}; target <= 1.05)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="1G")
    parser.add_argument("--io", choices=["python", "rust"], default="python")
    parser.add_argument("--child", choices=["topozarr", "baseline", "codec-bound"])
    parser.add_argument("--src")
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
        "--journal-cost", action="store_true", help="only compare writes with/without the journal"
    )
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    DATA.mkdir(exist_ok=True)
    src = make_source(args.size)
    if args.journal_cost:
        journal_cost(src)
        return
    if args.target == "s3":
        compare_io(src, "s3", args.latency_ms)
        return
    runs = {
        "baseline (zarr codecs)": _run("baseline", src, "zarr", args.io),
        "codec-bound (zarr codecs)": _run("codec-bound", src, "zarr", args.io),
        "topozarr (zarr codecs)": _run("topozarr", src, "zarr", args.io),
        "topozarr (its defaults)": _run("topozarr", src, "default", args.io),
    }
    print(f"\n{args.size} float32 DEM, {LEVELS} levels, io={args.io}, {os.cpu_count()} cores")
    print(f"{'run':<28}{'seconds':>9}{'peak RSS GiB':>14}{'output MiB':>12}")
    for name, r in runs.items():
        print(
            f"{name:<28}{r['seconds']:>9.2f}{r['peak_rss'] / 2**30:>14.2f}{r['bytes'] / 2**20:>12.1f}"
        )
    base, bound = runs["baseline (zarr codecs)"], runs["codec-bound (zarr codecs)"]
    same, ours = runs["topozarr (zarr codecs)"], runs["topozarr (its defaults)"]
    print("\nratios (same run)")
    print(
        f"  speed-up vs xarray+dask, same codecs:      {base['seconds'] / same['seconds']:.2f}x (target >= 2.5)"
    )
    print(
        f"  time / codec-bound limit, same codecs:     {same['seconds'] / bound['seconds']:.2f}x (target <= 1.25)"
    )
    print(
        f"  speed-up vs xarray+dask, our defaults:     {base['seconds'] / ours['seconds']:.2f}x (target >= 4)"
    )
    print(
        f"  output size, our defaults / baseline:      {ours['bytes'] / base['bytes']:.2f} (target <= 1)"
    )
    print(
        f"  peak RSS, topozarr / baseline:             {same['peak_rss'] / base['peak_rss']:.2f} (target < 1)"
    )
    compare_io(src, "local")


if __name__ == "__main__":
    main()
