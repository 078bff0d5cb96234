"""A refactor's cost: the same write with the Python packages of another checkout, interleaved.

    git worktree add /tmp/before <commit>
    uv run --no-sync python benchmarks/before_after.py --before /tmp/before --rounds 7 --io python

Both contenders are ``benchmarks/pyramid.py --child topozarr`` on the 1 GiB DEM at topozarr's
defaults, in child processes, alternating which runs first; the "before" one puts the other
checkout's ``src`` directories first on ``PYTHONPATH`` (the installed kernel is shared, so this
measures the Python layers). Each ratio is taken within its round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MEMBERS = ("topozarr-plan", "topozarr-engine", "topozarr-metadata")


def _run(which: str, before: Path, io: str, dataset: str, size: str) -> dict[str, float]:
    env = dict(os.environ)
    if which == "before":
        paths = [before / "src", *(before / "packages" / m / "src" for m in MEMBERS)]
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    out = HERE / "data" / f"out-before-after-{which}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    os.sync()  # neither the deletion nor the previous write-back lands in this run's time
    cmd = [sys.executable, str(HERE / "pyramid.py"), "--child", "topozarr", "--out", str(out)]
    cmd += ["--codecs", "default", "--dataset", dataset, "--size", size, "--io", io]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        raise SystemExit(f"{which} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the other checkout")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--io", choices=["python", "rust"], default="python")
    parser.add_argument("--dataset", default="dem")
    parser.add_argument("--size", default="1G")
    args = parser.parse_args()
    ratios, cpu = [], []
    for i in range(args.rounds):
        order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
        t = {w: _run(w, args.before, args.io, args.dataset, args.size) for w in order}
        ratios.append(t["after"]["seconds"] / t["before"]["seconds"])
        cpu.append(t["after"]["cpu_s"] / t["before"]["cpu_s"])
        print(
            f"round {i}: before {t['before']['seconds']:.2f} s, after {t['after']['seconds']:.2f} s,"
            f" ratio {ratios[-1]:.3f}, CPU ratio {cpu[-1]:.3f}",
            flush=True,
        )
    ratios.sort()
    cpu.sort()
    print(
        f"io={args.io}: after / before median {ratios[len(ratios) // 2]:.3f} "
        f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}); CPU time median {cpu[len(cpu) // 2]:.3f}"
    )


if __name__ == "__main__":
    main()
