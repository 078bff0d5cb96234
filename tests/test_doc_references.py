"""The repository's documents cite only documents inside it, and the sections they cite exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ["src", "packages", "docs", "tests", "benchmarks", "README.md", "noxfile.py"]
SUFFIXES = {".py", ".pyi", ".rs", ".md", ".toml", ".txt"}
SKIPPED_DIRS = {".venv", "target", "node_modules", "__pycache__", ".nox", "static"}
# Written split so that this file does not match itself.
OUTSIDE = [
    "shared" + "/specs",
    "../" + "shared",
    "RULES" + ".md",
    "SOURCES" + ".md",
    "DESIGN" + ".md",
    "seed " + "contract",
    "seed " + "API",
    "seed " + "field",
]
# `docs/usage.md, "Failures and resume"` or `docs/usage.md ("GIS tools")`.
CITATION = re.compile(r'docs/(\w+)\.md,? \(?"([^"]+)"')
PAGE = re.compile(r"\bdocs/(\w+)\.md\b")


def _files() -> list[Path]:
    out = []
    for name in SCANNED:
        path = ROOT / name
        candidates = [path] if path.is_file() else path.rglob("*")
        for file in candidates:
            if (
                file.is_file()
                and file.suffix in SUFFIXES
                and not SKIPPED_DIRS & set(file.relative_to(ROOT).parts)
            ):
                out.append(file)
    return out


FILES = _files()


def _headings(page: str) -> list[str]:
    text = (ROOT / "docs" / f"{page}.md").read_text(encoding="utf-8")
    return [line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")]


def test_the_scan_sees_the_repository() -> None:
    names = {f.relative_to(ROOT).as_posix() for f in FILES}
    assert "docs/metadata.md" in names
    assert "packages/topozarr-plan/src/topozarr_plan/pyramid.py" in names


@pytest.mark.parametrize("phrase", OUTSIDE)
def test_nothing_refers_to_documents_outside_the_repository(phrase: str) -> None:
    hits = [
        f"{f.relative_to(ROOT)}:{n}"
        for f in FILES
        for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if phrase in line
    ]
    assert hits == []


def test_cited_pages_and_sections_exist() -> None:
    missing = []
    for file in FILES:
        text = file.read_text(encoding="utf-8", errors="replace")
        for page in PAGE.findall(text):
            if not (ROOT / "docs" / f"{page}.md").is_file():
                missing.append(f"{file.relative_to(ROOT)}: docs/{page}.md")
        for page, section in CITATION.findall(text):
            if (ROOT / "docs" / f"{page}.md").is_file() and not any(
                h.startswith(section) for h in _headings(page)
            ):
                missing.append(f"{file.relative_to(ROOT)}: docs/{page}.md {section!r}")
    assert missing == []
