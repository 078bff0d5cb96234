"""Peers benchmark: carbonplan's topozarr 0.2.1 vs ours on the same sources, interleaved rounds.

    uv run --no-sync python benchmarks/peers.py --size 256M             # all three sources
    uv run --no-sync python benchmarks/peers.py --size 256M --dataset dem --rounds 5

carbonplan's ``topozarr`` has the same import name as ours, so it never enters our
environment: it is installed from PyPI (``topozarr==0.2.1`` with its prebuilt kernel wheel,
and again with its optional ``zarrs`` codec pipeline) into throwaway virtual environments outside
the repository (``--peer-venv``, default /tmp/topozarr-peer-venv, and the same with a
``-zarrs`` suffix; needs ``uv`` and a Python >= 3.12, which 0.2.1 requires) and runs there in
child processes.

Contenders, each in its own process, in an order rotated every round and reversed every
other round (:func:`round_order`):

* ``ours``: our ``create_pyramid(...).write(path)``.
* ``carbonplan``: theirs as ``pip install topozarr==0.2.1`` gives it.
* ``carbonplan+zarrs``: theirs with the ``zarrs`` extra, which it picks up by itself.

each at its defaults, and at one identical layout and codec: our default chunks and shards of
every level imposed on both, zstd (ours level 3; theirs zarr-python's default, level 0,
which zstd reads as its default level, 3). Also in every round:

* ``ours io=rust``: ours with the native writer, at defaults (it must not be slower).
* ``codec-bound``: the limit for our codecs, at both layouts: decode the source once, then
  encode every level's bytes (from each decoded source chunk, every 2**k-th row and column,
  cut into level k's chunks) with the compressors ours writes it with, on all cores. Nothing
  is stored.
* ``codec+store``: the same, and every encoded byte is written to disk, appended to one file
  per level and thread (the bytes stored, none of a store's per-object work). Not the issue's
  limit: it shows how much of the gap to ``codec-bound`` writing the output alone costs.

``--peers carbonplan`` leaves ``carbonplan+zarrs`` out (shorter runs). Sources and the xarray+dask baseline are those of
``pyramid.py`` (``bench_data.py``). Every level-5 array read back is compared with a float64
reference computed here straight from level 0 (reshape-mean skipping NaN, in row blocks;
every 32nd cell for the land cover's ``nearest``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
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

# carbonplan's topozarr as a plain install, and with its optional zarrs codec pipeline.
PEERS = {"carbonplan": "topozarr==0.2.1", "carbonplan+zarrs": "topozarr[zarrs]==0.2.1"}
PEER_EXTRAS = ("xarray", "zarr", "xproj")
TOOLS = ("ours", "carbonplan", "carbonplan+zarrs")
BOUNDS = ("codec-bound", "codec+store")
# Ours again with the native writer, at defaults only (io="rust" must never be slower), and
# the codec-bound limit at both layouts (the floor for the same codecs, same run).
EXTRA = (
    ("ours io=rust", "default"),
    *((bound, layout) for bound in BOUNDS for layout in ("default", "same")),
)
LAYOUTS = ("default", "same")
REF_BLOCK_ROWS = 1024


# ---------------------------------------------------------------- the peer's environment


def ensure_peer(venv: Path, pin: str, python: str) -> Path:
    """The peer's interpreter, creating its virtual environment with uv on first use."""
    peer = venv / "bin" / "python"
    if peer.exists():
        return peer
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    print(f"installing {pin} into {venv} (outside the repository)", file=sys.stderr)
    for cmd in (
        [uv, "venv", str(venv), "--python", python],
        [uv, "pip", "install", "--python", str(peer), pin, *PEER_EXTRAS],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            shutil.rmtree(venv, ignore_errors=True)
            raise SystemExit(
                f"{' '.join(cmd[:3])} failed: {proc.stderr.strip().splitlines()[-1]}; "
                "pass --peer-python a Python >= 3.12"
            )
    return peer


# ---------------------------------------------------------------- reference and errors


def reference(src: Source) -> Path:
    """Level 5 computed straight from level 0 in float64, saved as .npy (once per source)."""
    import zarr

    path = DATA / f"ref-{src.path.stem}-L{LEVELS - 1}.npy"
    if path.exists():
        return path
    f = 2 ** (LEVELS - 1)
    arr = zarr.open_array(src.path / src.var, mode="r")
    if src.method == "nearest":
        np.save(path, arr[..., ::f, ::f].astype(np.float64))
        return path
    parts = []
    for r in range(0, arr.shape[-2], REF_BLOCK_ROWS):
        block = arr[..., r : r + REF_BLOCK_ROWS, :].astype(np.float64)
        ny, nx = block.shape[-2] // f, block.shape[-1] // f
        windows = block[..., : ny * f, : nx * f].reshape(*block.shape[:-2], ny, f, nx, f)
        valid = ~np.isnan(windows)
        total = np.where(valid, windows, 0.0).sum(axis=(-3, -1))
        count = valid.sum(axis=(-3, -1))
        parts.append(np.where(count > 0, total / np.maximum(count, 1), np.nan))
    np.save(path, np.concatenate(parts, axis=-2))
    return path


def level_error(out: str, var: str, ref_path: str) -> dict[str, Any]:
    """Max abs difference of the written coarsest level from the reference, NaN mismatches."""
    import zarr

    got = zarr.open_array(Path(out) / str(LEVELS - 1) / var, mode="r")[:].astype(np.float64)
    ref = np.load(ref_path)
    if got.shape != ref.shape:
        return {"max_err": float("nan"), "nan_mismatch": -1}
    both = ~np.isnan(got) & ~np.isnan(ref)
    err = float(np.abs(got[both] - ref[both]).max()) if both.any() else 0.0
    return {"max_err": err, "nan_mismatch": int((np.isnan(got) != np.isnan(ref)).sum())}


# ---------------------------------------------------------------- the children


def _open(src: Source) -> Any:
    import xarray as xr
    import xproj  # noqa: F401  (registers .proj)

    ds = xr.open_zarr(src.path, chunks=None, consolidated=False)  # lazy, bounded memory
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


def _impose(encoding: dict[str, Any], var: str, layout: dict[str, Any], extra: dict) -> None:
    """Put the shared layout's chunks/shards (and ``extra``) on ``var`` at every level."""
    for level, enc in layout.items():
        encoding[level][var] = {**encoding[level][var], **enc, **extra}


def _plan_ours(src: Source, layout: dict[str, Any] | None) -> Any:
    from zarr.codecs import ZstdCodec

    from topozarr import create_pyramid

    pyramid = create_pyramid(_open(src), levels=LEVELS, x_dim="lon", y_dim="lat", method=src.method)
    if layout is not None:
        _impose(pyramid.encoding, src.var, layout, {"compressors": (ZstdCodec(level=3),)})
    return pyramid


def _write_ours(src: Source, out: str, layout: dict[str, Any] | None, io: str) -> float:
    pyramid = _plan_ours(src, layout)
    start = time.perf_counter()
    pyramid.write(out, io=io)
    return time.perf_counter() - start


def _codec_bound(src: Source, out: str, layout: dict[str, Any] | None, store: bool) -> float:
    """Decode the source once, then encode every level's bytes on all cores: the floor.

    Source chunks are read and decoded with the source's own compressors (numcodecs, the same
    C libraries), one task per chunk on a pool of one thread per core. From each decoded
    chunk, level k's share of the bytes is its every 2**k-th row and column (realistic
    content, the right size), cut into that level's chunks (or smaller, where the chunk's
    share is smaller) and encoded with the compressors ours writes level k with. With ``store``,
    each thread appends the encoded bytes to its own file per level under ``out`` (closed
    within the time).
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import numcodecs
    import zarr
    from topozarr_engine.codecs import default_compressors

    numcodecs.blosc.use_threads = False  # parallel over chunks instead, as the writers are
    pyramid = _plan_ours(src, layout)
    arr = zarr.open_array(src.path / src.var, mode="r")
    # The codec objects are made before the clock starts (zarr resolves each in a few ms).
    decoders = [numcodec(c, arr.dtype) for c in arr.compressors]
    levels = []
    for k in range(LEVELS):
        enc = pyramid.encoding[f"/{k}"][src.var]
        compressors = enc.get("compressors") or default_compressors(arr.dtype)
        levels.append(
            (2**k, tuple(enc["chunks"][-2:]), [numcodec(c, arr.dtype) for c in compressors])
        )
    start = time.perf_counter()
    grid = [range(-(-n // c)) for n, c in zip(arr.shape, arr.chunks, strict=True)]
    keys = list(itertools.product(*grid))
    local, files, lock = threading.local(), [], threading.Lock()
    if store:
        Path(out).mkdir(parents=True)

    def sink(k: int) -> Any:
        """This thread's open file of level ``k``."""
        mine = local.__dict__.setdefault("files", {})
        if k not in mine:
            mine[k] = open(Path(out) / f"{k}-{threading.get_ident()}.bin", "wb")  # noqa: SIM115
            with lock:
                files.append(mine[k])
        return mine[k]

    def one_chunk(key: tuple[int, ...]) -> None:
        shape = tuple(min(c, n - i * c) for i, c, n in zip(key, arr.chunks, arr.shape, strict=True))
        path = (src.path / src.var / "c").joinpath(*map(str, key))
        if path.exists():
            raw: Any = path.read_bytes()
            for codec in reversed(decoders):
                raw = codec.decode(raw)
            block = np.frombuffer(raw, dtype=arr.dtype).reshape(shape)
        else:  # an all-fill chunk is not stored (the contenders see the fill value)
            block = np.full(shape, arr.fill_value, dtype=arr.dtype)
        block = block.reshape(-1, *shape[-2:])
        for k, (step, (cy, cx), codecs) in enumerate(levels):
            level = block[:, ::step, ::step]
            for t in range(level.shape[0]):
                for i in range(0, level.shape[1], cy):
                    for j in range(0, level.shape[2], cx):
                        encoded = _encode(codecs, level[t, i : i + cy, j : j + cx])
                        if store:
                            sink(k).write(encoded)

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(one_chunk, keys))
    for f in files:
        f.close()
    return time.perf_counter() - start


def _encode(codecs: list[Any], block: np.ndarray) -> bytes:
    data: Any = np.ascontiguousarray(block)
    for codec in codecs:
        data = codec.encode(data)
    return bytes(data)


def _write_carbonplan(src: Source, out: str, layout: dict[str, Any] | None) -> float:
    import topozarr

    if topozarr.__version__ != "0.2.1" or "site-packages" not in topozarr.__file__:
        raise SystemExit(f"expected carbonplan's topozarr 0.2.1, got {topozarr.__file__}")
    pyramid = topozarr.create_pyramid(
        _open(src), levels=LEVELS, x_dim="lon", y_dim="lat", method=src.method
    )
    if layout is not None:
        # Its writer takes chunks/shards from pyramid.encoding and leaves compressors to
        # zarr-python's default (zstd level 0 = zstd's default level 3).
        _impose(pyramid.encoding, src.var, layout, {})
    start = time.perf_counter()
    pyramid.write(out)
    return time.perf_counter() - start


def _child(args: argparse.Namespace) -> None:
    src, out = source(args.dataset, args.size), args.out
    shutil.rmtree(out, ignore_errors=True)
    layout = json.loads(Path(args.layout).read_text()) if args.layout else None
    if args.child in BOUNDS:
        store = args.child == "codec+store"
        result: dict[str, Any] = {"seconds": _codec_bound(src, out, layout, store)}
        result["peak_rss"] = peak_rss()
        result["bytes"], result["objects"] = output_stats(out) if store else (0, 0)
        shutil.rmtree(out, ignore_errors=True)
        print(json.dumps({**result, "max_err": float("nan"), "nan_mismatch": 0}))
        return
    if args.child.startswith("ours"):
        seconds = _write_ours(src, out, layout, "rust" if "rust" in args.child else "python")
    else:
        seconds = _write_carbonplan(src, out, layout)
    result = {"seconds": seconds}
    result["peak_rss"] = peak_rss()  # before reading
    result["bytes"], result["objects"] = output_stats(out)
    result.update(level_error(out, src.var, args.ref))
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(result))


# ---------------------------------------------------------------- the parent


def shared_layout(src: Source) -> Path:
    """Our default chunks/shards of every level, as JSON: the layout imposed on both tools."""
    import xarray as xr
    import xproj  # noqa: F401

    from topozarr import create_pyramid

    ds = xr.open_zarr(src.path, chunks=None, consolidated=False)
    ds = ds.proj.assign_crs(spatial_ref="EPSG:4326")
    pyramid = create_pyramid(ds, levels=LEVELS, x_dim="lon", y_dim="lat", method=src.method)
    layout = {
        level: {key: list(enc[src.var][key]) for key in ("chunks", "shards") if key in enc[src.var]}
        for level, enc in pyramid.encoding.items()
    }
    path = DATA / f"layout-{src.path.stem}.json"
    path.write_text(json.dumps(layout))
    return path


def _run(cmd: list[str], env: dict[str, str] | None) -> dict[str, Any]:
    os.sync()  # the previous contender's write-back must not land in this one's time
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, cwd="/")
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[2:5])} failed:\n{proc.stderr[-3000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "wall": wall}


def _commands(
    src: Source, peers: dict[str, Path], layout: Path, ref: Path
) -> dict[tuple[str, str], Any]:
    """(tool, layout) -> (command, env); the peer's env drops our PYTHONPATH."""
    peer_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    runs = {}
    pairs = [(tool, name) for tool in TOOLS if tool == "ours" or tool in peers for name in LAYOUTS]
    # Ratios taken within a round compare neighbours where they can: ours next to its io=rust
    # twin and to the limits at the same layout (round_order runs neighbours in both orders).
    order = [("ours", "default"), ("ours io=rust", "default")]
    order += [(bound, "default") for bound in BOUNDS] + [("ours", "same")]
    order += [(bound, "same") for bound in BOUNDS]
    wanted = [*pairs, *EXTRA]
    keys = [key for key in order if key in wanted] + [key for key in wanted if key not in order]
    for tool, name in keys:
        ours = tool not in peers
        python, env = (sys.executable, None) if ours else (str(peers[tool]), peer_env)
        out = str(DATA / f"peer-out-{tool.replace(' ', '-')}-{name}.zarr")
        cmd = [python, str(HERE / "peers.py"), "--child", tool, "--dataset", src.dataset]
        cmd += ["--size", src.size, "--out", out, "--ref", str(ref)]
        cmd += ["--layout", str(layout)] if name == "same" else []
        runs[tool, name] = (cmd, env)
    return runs


def round_order(keys: list[tuple[str, str]], i: int) -> list[tuple[str, str]]:
    """Round ``i``'s order: ``keys`` rotated by ``2 * i`` places, reversed in odd rounds.

    Rotation alone keeps the cyclic order, so every contender would always run right after
    the same one (``ours io=rust`` after ``carbonplan (same)``, which frees ~0.8 GiB just
    before): whatever that leaves behind would bias one side of a ratio in every round.
    Reversing every other round gives each contender both neighbours in turn, and the first
    two keys (see :func:`_commands`) run side by side in both orders (ABBA): rotating by two
    places keeps them together while the cut falls at an even place.
    """
    shift = 2 * i % len(keys)
    turned = keys[shift:] + keys[:shift]
    return turned[::-1] if i % 2 else turned


def run_rounds(
    src: Source, peers: dict[str, Path], rounds: int
) -> dict[tuple[str, str], list[dict]]:
    """Every contender once per round, in :func:`round_order`."""
    commands = _commands(src, peers, shared_layout(src), reference(src))
    keys = list(commands)
    results: dict[tuple[str, str], list[dict]] = {key: [] for key in keys}
    for i in range(rounds):
        for key in round_order(keys, i):
            results[key].append(_run(*commands[key]))
            print(f"  round {i + 1}/{rounds}: {key[0]} ({key[1]}) done", file=sys.stderr)
    return results


def baseline_bytes(src: Source) -> int:
    """Output size of pyramid.py's xarray+dask baseline (zarr's default codec, our layout)."""
    out = str(DATA / "peer-out-baseline.zarr")
    cmd = [sys.executable, str(HERE / "pyramid.py"), "--child", "baseline", "--codecs", "zarr"]
    cmd += ["--dataset", src.dataset, "--size", src.size, "--out", out]
    return _run(cmd, None)["bytes"]


def _median(values: list[float]) -> float:
    return float(np.median(values))


def report(src: Source, results: dict[tuple[str, str], list[dict]], base_bytes: int) -> None:
    import zarr

    arr = zarr.open_array(src.path / src.var, mode="r")
    print(
        f"\n{src.dataset} {'x'.join(map(str, arr.shape))} {arr.dtype} "
        f"({arr.nbytes / 2**20:.0f} MiB), {describe(src)}; {LEVELS} levels ({src.method}); "
        f"{len(next(iter(results.values())))} rounds; medians"
    )
    head = f"{'tool (layout)':<28}{'wall s':>8}{'write s':>9}{'RSS GiB':>9}{'out MiB':>9}"
    print(head + f"{'objects':>9}{'L5 max err':>12}{'NaN diff':>9}")
    for (tool, layout), runs in results.items():
        med = {k: _median([r[k] for r in runs]) for k in ("wall", "seconds", "peak_rss", "bytes")}
        r0 = runs[0]
        print(
            f"{f'{tool} ({layout})':<28}{med['wall']:>8.2f}{med['seconds']:>9.2f}"
            f"{med['peak_rss'] / 2**30:>9.2f}{med['bytes'] / 2**20:>9.1f}{r0['objects']:>9}"
            f"{r0['max_err']:>12.3g}{r0['nan_mismatch']:>9}"
        )
    print(f"{'xarray+dask (zstd, our layout)':<28}{'':>8}{'':>9}{'':>9}{base_bytes / 2**20:>9.1f}")
    print("per-round ratios, peer / ours (> 1: ours faster or smaller): median (range)")
    peers = sorted({tool for tool, _ in results} - {"ours", "ours io=rust", *BOUNDS})
    for layout in LAYOUTS:
        ours = results["ours", layout]
        for tool in peers:
            peer = results[tool, layout]
            parts = [
                f"{label} {_ratio_range(peer, ours, key)}"
                for key, label in (("seconds", "write"), ("wall", "wall"), ("peak_rss", "RSS"))
            ]
            size = peer[0]["bytes"] / ours[0]["bytes"]
            print(f"  {tool} / ours ({layout}): {', '.join(parts)}, bytes {size:.2f}")
    ours, rust = results["ours", "default"], results["ours io=rust", "default"]
    print(f"  ours io=python / io=rust (default), write: {_ratio_range(ours, rust, 'seconds')}")
    for layout in LAYOUTS:
        bound = results["codec-bound", layout]
        # < 1.15 is the target: ours within 15% of decoding once and encoding every level.
        ratio = _ratio_range(results["ours", layout], bound, "seconds")
        print(f"  ours / codec-bound limit ({layout}, same codecs), write: {ratio}")
        stored = _ratio_range(results["ours", layout], results["codec+store", layout], "seconds")
        print(f"  ours / codec+store ({layout}, the limit and writing its bytes), write: {stored}")
    smallest = min([base_bytes, *(results[p, "default"][0]["bytes"] for p in peers)])
    for layout in LAYOUTS:
        size = results["ours", layout][0]["bytes"]
        print(f"  ours ({layout}) bytes / xarray+dask: {size / base_bytes:.2f}")
    print(f"  ours (default) bytes / smallest other default: {ours[0]['bytes'] / smallest:.3f}")
    rss = max(r["peak_rss"] for r in results["ours", "default"])
    print(f"  ours (default) peak RSS, largest of the rounds: {rss / 2**30:.2f} GiB")


def _ratio_range(num: list[dict], den: list[dict], key: str) -> str:
    """Median (range) of the per-round ratios ``num / den`` of ``key``."""
    ratios = sorted(n[key] / d[key] for n, d in zip(num, den, strict=True))
    return f"{_median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="256M", help="nominal source size")
    parser.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--peer-venv",
        default="/tmp/topozarr-peer-venv",
        help="the plain peer's venv (the zarrs one gets a -zarrs suffix)",
    )
    parser.add_argument("--peer-python", default="3.12", help="uv --python for the peer venv")
    parser.add_argument(
        "--peers",
        default=",".join(PEERS),
        help=f"comma-separated peers to run (default {','.join(PEERS)})",
    )
    parser.add_argument("--child", choices=[*TOOLS, *(e[0] for e in EXTRA)], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--ref", help=argparse.SUPPRESS)
    parser.add_argument("--layout", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be at least 1, got {args.rounds}")
    peers = {}
    for tool, pin in PEERS.items():
        if tool not in args.peers.split(","):
            continue
        venv = Path(args.peer_venv + ("-zarrs" if "zarrs" in tool else ""))
        peers[tool] = ensure_peer(venv, pin, args.peer_python)
        print(f"{tool}: {pin} in {venv}", flush=True)
    print(f"{os.cpu_count()} cores (shared: read the per-round ratios)", flush=True)
    for dataset in DATASETS if args.dataset == "all" else (args.dataset,):
        src = make_source(dataset, args.size)
        report(src, run_rounds(src, peers, args.rounds), baseline_bytes(src))


if __name__ == "__main__":
    main()
