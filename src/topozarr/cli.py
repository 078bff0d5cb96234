"""The `topozarr` command: demo, build, info, validate, preview."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from topozarr.arenas import limit_arenas
from topozarr.errors import UsageError, WriteStopped

# Stop adding levels once the coarsest one fits in a web-map tile of about this many cells.
_COARSEST_EDGE = 256


def _int_list(text: str) -> list[int]:
    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        values = []
    if not values:  # an empty list would silently mean "auto" / "every level"
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers (e.g. 1,2,4)"
        )
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _seconds_arg(text: str) -> str:
    try:
        ok = 0 < float(text) < math.inf
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return text


def _shard_arg(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer or 'none'") from err


def parse_method(text: str) -> str | dict[str, str]:
    """``mean`` for every variable, or ``var=method,var=method`` per variable."""
    if "=" not in text:
        return text
    methods = {}
    for part in text.split(","):
        name, sep, method = part.partition("=")
        if not sep or not name.strip() or not method.strip():
            raise UsageError(f"--method part {part!r} is not VARIABLE=METHOD (e.g. temp=mean)")
        methods[name.strip()] = method.strip()
    return methods


def auto_levels(height: int, width: int) -> int:
    """Levels of 2x so that the coarsest level's longer edge is about one web tile."""
    return max(1, math.ceil(math.log2(max(height, width) / _COARSEST_EDGE)) + 1)


def _level_count(requested: int | None, height: int, width: int) -> int:
    """``--levels`` as given, else :func:`auto_levels`. ``None``, not falsy: the parser
    refuses 0, so only a missing option means "auto"."""
    return auto_levels(height, width) if requested is None else requested


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one ``error:`` line (no usage block) like every other
    error of the command; ``--help`` still shows the usage. Subparsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="topozarr",
        description="Build multiscale Zarr v3 pyramids with GeoZarr metadata.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="write a pyramid of the embedded synthetic demo dataset")
    demo.add_argument("out", nargs="?", default="demo.zarr", help="output store (demo.zarr)")
    demo.add_argument("--size", type=_positive_int, default=None, help="DEM rows (columns are 2x)")
    demo.add_argument(
        "--levels", type=_positive_int, default=None, help="number of levels (default: auto)"
    )
    _add_write_options(demo)

    build = sub.add_parser("build", help="build a pyramid from a NetCDF, Zarr or GeoTIFF source")
    build.add_argument("src", help="source: NetCDF, Zarr (local or s3://) or GeoTIFF")
    build.add_argument("dst", help="output store: a path or s3:// URL")
    group = build.add_mutually_exclusive_group()
    group.add_argument(
        "--levels", type=_positive_int, help="number of levels, 2x apart (default: auto)"
    )
    group.add_argument("--factors", type=_int_list, help="cumulative factors, e.g. 1,4,16")
    from topozarr_core import METHODS  # the kernel's method table names them

    build.add_argument("--method", default="mean", help=f"{'|'.join(METHODS)}, or var=method,...")
    build.add_argument("--x-dim", help="x dimension (default: x/lon/longitude)")
    build.add_argument("--y-dim", help="y dimension (default: y/lat/latitude)")
    build.add_argument("--crs", help="CRS when the source has none, e.g. EPSG:4326")
    build.add_argument("--variables", type=lambda t: [v for v in t.split(",") if v])
    build.add_argument("--target-chunk-bytes", type=int, default=None)
    shards = build.add_mutually_exclusive_group()
    shards.add_argument("--chunks-per-shard", type=_shard_arg, default="4", help="1..32 or none")
    shards.add_argument(
        "--no-shards",
        dest="chunks_per_shard",
        action="store_const",
        const=None,
        help="no sharding: what GDAL (up to 3.12) and QGIS need to read the store",
    )
    build.add_argument("--mode", choices=["w", "a"], default="w")
    build.add_argument(
        "--append-dim",
        metavar="DIM",
        help="append SRC's steps along DIM (e.g. time) to the pyramid at DST, every level",
    )
    build.add_argument(
        "--levels-only", type=_int_list, help="write only these levels (with --mode a)"
    )
    build.add_argument(
        "--preview", action="store_true", help="open the result in `topozarr preview` afterwards"
    )
    _add_write_options(build)

    preview = sub.add_parser(
        "preview", help="view a pyramid in the browser (MapLibre + zarr-layer, works offline)"
    )
    preview.add_argument("store", help="the pyramid: a path or s3:// URL")
    preview.add_argument("--var", dest="variable", help="variable shown first")
    preview.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: free)")
    preview.add_argument("--no-open", action="store_true", help="print the URL, open no browser")

    info = sub.add_parser("info", help="describe a written pyramid")
    info.add_argument("store")
    info.add_argument("--json", action="store_true", help="machine-readable output")

    validate = sub.add_parser(
        "validate", help="check a pyramid's metadata, shard objects and values as readers see them"
    )
    validate.add_argument("store")
    validate.add_argument(
        "--full", action="store_true", help="read every object back and recompute every cell"
    )
    validate.add_argument("--samples", type=int, default=16, help="cells recomputed per array")
    validate.add_argument("--shards", type=int, default=8, help="objects read back per array")
    return parser


def _add_write_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None, help="worker threads (default: auto)")
    p.add_argument("--io", choices=["python", "rust"], default="python")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--stats", action="store_true", help="print per-level stats as JSON on stdout")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted write of the same plan (finished tiles are not redone)",
    )
    p.add_argument(
        "--retry-budget",
        type=_seconds_arg,
        metavar="SECONDS",
        help="retry each failing storage request for up to this long (default 300; sets "
        "TOPOZARR_RETRY_BUDGET)",
    )


def _write(pyramid: Any, dst: str, args: argparse.Namespace, **kwargs: Any) -> dict[str, Any]:
    if args.retry_budget is not None:  # one mechanism: stores read the budget from here
        os.environ["TOPOZARR_RETRY_BUDGET"] = args.retry_budget
    start = time.perf_counter()
    try:
        stats = pyramid.write(
            dst,
            max_workers=args.workers,
            progress=not args.no_progress,
            stats=True,
            io=args.io,
            resume=args.resume,
            **kwargs,
        )
    except (ValueError, ImportError, MemoryError, KeyboardInterrupt):
        raise  # refused before writing (the plan, the options, a lease), or interrupted
    except Exception as err:
        # A bare "[Errno 28] No space left on device" does not say what stopped, nor how to
        # go on: the journal lets the same command continue.
        raise WriteStopped(
            f"writing {dst} stopped: {error_line(err)} (the store is incomplete and not "
            "published; once the cause is fixed, continue with the same command and --resume)"
        ) from err
    return {"seconds": time.perf_counter() - start, "levels": stats}


def _summary(pyramid: Any, dst: str, result: dict[str, Any]) -> str:
    from topozarr.inspect_store import open_root, summarize

    info = summarize(open_root(dst))
    source_bytes = sum(
        v.nbytes for v in pyramid.source.data_vars.values() if pyramid.x_dim in v.dims
    )
    seconds = result["seconds"]
    lines = [f"wrote {dst}: {len(info['levels'])} levels in {seconds:.2f} s"]
    for level in info["levels"]:
        lines.append(f"  level {level.asset}: {level.shape[0]} x {level.shape[1]}")
    lines.append(
        f"  {info['stored_bytes'] / 2**20:.1f} MiB stored; "
        f"{source_bytes / 2**20 / max(seconds, 1e-9):.0f} MiB/s of source"
    )
    return "\n".join(lines)


def _cmd_demo(args: argparse.Namespace) -> int:
    from topozarr import create_pyramid
    from topozarr.demo import DEFAULT_DEMO_ROWS, demo_dataset

    ds = demo_dataset(DEFAULT_DEMO_ROWS if args.size is None else args.size)
    levels = _level_count(args.levels, ds.sizes["lat"], ds.sizes["lon"])
    pyramid = create_pyramid(ds, levels=levels, x_dim="lon", y_dim="lat")
    result = _write(pyramid, args.out, args)
    _emit(pyramid, args, result, args.out)
    return 0


def _emit(pyramid: Any, args: argparse.Namespace, result: dict[str, Any], dst: str) -> None:
    if args.stats:
        print(json.dumps(result, default=str))
        print(_summary(pyramid, dst, result), file=sys.stderr)
    else:
        print(_summary(pyramid, dst, result))


def _cmd_build(args: argparse.Namespace) -> int:
    from topozarr import create_pyramid
    from topozarr.sources import X_NAMES, Y_NAMES, detect_dim, open_source, with_crs

    ds = open_source(args.src, variables=args.variables)
    x_dim = detect_dim(ds, args.x_dim, X_NAMES, "x")
    y_dim = detect_dim(ds, args.y_dim, Y_NAMES, "y")
    ds = with_crs(ds, args.crs)
    options: dict[str, Any] = {"x_dim": x_dim, "y_dim": y_dim, "method": parse_method(args.method)}
    if args.target_chunk_bytes is not None:
        options["target_chunk_bytes"] = args.target_chunk_bytes
    options["chunks_per_shard"] = args.chunks_per_shard
    if args.factors is not None:
        options["factors"] = args.factors
    else:
        options["levels"] = _level_count(args.levels, ds.sizes[y_dim], ds.sizes[x_dim])
    pyramid = create_pyramid(ds, **options)
    result = _write(
        pyramid, args.dst, args, mode=args.mode, levels=args.levels_only, append_dim=args.append_dim
    )
    _emit(pyramid, args, result, args.dst)
    if args.preview:
        from topozarr.preview import serve_preview

        serve_preview(args.dst)
    return 0


def _cmd_preview(args: argparse.Namespace) -> int:
    from topozarr.preview import serve_preview

    serve_preview(args.store, variable=args.variable, port=args.port, open_browser=not args.no_open)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from topozarr.gis_checks import sharded_note
    from topozarr.inspect_store import describe_extent, open_root, summarize

    info = summarize(open_root(args.store))
    if args.json:
        print(json.dumps(_jsonable(info), indent=2))
        return 0
    print(f"store   {args.store}")
    print(f"crs     {info['crs']}")
    print(f"dims    {info['dims']}")
    print(f"bbox    {info['bbox']}")
    print(f"method  {info['method']}")
    print(f"stored  {info['stored_bytes'] / 2**20:.2f} MiB")
    for dim, extent in info["extents"].items():
        print(describe_extent(dim, extent))
    if note := sharded_note(a.shards for level in info["levels"] for a in level.arrays):
        print(f"note    {note}")
    header = f"{'level':<6}{'array':<16}{'shape':<22}{'dtype':<9}{'chunks':<18}{'shards':<18}MiB"
    print(header)
    for level in info["levels"]:
        for arr in level.arrays:
            shards = "x".join(map(str, arr.shards)) if arr.shards else "-"
            print(
                f"{level.asset:<6}{arr.name:<16}{'x'.join(map(str, arr.shape)):<22}"
                f"{arr.dtype:<9}{'x'.join(map(str, arr.chunks)):<18}{shards:<18}"
                f"{arr.stored_bytes / 2**20:.2f}"
            )
    return 0


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {k: _jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _cmd_validate(args: argparse.Namespace) -> int:
    from topozarr.gis_checks import grid_mapping_findings, print_warnings
    from topozarr.inspect_store import describe_extent, extents, open_root
    from topozarr.validate_store import validate_store

    findings = validate_store(args.store, full=args.full, samples=args.samples, shards=args.shards)
    root = open_root(args.store)
    # Warnings only: stores written before grid_mapping was added stay valid.
    print_warnings(grid_mapping_findings(root))
    for finding in findings:
        print(finding)
    if findings:
        return 1
    print(f"{args.store}: valid")
    for dim, extent in extents(root).items():
        print(f"  {describe_extent(dim, extent)}")
    return 0


_COMMANDS = {
    "demo": _cmd_demo,
    "build": _cmd_build,
    "info": _cmd_info,
    "validate": _cmd_validate,
    "preview": _cmd_preview,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code.

    0 ok, 1 validation findings (``validate`` only), 2 any error (one ``topozarr: error:``
    line on stderr; ``--debug`` prints the traceback first), 130 interrupted.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        # This process is ours: fewer malloc arenas lower the writers' peak RSS (arenas.py).
        # Before any command starts the writers' threads.
        limit_arenas()
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print("topozarr: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # every failure is one line: a write can fail in many layers
        if args.debug:
            traceback.print_exc()
        print(f"topozarr: error: {error_line(err)}", file=sys.stderr)
        return 2


# Errors whose message is written for the user (names the value or location and the fix).
# OSError covers StoreError (unreachable S3 endpoint, rejected credentials, missing bucket),
# missing files and a full disk. Our own exception classes (RegionError names the variable,
# level and region a worker failed on, with the cause) count too; they are recognised by
# module, since importing the engine here could fail again when it is what failed.
_EXPECTED = (UsageError, ValueError, OSError, ImportError, KeyError, MemoryError)


def _ours(err: BaseException) -> bool:
    return any(cls.__module__.startswith("topozarr") for cls in type(err).__mro__)


def error_line(err: BaseException) -> str:
    """The one-line message for ``err``; unexpected kinds are named and point to --debug."""
    message = err.args[0] if isinstance(err, KeyError) and err.args else err
    text = " ".join(str(message).split())  # multi-line messages (obstore, zarr) on one line
    if isinstance(err, _EXPECTED) or _ours(err):
        return text or type(err).__name__
    hint = "rerun with --debug for the traceback"
    return f"{type(err).__name__}: {text}; {hint}" if text else f"{type(err).__name__}; {hint}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
