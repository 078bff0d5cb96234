"""Every code block in the README and docs/ runs.

Python blocks of one page run in order in one namespace, in an empty working directory.
Shell blocks run line by line: `uv run topozarr ...` through the installed script; `uv run nox
...` is checked by listing the named sessions (running the suite from inside itself would
recurse); `uv run --no-sync python benchmarks/X.py` with `--help` (a benchmark takes minutes).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)
BIN = Path(sys.executable).parent


def blocks(page: Path, language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(page.read_text()) if lang == language]


def _shell_command(line: str) -> list[str] | None:
    """The command that checks one documented shell line, or None for a comment/blank line."""
    words = shlex.split(line.split("#")[0])
    if not words:
        return None
    assert words[:2] == ["uv", "run"], f"documented command must use `uv run`: {line}"
    words = [w for w in words[2:] if w != "--no-sync"]
    if words[0] == "topozarr":
        return [str(BIN / "topozarr"), *words[1:]]
    if words[0] == "nox":
        sessions = [w for w in words[1:] if w != "-s" and not w.startswith("-")]
        return [str(BIN / "nox"), "-f", str(ROOT / "noxfile.py"), "-l", "-s", *sessions]
    if words[0] == "python" and words[1].startswith("benchmarks/"):
        return [sys.executable, str(ROOT / words[1]), "--help"]
    raise AssertionError(f"no rule to check documented command: {line}")


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=lambda p: p.name)
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = blocks(page, "python")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for i, block in enumerate(code):
        exec(compile(block, f"{page.name}[python block {i}]", "exec"), namespace)


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "bash")], ids=lambda p: p.name)
def test_shell_blocks_run(page: Path, tmp_path: Path) -> None:
    lines = [ln for block in blocks(page, "bash") for ln in block.splitlines()]
    commands = [c for c in map(_shell_command, lines) if c]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for command in commands:
        result = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600, check=False
        )
        assert result.returncode == 0, (
            f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
