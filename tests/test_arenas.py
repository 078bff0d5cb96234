"""The malloc arena limit: applied by the ``topozarr`` command, never by importing the library."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from topozarr import arenas, cli

_IMPORT_ONLY = (
    "import topozarr_engine, topozarr_plan, topozarr, topozarr.arenas as a, sys; "
    "sys.stdout.write(str(a._DONE.is_set()))"
)
_CLI = (
    "import topozarr.arenas as a, topozarr.cli as c, sys; "
    "code = c.main(['info', sys.argv[1]]); sys.stdout.write(f'{code} {a._DONE.is_set()}')"
)


def _wanted(monkeypatch: pytest.MonkeyPatch, **env: str) -> int:
    for name in ("MALLOC_ARENA_MAX", "TOPOZARR_MALLOC_ARENA_MAX"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return arenas._wanted()


def test_the_users_choice_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _wanted(monkeypatch) == arenas.DEFAULT_ARENAS
    assert _wanted(monkeypatch, MALLOC_ARENA_MAX="8") == 0
    assert _wanted(monkeypatch, TOPOZARR_MALLOC_ARENA_MAX="0") == 0
    assert _wanted(monkeypatch, TOPOZARR_MALLOC_ARENA_MAX="3") == 3
    with pytest.raises(ValueError, match="TOPOZARR_MALLOC_ARENA_MAX='two'"):
        _wanted(monkeypatch, TOPOZARR_MALLOC_ARENA_MAX="two")


def test_the_cli_limits_arenas_before_running_a_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(cli, "limit_arenas", lambda: calls.append("limit"))

    def command(args: object) -> int:
        calls.append("command")
        return 0

    monkeypatch.setitem(cli._COMMANDS, "info", command)
    assert cli.main(["info", str(tmp_path)]) == 0
    assert calls == ["limit", "command"]


def test_a_bad_arena_count_is_one_cli_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("TOPOZARR_MALLOC_ARENA_MAX", "two")
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(arenas, "_DONE", arenas.threading.Event())  # not applied yet here
    assert cli.main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TOPOZARR_MALLOC_ARENA_MAX='two'" in err[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc arenas are Linux's")
def test_importing_the_library_leaves_malloc_alone_and_the_cli_applies_it(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if "MALLOC_ARENA_MAX" not in k}

    def run(code: str, *args: str) -> str:
        argv = [sys.executable, "-c", code, *args]
        return subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout

    assert run(_IMPORT_ONLY) == "False"
    # Whatever ``info`` answers (here 2: no store), the limit was applied first.
    assert run(_CLI, str(tmp_path / "missing.zarr")) == "2 True"
