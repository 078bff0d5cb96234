"""Developer sessions for the topozarr workspace (`uv run nox -l` lists them)."""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
import tomllib
from pathlib import Path

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests"]

ROOT = Path(__file__).parent
MEMBERS = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())
CORE = ROOT / "packages" / "topozarr-core"
# CI runs the suite on the oldest supported Python and on a newer one (which resolves zarr 3.2+).
TEST_PYTHONS = ["3.11", "3.13"]


def _interpreter(version: str) -> str:
    """Find a CPython interpreter by version, including pyenv ones that uv cannot discover."""
    if sys.version_info[:2] == tuple(int(p) for p in version.split(".")):
        return sys.executable
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"))
    if found:
        return found[-1]
    return f"python{version}"


def _env(session: nox.Session, name: str) -> dict[str, str]:
    return {"UV_PROJECT_ENVIRONMENT": str(ROOT / ".nox" / name), "VIRTUAL_ENV": ""}


@nox.session(python=False)
@nox.parametrize("python", TEST_PYTHONS)
def tests(session: nox.Session, python: str) -> None:
    """Run the whole workspace's pytest suite on one Python version from the lock file."""
    env = _env(session, f"tests-{python}")
    session.run(
        "uv",
        "sync",
        "--locked",
        "--all-extras",
        "--python",
        _interpreter(python),
        env=env,
        external=True,
    )
    session.run("uv", "run", "--no-sync", "pytest", *session.posargs, env=env, external=True)


@nox.session(python=False)
def rust(session: nox.Session) -> None:
    """cargo fmt --check, clippy -D warnings and cargo test over the kernel's cargo workspace."""
    manifest = str(CORE / "Cargo.toml")
    session.run("cargo", "fmt", "--all", "--manifest-path", manifest, "--check", external=True)
    session.run(
        "cargo",
        "clippy",
        "--manifest-path",
        manifest,
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
        external=True,
    )
    session.run("cargo", "test", "--manifest-path", manifest, "--workspace", external=True)


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole workspace."""
    session.run("uv", "run", "--no-sync", "ruff", "check", ".", external=True)
    session.run("uv", "run", "--no-sync", "ruff", "format", "--check", ".", external=True)


@nox.session(python=False)
def typecheck(session: nox.Session) -> None:
    """mypy over every member, and stubtest of the kernel's .pyi against the built extension."""
    session.run(
        "uv",
        "run",
        "--no-sync",
        "mypy",
        "src/topozarr",
        *[
            f"packages/{m}/src"
            for m in MEMBERS
            if (ROOT / "packages" / m / "src").is_dir() and m != "topozarr-core"
        ],
        external=True,
    )
    session.run(
        "uv",
        "run",
        "--no-sync",
        "python",
        "-m",
        "mypy.stubtest",
        "topozarr_core",
        "--ignore-missing-stub",
        external=True,
    )


def _pins() -> list[str]:
    """Every exact pin on a workspace member that disagrees with that member's version."""
    versions = {}
    manifests = {"topozarr": ROOT / "pyproject.toml"}
    for m in MEMBERS:
        manifests[m] = ROOT / "packages" / m / "pyproject.toml"
    for name, path in manifests.items():
        versions[name] = tomllib.loads(path.read_text())["project"]["version"]
    cargo = tomllib.loads((CORE / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    problems = []
    if cargo != versions["topozarr-core"]:
        problems.append(f"Cargo.toml version {cargo} != topozarr-core {versions['topozarr-core']}")
    for name, path in manifests.items():
        project = tomllib.loads(path.read_text())["project"]
        reqs = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            reqs += extra
        for req in reqs:
            dep = req.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip()
            if dep not in versions or dep == name:
                continue
            if "==" not in req:
                problems.append(f"{name}: {req!r} must pin {dep} exactly (=={versions[dep]})")
            elif req.split("==")[1].strip() != versions[dep]:
                problems.append(f"{name}: {req!r} but {dep} is at {versions[dep]}")
    return problems


@nox.session(python=False)
def pins(session: nox.Session) -> None:
    """Check that every exact pin between members matches the pinned member's version."""
    problems = _pins()
    for p in problems:
        session.warn(p)
    if problems:
        session.error(f"{len(problems)} pin mismatch(es)")
    session.log(f"pins consistent across {len(MEMBERS) + 1} manifests")


def _workspace_deps(member: str) -> set[str]:
    """The workspace members `member` depends on, directly or transitively."""
    project = tomllib.loads((ROOT / "packages" / member / "pyproject.toml").read_text())["project"]
    names = {
        r.split("[")[0].split("=")[0].split(">")[0].strip() for r in project.get("dependencies", [])
    }
    direct = names & set(MEMBERS)
    return direct.union(*(_workspace_deps(d) for d in direct)) if direct else set()


@nox.session(python=False)
@nox.parametrize("member", MEMBERS)
def isolated(session: nox.Session, member: str) -> None:
    """Install one member alone (plus its declared deps) and run its own tests there."""
    venv = ROOT / ".nox" / f"isolated-{member}"
    session.run(
        "uv", "venv", "--clear", "--quiet", "--python", sys.executable, str(venv), external=True
    )
    py = str(venv / "bin" / "python")
    # Siblings come from the local workspace, never from PyPI; only declared ones may be installed.
    local = {m: str(ROOT / "packages" / m) for m in MEMBERS}
    needed = [local[m] for m in sorted(_workspace_deps(member))]
    extras = "[validate]" if member == "topozarr-metadata" else ""
    session.run(
        "uv",
        "pip",
        "install",
        "--quiet",
        "--python",
        py,
        *needed,
        f"{local[member]}{extras}",
        "--group",
        f"{local[member]}/pyproject.toml:test",
        external=True,
    )
    tests_dir = ROOT / "packages" / member / "tests"
    session.run(
        py,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(tests_dir),
        str(tests_dir),
        external=True,
    )
    # The member must not import any sibling it does not declare.
    undeclared = [m.replace("-", "_") for m in MEMBERS if m != member and local[m] not in needed]
    module = member.replace("-", "_")
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        f"bad = [m for m in {undeclared!r} if m in sys.modules]; "
        "sys.exit(f'imports undeclared siblings: {bad}' if bad else 0)"
    )
    session.run(py, "-c", code, external=True)
    if member == "topozarr-metadata":
        _check_installs_alone(session, local[member])


def _check_installs_alone(session: nox.Session, path: str) -> None:
    """A viewer can install topozarr-metadata without pulling in any third-party package."""
    venv = ROOT / ".nox" / "bare-topozarr-metadata"
    session.run(
        "uv", "venv", "--clear", "--quiet", "--python", sys.executable, str(venv), external=True
    )
    py = str(venv / "bin" / "python")
    session.run("uv", "pip", "install", "--quiet", "--python", py, path, external=True)
    listed = session.run("uv", "pip", "freeze", "--python", py, external=True, silent=True)
    names = sorted(
        line.split("@")[0].split("==")[0].strip()
        for line in str(listed).splitlines()
        if "==" in line or " @ " in line  # requirement lines only, not uv's status line
    )
    if names != ["topozarr-metadata"]:
        session.error(f"topozarr-metadata pulled in third-party packages: {names}")
    session.log("topozarr-metadata installs alone: no third-party package")


@nox.session(python=False)
def bench(session: nox.Session) -> None:
    """Run the benchmarks (they print ratios against their baselines; they are not tests)."""
    session.run(
        "uv", "run", "--no-sync", "python", "benchmarks/kernel.py", *session.posargs, external=True
    )


@nox.session(python=False)
def preview_bundle(session: nox.Session) -> None:
    """Rebuild the `topozarr preview` page bundle from preview-js/ (npm ci + esbuild)."""
    js_dir = ROOT / "preview-js"
    static_dir = ROOT / "src" / "topozarr" / "preview" / "static"
    session.chdir(js_dir)
    session.run("npm", "ci", "--no-audit", "--no-fund", external=True)
    session.run("node", "build.mjs", external=True)
    # digest.py by path: importing the topozarr package would need the built kernel.
    spec = importlib.util.spec_from_file_location("preview_digest", static_dir.parent / "digest.py")
    assert spec is not None and spec.loader is not None
    digest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(digest)
    record = digest.write_record(js_dir, static_dir)
    session.log(f"bundle rebuilt from sources {record['sources'][:12]}")
