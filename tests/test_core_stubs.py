"""The kernel's hand-written stub `_core.pyi` matches the compiled `topozarr_core._core`.

mypy's stubtest imports the extension and compares every name, signature and class in the
stub with what the module really exports, so a binding added, removed or changed in Rust
without its stub fails here. (It lives in the workspace tests because mypy is a dev
dependency of the workspace, not of topozarr-core.)
"""

import subprocess
import sys


def test_stub_matches_the_extension() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "topozarr_core", "--ignore-missing-stub"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
