"""kill -9 at random moments of a write, then resume: never published early, exact at the end.

A child process (``resume_child.py``) writes a pyramid of a Zarr source through an array that
logs every source read. The test kills it (SIGKILL) at random moments, checks after every kill
that the root advertises no ``multiscales`` (or, if the kill came after publishing, that the
store is complete), resumes (``resume=True``) and kills again, until a resume completes. Then
every level must equal a clean write, and no resume may have read from the source more than
``max_workers + 1`` tiles that an earlier run had read already (``max_workers + 2`` with
``io="rust"``, whose records wait for their uploads, two at most, while the tiles go on).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import xproj  # noqa: F401
import zarr

HERE = Path(__file__).parent
CHILD = HERE / "resume_child.py"
WORKERS = 2
KILLS = 20
CREATE = {"levels": 4, "target_chunk_bytes": 1024, "chunks_per_shard": 2}  # 32x32 shards
WRITE = {"max_workers": WORKERS, "max_region_bytes": 4096}  # one shard per tile: 128 tiles


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 256x512 float32 DEM with NaN holes and a whole missing corner, as a Zarr store."""
    rng = np.random.default_rng(7)
    ny, nx = 256, 512
    values = rng.normal(100, 30, (ny, nx)).astype("float32")
    values[rng.random((ny, nx)) < 0.2] = np.nan
    values[:64, :96] = np.nan
    ds = xr.Dataset(
        {"elevation": (("y", "x"), values, {"units": "m"})},
        coords={
            "y": 90 - (np.arange(ny) + 0.5) * 180 / ny,
            "x": -180 + (np.arange(nx) + 0.5) * 360 / nx,
        },
    )
    path = tmp_path_factory.mktemp("src") / "src.zarr"
    ds.to_zarr(
        path, zarr_format=3, consolidated=False, encoding={"elevation": {"chunks": (64, 64)}}
    )
    return path


def reference_write(source: Path, store: Any) -> None:
    from topozarr import create_pyramid

    ds = xr.open_zarr(source, chunks=None).proj.assign_crs(spatial_ref="EPSG:4326")
    create_pyramid(ds, **CREATE).write(store, **WRITE)


def read_log(path: Path) -> list[tuple[int, ...]]:
    if not path.exists():
        return []
    return [tuple(int(v) for v in line.split(",")) for line in path.read_text().split("\n") if line]


def root_attrs(zstore: Any) -> dict[str, Any]:
    try:
        return zarr.open_group(zstore, mode="r", use_consolidated=False).attrs.asdict()
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return {}


def assert_same_levels(got: Any, want: Any) -> None:
    a = zarr.open_group(want, mode="r", use_consolidated=False)
    b = zarr.open_group(got, mode="r", use_consolidated=False)
    assert b.attrs.asdict() == a.attrs.asdict()
    for level in range(CREATE["levels"]):
        x = a[f"{level}/elevation"][...]
        y = b[f"{level}/elevation"][...]
        np.testing.assert_array_equal(np.isnan(y), np.isnan(x), err_msg=f"level {level}")
        np.testing.assert_array_equal(y, x, err_msg=f"level {level}")


class Zygote:
    """``resume_child.py`` running: ``run`` forks one write from it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)

    def run(self, config: dict[str, Any], tmp: Path, kill_after: float | None):
        """One write; SIGKILL it ``kill_after`` seconds after it starts (None: let it end)."""
        cfg = tmp / "config.json"
        result = tmp / "result.txt"
        result.unlink(missing_ok=True)
        cfg.write_text(json.dumps({**config, "result": str(result)}))
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{cfg}\n")
        self.proc.stdin.flush()
        pid = int(self.proc.stdout.readline())
        deadline = time.monotonic() + (kill_after if kill_after is not None else 120)
        while not result.exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        if not result.exists():
            assert kill_after is not None, "the write did not finish in 120 s"
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid)
            if not result.exists():
                return "killed", None
        text = result.read_text()
        assert text.startswith("done "), text
        _wait_gone(pid)
        return "done", json.loads(text[5:])


def _wait_gone(pid: int) -> None:
    """The child has exited (SIGCHLD is ignored in the zygote, so it is reaped at once)."""
    for _ in range(5000):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.002)
    raise AssertionError(f"process {pid} is still there")


def kill_and_resume(tmp: Path, source: Path, store: str, zstore: Any, zygote: Zygote, io: str):
    rng = random.Random(hash((io, store)) & 0xFFFF)
    log = tmp / "reads.log"
    config = {
        "source": str(source),
        "variable": "elevation",
        "read_log": str(log),
        "read_delay": 0.01,
        "store": store,
        "create": CREATE,
        "write": {**WRITE, "io": io},
    }
    kills = 0
    while kills < KILLS:
        log.unlink(missing_ok=True)
        config["write"]["resume"] = False
        outcome, _ = zygote.run(config, tmp, kill_after=rng.uniform(0.0, 0.9))
        kills += outcome == "killed"
        while outcome == "killed":
            published = "multiscales" in root_attrs(zstore)
            before = set(read_log(log))
            log.unlink(missing_ok=True)
            config["write"]["resume"] = True
            # Killed after publishing (the store is complete, the journal not yet removed):
            # the resume only finishes.
            delay = rng.uniform(0.0, 0.9) if kills < KILLS and not published else None
            outcome, stats = zygote.run(config, tmp, kill_after=delay)
            again = before & set(read_log(log))
            assert len(again) <= WORKERS + (2 if io == "rust" else 1), (len(again), sorted(again))
            log.write_text(
                "".join(",".join(map(str, t)) + "\n" for t in before | set(read_log(log)))
            )
            if outcome == "killed":
                kills += 1
            elif not published:
                # (Killed before touching a store an earlier round completed: nothing to do.)
                assert stats["tiles_run"] + len(before) >= 1
    return kills


@pytest.mark.slow
@pytest.mark.parametrize("io", ["python", "rust"])
def test_kill_and_resume_local(tmp_path: Path, source: Path, io: str) -> None:
    store = tmp_path / "out.zarr"
    zygote = Zygote(dict(os.environ))
    try:
        kills = kill_and_resume(tmp_path, source, str(store), str(store), zygote, io)
    finally:
        zygote.close()
    assert kills >= KILLS
    clean = tmp_path / "clean.zarr"
    reference_write(source, str(clean))
    assert_same_levels(str(store), str(clean))
    assert not (store / ".topozarr-write").exists()
    assert not [p for p in store.rglob("*") if ".topozarr-partial-" in p.name]


def s3_keys(zstore: Any, prefix: str) -> list[str]:
    from zarr.core.sync import sync

    async def collect() -> list[str]:
        return [k async for k in zstore.list_prefix(prefix)]

    return sync(collect())


@pytest.mark.s3
@pytest.mark.slow
@pytest.mark.parametrize("io", ["python", "rust"])
def test_kill_and_resume_s3(
    tmp_path: Path, source: Path, io: str, s3_server: Any, s3_prefix: str
) -> None:
    from zarr.storage import ObjectStore

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    zygote = Zygote({**env, **s3_server.env()})
    zstore = ObjectStore(s3_server.s3_store(s3_prefix))
    try:
        kills = kill_and_resume(tmp_path, source, s3_server.url(s3_prefix), zstore, zygote, io)
    finally:
        zygote.close()
    assert kills >= KILLS
    clean = tmp_path / "clean.zarr"
    reference_write(source, str(clean))
    assert_same_levels(zstore, str(clean))
    assert s3_keys(zstore, ".topozarr-write/") == []


def _killed(write: Any, patches: list[tuple[Any, str, Any]]) -> None:
    """Run ``write()`` with ``patches`` (object, attribute, value) applied; one of them makes
    it fail, and the process "dies" there: ``release`` (what a kill skips) raises instead, so
    the write's lease stays."""
    import topozarr_plan.journal as journal

    def kill(self: Any, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    mp = pytest.MonkeyPatch()
    for target, name, value in [*patches, (journal.WriteJournal, "release", kill)]:
        mp.setattr(target, name, value)
    try:
        with pytest.raises(KeyboardInterrupt):
            write()
    finally:
        mp.undo()


def test_a_write_killed_while_clearing_the_store_never_leaves_the_old_pyramid_published(
    tmp_path: Path, source: Path
) -> None:
    # mode="w" over a finished pyramid deletes its levels first. Killed after a level is gone,
    # the root must no longer advertise that pyramid: readers would see a hole, and a resume
    # would take the store for a finished write and leave it so.
    from zarr.storage import LocalStore

    from topozarr import create_pyramid

    store = tmp_path / "out.zarr"
    reference_write(source, str(store))
    assert "multiscales" in root_attrs(str(store))
    ds = xr.open_zarr(source, chunks=None).proj.assign_crs(spatial_ref="EPSG:4326")
    real_list_dir, real_delete_dir = LocalStore.list_dir, LocalStore.delete_dir

    async def listed_like_s3(self: Any, prefix: str) -> Any:
        # S3 lists keys in lexicographic order: the level groups before the root's zarr.json.
        for name in sorted([name async for name in real_list_dir(self, prefix)]):
            yield name

    async def killed_after_a_level(self: Any, prefix: str) -> None:
        await real_delete_dir(self, prefix)
        if prefix.strip("/").isdigit():
            raise RuntimeError("killed")

    _killed(
        lambda: create_pyramid(ds, **CREATE).write(str(store), **WRITE),
        [
            (LocalStore, "list_dir", listed_like_s3),
            (LocalStore, "delete_dir", killed_after_a_level),
        ],
    )
    assert not (store / "0").exists()  # killed with level 0 deleted
    assert "multiscales" not in root_attrs(str(store))
    stats = create_pyramid(ds, **CREATE).write(str(store), resume=True, stats=True, **WRITE)
    assert stats is not None and stats["0"]["complete"] and stats["0"]["tiles_run"] > 0
    clean = tmp_path / "clean.zarr"
    reference_write(source, str(clean))
    assert_same_levels(str(store), str(clean))


def test_a_resume_of_a_write_killed_before_its_plan_writes_the_new_data(
    tmp_path: Path, source: Path
) -> None:
    # The store holds a finished pyramid of other values with the same layout (so the same
    # root attributes). A write of new values killed right after taking the lease stored no
    # plan: resuming it must write the new values, not take the old pyramid for its own.
    import topozarr_plan.journal as journal

    from topozarr import create_pyramid

    store = tmp_path / "out.zarr"
    reference_write(source, str(store))
    ds = xr.open_zarr(source, chunks=None).proj.assign_crs(spatial_ref="EPSG:4326").load()
    new = ds.assign(elevation=ds.elevation + 1000)

    def killed(self: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed")

    _killed(
        lambda: create_pyramid(new, **CREATE).write(str(store), **WRITE),
        [(journal.WriteJournal, "forget", killed)],
    )
    assert (store / ".topozarr-write" / "lease.0").exists()
    assert "multiscales" in root_attrs(str(store))  # the old pyramid, untouched
    create_pyramid(new, **CREATE).write(str(store), resume=True, **WRITE)
    clean = tmp_path / "clean.zarr"
    create_pyramid(new, **CREATE).write(str(clean), **WRITE)
    assert_same_levels(str(store), str(clean))
    assert not (store / ".topozarr-write").exists()


@pytest.mark.parametrize("kind", ["local", "object store"])
@pytest.mark.parametrize("cut", [1, 2, 3])
def test_a_write_killed_while_removing_its_journal_resumes_without_reading(
    tmp_path: Path, source: Path, cut: int, kind: str
) -> None:
    # Published, then killed at the cut-th deletion of its journal: whatever is left must
    # still say that the write finished, so the resume reads nothing again. (An object store
    # journal deleted its records, the finished marker among them, before its lease.)
    import obstore
    import topozarr_plan.journal as journal
    from topozarr_plan.journal_keys import LocalKeys, ZarrKeys
    from zarr.storage import ObjectStore

    from topozarr import create_pyramid

    store: Any = str(tmp_path / "out.zarr")
    if kind == "object store":
        store = ObjectStore(obstore.store.MemoryStore())
    keys_class = LocalKeys if kind == "local" else ZarrKeys
    ds = xr.open_zarr(source, chunks=None).proj.assign_crs(spatial_ref="EPSG:4326")
    real_delete, real_finish = keys_class.delete, journal.WriteJournal.finish
    deletions = {"n": 0}

    def cut_short(self: Any, keys: Any) -> None:
        deletions["n"] += 1
        if deletions["n"] == cut:
            raise KeyboardInterrupt  # the process dies here
        real_delete(self, keys)

    def finish(self: Any) -> None:
        with pytest.MonkeyPatch.context() as inside:
            inside.setattr(keys_class, "delete", cut_short)
            real_finish(self)

    _killed(
        lambda: create_pyramid(ds, **CREATE).write(store, **WRITE),
        [(journal.WriteJournal, "finish", finish)],
    )
    assert "multiscales" in root_attrs(store)
    stats = create_pyramid(ds, **CREATE).write(store, resume=True, stats=True, **WRITE)
    assert stats is not None and stats["0"]["tiles_run"] == 0
    clean = tmp_path / "clean.zarr"
    reference_write(source, str(clean))
    assert_same_levels(store, str(clean))
    assert journal_names(store) == []


def journal_names(store: Any) -> list[str]:
    """What is left under the write journal's prefix of a local path or a zarr store."""
    if isinstance(store, str):
        return sorted(p.name for p in (Path(store) / ".topozarr-write").glob("**/*"))
    return s3_keys(store, ".topozarr-write/")


def test_resume_refuses_another_plan(tmp_path: Path, source: Path) -> None:
    from topozarr_plan.errors import PlanError

    from topozarr import create_pyramid

    ds = xr.open_zarr(source, chunks=None).proj.assign_crs(spatial_ref="EPSG:4326")
    store = tmp_path / "out.zarr"
    # An interrupted write: the journal is there, nothing published.
    pyramid = create_pyramid(ds, **CREATE)
    _interrupt(pyramid, store)
    other = create_pyramid(ds, **{**CREATE, "method": "max"})
    with pytest.raises(PlanError, match=r"another plan.*different .*attributes"):
        other.write(str(store), resume=True, **WRITE)
    with pytest.raises(PlanError, match=r"being written by .*resume=True"):
        pyramid.write(str(store), **WRITE)  # the killed write's lease is still there
    stats = pyramid.write(str(store), resume=True, stats=True, **WRITE)
    assert stats is not None and stats["0"]["complete"]
    clean = tmp_path / "clean.zarr"
    reference_write(source, str(clean))
    assert_same_levels(str(store), str(clean))


@pytest.mark.parametrize("old", ["missing", "older"])
def test_resume_refuses_a_journal_of_other_tiling_rules(
    tmp_path: Path, source: Path, old: str
) -> None:
    # Tile indices of another tile grid would skip tiles: such a journal is never resumed.
    import topozarr_plan.fingerprint as fingerprint
    from topozarr_engine.tiles import TILE_PLAN_VERSION
    from topozarr_plan.errors import PlanError

    from topozarr import create_pyramid

    ds = xr.open_zarr(source, chunks=None).proj.assign_crs(spatial_ref="EPSG:4326")
    store = tmp_path / "out.zarr"
    pyramid = create_pyramid(ds, **CREATE)
    real = fingerprint.describe_plan

    def older(*args: Any) -> dict[str, str]:
        described = real(*args)
        if old == "missing":  # written before the tiling rules had a version
            del described["tiles"]
        else:
            described["tiles"] = str(TILE_PLAN_VERSION - 1)
        return described

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("topozarr_plan.writer.describe_plan", older)
        _interrupt(pyramid, store)
    with pytest.raises(PlanError, match=r"another plan.*different tiles"):
        pyramid.write(str(store), resume=True, **WRITE)


def test_a_resume_removes_the_shards_being_streamed_and_nothing_else(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from topozarr_engine import shard_assembly
    from topozarr_engine.storage.shard_stream import PARTIAL_MARKER, ShardStream

    from topozarr import create_pyramid

    ds = xr.open_zarr(source, chunks=None).proj.assign_crs(spatial_ref="EPSG:4326")
    store = tmp_path / "out.zarr"
    pyramid = create_pyramid(ds, **CREATE)
    calls = {"n": 0}
    append_chunk, append_chunks = ShardStream.append_chunk, ShardStream.append_chunks

    def full_after_30() -> None:
        calls["n"] += 1
        if calls["n"] > 30:
            raise OSError(28, "No space left on device")

    def fails_mid_shard(self: Any, *args: Any) -> int:
        full_after_30()
        return append_chunk(self, *args)

    def fails_mid_batch(self: Any, *args: Any) -> int:
        full_after_30()
        return append_chunks(self, *args)

    with monkeypatch.context() as mp:
        mp.setattr(ShardStream, "append_chunk", fails_mid_shard)
        mp.setattr(ShardStream, "append_chunks", fails_mid_batch)
        # As after a kill: the temporary files of the shards being streamed stay.
        mp.setattr(shard_assembly.ChunkedShards, "abort", lambda self: None)
        with pytest.raises(Exception, match="No space left"):
            pyramid.write(str(store), **WRITE)
    partial = [p for p in store.rglob("*") if PARTIAL_MARKER in p.name]
    assert partial, "the write failed while shards were being streamed"
    foreign = [partial[0].with_name("notes.txt"), partial[0].with_name(".0.0.partial")]
    for p in foreign:
        p.write_text("not topozarr's")
    pyramid.write(str(store), resume=True, **WRITE)
    assert not [p for p in store.rglob("*") if PARTIAL_MARKER in p.name]
    assert all(p.read_text() == "not topozarr's" for p in foreign)
    clean = tmp_path / "clean.zarr"
    reference_write(source, str(clean))
    assert_same_levels(str(store), str(clean))


def _interrupt(pyramid: Any, store: Path) -> None:
    """A write that dies after some tiles, leaving its lease as a kill would."""
    import topozarr_plan.journal as journal

    calls = {"n": 0}
    real = journal.WriteJournal.release

    def die_after(self: Any, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # the process "dies": no release of the lease

    def count(block: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 40:
            raise KeyboardInterrupt
        return np.asarray(block)

    import topozarr_engine.region_writer as engine

    mp = pytest.MonkeyPatch()
    mp.setattr(engine, "materialize", count)
    mp.setattr(journal.WriteJournal, "release", die_after)
    try:
        with pytest.raises(KeyboardInterrupt):
            pyramid.write(str(store), **WRITE)
    finally:
        mp.undo()
    assert journal.WriteJournal.release is real
    assert "multiscales" not in root_attrs(str(store))
    assert (store / ".topozarr-write" / "lease.0").exists()


def test_cli_build_resume_after_a_failure(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import topozarr_engine.region_writer as engine

    from topozarr.cli import main

    args = ["build", str(source), "--crs", "EPSG:4326", "--levels", "3", "--no-progress"]
    args += ["--workers", "1", "--chunks-per-shard", "2", "--target-chunk-bytes", "1024"]
    out = tmp_path / "out.zarr"
    real = engine.materialize
    reads = {"n": 0}

    def fails_after_ten(block: Any) -> Any:
        reads["n"] += 1
        if reads["n"] > 10:
            raise OSError(28, "No space left on device")
        return real(block)

    monkeypatch.setattr(engine, "materialize", fails_after_ten)
    assert main([*args[:2], str(out), *args[2:]]) == 2
    assert "--resume" in capsys.readouterr().err
    assert "multiscales" not in root_attrs(str(out))
    monkeypatch.setattr(engine, "materialize", real)
    assert main([*args[:2], str(out), *args[2:], "--resume", "--stats"]) == 0
    clean = tmp_path / "clean.zarr"
    assert main([*args[:2], str(clean), *args[2:]]) == 0
    for level in range(3):
        a = xr.open_zarr(str(clean), group=str(level), consolidated=False).load()
        b = xr.open_zarr(str(out), group=str(level), consolidated=False).load()
        xr.testing.assert_identical(b, a)
