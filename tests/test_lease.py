"""One writer at a time, and a partial rewrite over an interrupted write never publishes."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import xproj  # noqa: F401
import zarr
from topozarr_plan.journal import LeaseError

from topozarr import create_pyramid

SMALL = {"levels": 3, "target_chunk_bytes": 1024, "chunks_per_shard": 2}
WRITE = {"max_workers": 2, "max_region_bytes": 4096}


def dataset() -> xr.Dataset:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(128, 128)).astype("float32")
    values[rng.random(values.shape) < 0.1] = np.nan
    ds = xr.Dataset(
        {"data": (("y", "x"), values)},
        coords={"y": np.arange(128.0)[::-1] + 0.5, "x": np.arange(128.0) + 0.5},
    )
    return ds.proj.assign_crs(spatial_ref="EPSG:32633")


@pytest.fixture
def slow_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each tile read takes 20 ms, so two writes started together overlap."""
    import topozarr_engine.region_writer as engine

    real = engine.materialize

    def slow(block: Any) -> Any:
        time.sleep(0.02)
        return real(block)

    monkeypatch.setattr(engine, "materialize", slow)


def race(pyramid: Any, path: Path) -> list[Any]:
    """Two threads start the same write into ``path`` at once: ("ok" or the error, seconds)."""
    barrier = threading.Barrier(2)
    outcomes: list[Any] = [None, None]

    def writer(i: int) -> None:
        barrier.wait()
        start = time.perf_counter()
        try:
            pyramid.write(str(path), **WRITE)
            outcomes[i] = ("ok", time.perf_counter() - start)
        except Exception as exc:
            outcomes[i] = (exc, time.perf_counter() - start)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def killed_write(pyramid: Any, path: Path, **kwargs: Any) -> None:
    """A write that dies after a few tiles and leaves its lease behind, as ``kill -9`` would."""
    import topozarr_engine.region_writer as engine
    import topozarr_plan.journal as journal

    calls = {"n": 0}
    real = engine.materialize

    def dies(block: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return real(block)

    def no_release(self: Any) -> None:
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "materialize", dies)
        mp.setattr(journal.WriteJournal, "release", no_release)
        with pytest.raises(KeyboardInterrupt):
            pyramid.write(str(path), **WRITE, **kwargs)


def assert_same_as_clean(pyramid: Any, path: Path, clean: Path) -> None:
    """Every level of ``path`` equals a clean write of the same pyramid, read by zarr-python."""
    pyramid.write(str(clean), **WRITE)
    a = zarr.open_group(str(clean), mode="r")
    b = zarr.open_group(str(path), mode="r")
    for level in range(SMALL["levels"]):
        np.testing.assert_array_equal(b[f"{level}/data"][...], a[f"{level}/data"][...])


def published(path: Path) -> bool:
    return "multiscales" in zarr.open_group(str(path), mode="r", use_consolidated=False).attrs


def test_two_concurrent_writers_exactly_one_proceeds(tmp_path: Path, slow_reads: None) -> None:
    pyramid = create_pyramid(dataset(), **SMALL)
    clean = tmp_path / "clean.zarr"
    pyramid.write(str(clean), **WRITE)
    want = zarr.open_group(str(clean), mode="r")
    for rep in range(20):
        path = tmp_path / f"race-{rep}.zarr"
        outcomes = race(pyramid, path)
        oks = [o for o in outcomes if o[0] == "ok"]
        assert len(oks) == 1, outcomes
        exc, seconds = next(o for o in outcomes if o[0] != "ok")
        assert isinstance(exc, LeaseError), repr(exc)
        # Fails fast: before the winner is half done (timings on a shared machine are loose).
        assert seconds < oks[0][1] / 2, (seconds, oks[0][1])
        assert "being written by" in str(exc) or "taken by another writer" in str(exc)
        assert str(path) in str(exc)
        assert published(path)
        got = zarr.open_group(str(path), mode="r")
        for level in range(SMALL["levels"]):
            np.testing.assert_array_equal(got[f"{level}/data"][...], want[f"{level}/data"][...])
        assert not (path / ".topozarr-write").exists()


def test_partial_rewrite_after_a_kill_never_publishes(tmp_path: Path) -> None:
    pyramid = create_pyramid(dataset(), **SMALL)
    path = tmp_path / "p.zarr"
    killed_write(pyramid, path)
    assert not published(path)
    # The killed write's lease keeps a partial rewrite out...
    with pytest.raises(LeaseError, match=r"resume=True"):
        pyramid.write(str(path), mode="a", levels=[2], **WRITE)
    assert not published(path)
    # ... and once the user abandons that write, the rewrite runs but cannot publish: levels 0
    # and 1 were never completed.
    shutil.rmtree(path / ".topozarr-write")
    stats = pyramid.write(str(path), mode="a", levels=[2], stats=True, **WRITE)
    assert stats is not None and stats["2"]["complete"] is False
    assert not published(path)
    # Writing the missing levels completes and publishes the pyramid.
    pyramid.write(str(path), mode="a", levels=[0, 1], **WRITE)
    assert published(path)
    assert_same_as_clean(pyramid, path, tmp_path / "clean.zarr")


def test_killed_level_rewrite_of_a_published_pyramid_resumes_and_publishes(
    tmp_path: Path,
) -> None:
    pyramid = create_pyramid(dataset(), **SMALL)
    path = tmp_path / "p.zarr"
    pyramid.write(str(path), **WRITE)
    zarr.open_group(str(path), mode="r+")["2/data"][...] = 0  # damage level 2
    killed_write(pyramid, path, mode="a", levels=[2])
    assert not published(path)  # withdrawn while level 2 is rewritten
    pyramid.write(str(path), mode="a", levels=[2], resume=True, **WRITE)
    assert published(path)  # levels 0 and 1 were complete before the rewrite began
    assert_same_as_clean(pyramid, path, tmp_path / "clean.zarr")
