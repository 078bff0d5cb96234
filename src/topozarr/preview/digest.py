"""Ties the shipped bundle (``static/``) to its sources (``preview-js/``).

``nox -s preview_bundle`` rebuilds the bundle and writes ``static/SOURCES.json``: a digest of
the sources and lock file, and one of every shipped file. A test recomputes both, so a source
edited without a rebuild, or a bundle edited by hand, fails CI.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

RECORD = "SOURCES.json"
# What the bundle is built from: the lock file pins every npm package.
_SOURCE_FILES = ("package.json", "package-lock.json", "build.mjs")


def _sha256(paths: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def sources_digest(js_dir: Path) -> str:
    """sha256 over the bundle's sources (names and bytes, in a fixed order)."""
    paths = [js_dir / name for name in _SOURCE_FILES]
    paths += sorted(p for p in (js_dir / "src").rglob("*") if p.is_file())
    return _sha256(paths, js_dir)


def bundle_digests(static_dir: Path) -> dict[str, str]:
    """sha256 of every shipped file but the record itself."""
    return {
        p.name: _sha256([p], static_dir)
        for p in sorted(static_dir.iterdir())
        if p.is_file() and p.name != RECORD
    }


def write_record(js_dir: Path, static_dir: Path) -> dict[str, object]:
    """Write ``static/SOURCES.json`` after a build; returns what was written."""
    record: dict[str, object] = {
        "sources": sources_digest(js_dir),
        "bundle": bundle_digests(static_dir),
    }
    (static_dir / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
