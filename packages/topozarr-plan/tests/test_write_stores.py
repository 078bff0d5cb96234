"""Pyramid.write on stores: local paths, icechunk, obstore, modes, failures, publication,
progress and statistics."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr
from _plan_testing import make_dataset
from _write_testing import SMALL, assert_levels, int_with_fill, is_published, with_holes
from topozarr_engine import RegionError
from topozarr_plan import create_pyramid
from zarr.storage import LocalStore, MemoryStore


def test_local_path_and_stats_and_progress(tmp_path):
    ds = with_holes(make_dataset(64, 64))
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    path = tmp_path / "p.zarr"
    stats = pyramid.write(str(path), stats=True, progress=True, max_workers=2)
    assert set(stats) == {"0", "1", "2"}
    s0 = stats["0"]
    assert s0["path"] == "single-pass" and s0["workers"] == 2
    assert s0["regions"] > 0 and s0["skipped"] >= 1 and s0["wall_s"] > 0
    assert s0["block_s"] == pytest.approx(s0["read_s"] + s0["reduce_s"])
    for key in ("read_s", "reduce_s", "write_s", "region_shapes"):
        assert key in s0
    assert_levels(pyramid, LocalStore(path))


def test_level_by_level_path_and_compressors_override():
    from zarr.codecs import ZstdCodec

    ds = with_holes(make_dataset(64, 64))
    pyramid = create_pyramid(ds, levels=3, method="max", **SMALL)
    pyramid.encoding["/1"]["data"]["compressors"] = (ZstdCodec(level=1),)
    store = MemoryStore()
    stats = pyramid.write(store, keep_levels_in_memory=False, stats=True)
    assert stats["1"]["path"] == "level-by-level"
    assert_levels(pyramid, store, method="max")  # max of max is exact
    root = zarr.open_group(store, mode="r")
    assert isinstance(root["1/data"].compressors[0], ZstdCodec)
    assert type(root["0/data"].compressors[0]).__name__ == "BloscCodec"
    assert is_published(store)


def test_mode_a_subset_keeps_other_levels():
    ds = with_holes(make_dataset(64, 64))
    pyramid = create_pyramid(ds, levels=3, method="max", **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    level0 = zarr.open_group(store, mode="r")["0/data"][...]
    zarr.open_group(store, mode="r+")["2/data"][...] = 0  # damage level 2
    pyramid.write(store, mode="a", levels=[2])
    assert_levels(pyramid, store, method="max")
    np.testing.assert_array_equal(zarr.open_group(store, mode="r")["0/data"][...], level0)
    assert is_published(store)


def test_errors_before_any_write(tmp_path):
    ds = make_dataset(32, 32)
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    store = MemoryStore()
    with pytest.raises(ValueError, match="io='rust'"):
        pyramid.write(store, io="rust")
    with pytest.raises(ValueError, match="mode"):
        pyramid.write(store, mode="x")
    with pytest.raises(ValueError, match="out of range"):
        pyramid.write(store, levels=[5])
    assert not dict(store._store_dict)
    pyramid.write(store)
    with pytest.raises(ValueError, match="mode='a'"):
        pyramid.write(store, levels=[1])  # mode="w" would delete levels 0 and 2
    assert_levels(pyramid, store)


def test_killed_write_is_not_published_and_rerun_completes(monkeypatch):
    import topozarr_engine.region_writer as engine_reads

    ds = with_holes(make_dataset(64, 64))
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    store = MemoryStore()
    real = engine_reads.materialize
    calls = {"n": 0}

    def flaky(block):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("connection reset")
        return real(block)

    monkeypatch.setattr(engine_reads, "materialize", flaky)
    with pytest.raises(RegionError, match=r"variable 'data', level 0, region \[.*connection reset"):
        pyramid.write(store, max_workers=1)
    assert not is_published(store)
    monkeypatch.setattr(engine_reads, "materialize", real)
    pyramid.write(store, mode="a")
    assert is_published(store)
    assert_levels(pyramid, store)


def test_level_templates_written_concurrently_and_first_failure_raised(monkeypatch):
    import threading

    import topozarr_plan.level_layout as writer

    ds = make_dataset(64, 64)
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    real = writer._write_template
    threads: dict[int, str] = {}

    def recording(pyramid, zstore, level, spatial):
        threads[level] = threading.current_thread().name
        return real(pyramid, zstore, level, spatial)

    monkeypatch.setattr(writer, "_write_template", recording)
    store = MemoryStore()
    pyramid.write(store)
    assert sorted(threads) == [0, 1, 2, 3]
    assert all(name.startswith("topozarr-meta") for name in threads.values())
    assert_levels(pyramid, store)

    def failing(pyramid, zstore, level, spatial):
        if level in (1, 3):
            raise OSError(f"template of level {level} failed")
        return real(pyramid, zstore, level, spatial)

    monkeypatch.setattr(writer, "_write_template", failing)
    with pytest.raises(OSError, match="level 1 failed"):
        pyramid.write(MemoryStore())


def test_icechunk_session_store(monkeypatch):
    import threading

    import topozarr_plan.level_layout as writer

    icechunk = pytest.importorskip("icechunk")
    repo = icechunk.Repository.create(icechunk.in_memory_storage())
    session = repo.writable_session("main")
    ds = with_holes(make_dataset(48, 48))
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    real = writer._write_template
    threads = set()

    def recording(*args):
        threads.add(threading.current_thread().name)
        return real(*args)

    # Icechunk's store deadlocks under concurrent array creation (zarr 3.4): templates are
    # written one by one on the calling thread.
    monkeypatch.setattr(writer, "_write_template", recording)
    pyramid.write(session.store)
    assert threads == {threading.current_thread().name}
    session.commit("pyramid")
    read = repo.readonly_session("main").store
    assert_levels(pyramid, read)
    assert is_published(read)


def test_obstore_object_store():
    obstore = pytest.importorskip("obstore")
    from zarr.storage import ObjectStore

    store = ObjectStore(obstore.store.MemoryStore())
    ds = with_holes(make_dataset(48, 64))
    pyramid = create_pyramid(ds, levels=3, method="min", **SMALL)
    pyramid.write(store)
    assert_levels(pyramid, store, method="min")
    assert is_published(store)


def test_templates_without_dask_placeholders():
    ds = int_with_fill(make_dataset(40, 48), "int16", -5)
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    for level, template in pyramid.level_templates.items():
        var = template["data"].variable
        eager = xr.Variable(
            var.dims, np.broadcast_to(np.zeros((), var.dtype), var.shape), var.attrs
        )
        eager.encoding = dict(var.encoding)
        pyramid.level_templates[level] = template.assign(data=eager)
    store = MemoryStore()
    pyramid.write(store)
    assert_levels(pyramid, store, fill=-5)
    level1 = xr.open_zarr(store, group="1", zarr_format=3)
    assert "spatial_ref" in level1.coords
    assert zarr.open_group(store, mode="r")["1/data"].fill_value == -5


def test_failed_rewrite_withdraws_published_metadata(monkeypatch):
    from topozarr_engine import kernel

    ds = with_holes(make_dataset(64, 64))
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    assert zarr.open_group(store, mode="r").metadata.consolidated_metadata is not None

    def broken(*args, **kwargs):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(kernel, "pyramid_tile", broken)
    with pytest.raises(RegionError, match=r"variable 'data', level 1, .*kernel exploded"):
        pyramid.write(store, mode="a", max_workers=1)
    root = zarr.open_group(store, mode="r", use_consolidated=False)
    assert "multiscales" not in root.attrs
    assert zarr.open_group(store, mode="r").metadata.consolidated_metadata is None


def test_progress_without_tqdm_fails_before_io(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError("No module named 'tqdm'")
        return real_import(name, *args, **kwargs)

    pyramid = create_pyramid(make_dataset(32, 32), levels=2, **SMALL)
    store = MemoryStore()
    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    with pytest.raises(ImportError, match=r"topozarr\[progress\]"):
        pyramid.write(store, progress=True)
    assert not dict(store._store_dict)


def test_incremental_build_publishes_when_complete():
    ds = with_holes(make_dataset(64, 64))
    pyramid = create_pyramid(ds, levels=3, method="max", **SMALL)
    store = MemoryStore()
    stats = pyramid.write(store, levels=[0, 1], stats=True)
    assert set(stats) == {"0", "1"} and stats["1"]["path"] == "single-pass"
    assert not is_published(store)  # level 2 is missing
    pyramid.write(store, mode="a", levels=[2])
    assert is_published(store)
    assert_levels(pyramid, store, method="max")


def test_modes_w_minus_and_r_plus():
    pyramid = create_pyramid(make_dataset(32, 32), levels=2, **SMALL)
    store = MemoryStore()
    with pytest.raises(ValueError, match="r\\+"):
        pyramid.write(store, mode="r+")
    pyramid.write(store, mode="w-")
    with pytest.raises(ValueError, match="w-"):
        pyramid.write(store, mode="w-")
    pyramid.write(store, mode="r+")
    assert_levels(pyramid, store)
    assert is_published(store)


def test_mode_a_on_store_without_v3_group_deletes_nothing(tmp_path):
    path = tmp_path / "p.zarr"
    path.mkdir()
    (path / "README.txt").write_text("keep me")
    pyramid = create_pyramid(make_dataset(32, 32), levels=2, **SMALL)
    pyramid.write(str(path), mode="a")
    assert (path / "README.txt").read_text() == "keep me"
    assert_levels(pyramid, LocalStore(path))
    assert is_published(LocalStore(path))


def test_stats_breakdown_puts_slow_encoding_and_slow_storing_where_they_happened(monkeypatch):
    # A deliberately slow encoder and a slow store: each delay must land in its own stage.
    import time

    from topozarr_engine import shards

    delay, calls = 0.01, {"encode": 0, "set": 0}
    real_encoder = shards._kernel_encoder

    class SlowEncoder:
        def __init__(self, inner):
            self.inner, self.shard_shape = inner, inner.shard_shape

        def encode(self, *args):
            calls["encode"] += 1
            time.sleep(delay)
            return self.inner.encode(*args)

    class SlowStore(MemoryStore):
        async def set(self, key, value, *args, **kwargs):
            if "/data/c/" in key:  # the pyramid's shards (not coordinates)
                calls["set"] += 1
                time.sleep(delay)  # blocks the event loop: concurrent sets cannot overlap
            await super().set(key, value, *args, **kwargs)

    monkeypatch.setattr(shards, "_kernel_encoder", lambda arr: SlowEncoder(real_encoder(arr)))
    pyramid = create_pyramid(make_dataset(64, 64), levels=3, **SMALL)
    stats = pyramid.write(SlowStore(), stats=True, max_workers=1)
    b = stats["0"]["breakdown"]
    assert calls["encode"] > 0 and calls["set"] > 0
    assert b["encode_s"] >= delay * calls["encode"]
    assert b["store_s"] >= delay * calls["set"]
    assert b["encode_s"] == pytest.approx(sum(stats[lv]["encode_s"] for lv in stats))
    assert b["decode_s"] == pytest.approx(sum(stats[lv]["read_s"] for lv in stats))
    parts = sum(b[k] for k in ("decode_s", "reduce_s", "encode_s", "store_s", "other_s"))
    assert parts == pytest.approx(b["workers"] * b["wall_s"], rel=1e-6)


def test_a_local_template_is_the_one_zarr_writes_in_place(tmp_path):
    # Into a local directory a template is built in memory and its files written directly;
    # the files must be those xarray and zarr-python write into a LocalStore themselves.
    import topozarr_plan.level_layout as layout

    ds = make_dataset(40, 56, extra={"time": 3})
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    in_place, staged = tmp_path / "in_place", tmp_path / "staged"
    for level in range(3):
        layout._build_template(pyramid, LocalStore(in_place), level, ["data"])
        arrays = layout._write_template(pyramid, LocalStore(staged), level, ["data"])
        # The arrays handed to the passes write into the local directory.
        arrays[f"{level}/data"][...] = level + 1
    for level in range(3):
        got = zarr.open_array(LocalStore(staged), path=f"{level}/data", mode="r")[...]
        assert (got == level + 1).all()

    def files(root):
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and "/data/c/" not in p.relative_to(root).as_posix()
        }

    assert files(staged) == files(in_place)
    assert {"0/zarr.json", "0/time/zarr.json", "2/data/zarr.json"} <= set(files(staged))


def test_a_local_template_replaces_only_its_own_level(tmp_path):
    import topozarr_plan.level_layout as layout

    pyramid = create_pyramid(make_dataset(32, 32), levels=2, **SMALL)
    stale = tmp_path / "1" / "old" / "zarr.json"  # an older level 1 holds another array
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    other = tmp_path / "0" / "keep.txt"
    other.parent.mkdir(parents=True)
    other.write_text("level 0 is not rewritten here")
    layout._write_template(pyramid, LocalStore(tmp_path), 1, ["data"])
    assert not (tmp_path / "1" / "old").exists()
    assert other.read_text() == "level 0 is not rewritten here"
    assert zarr.open_array(LocalStore(tmp_path), path="1/data", mode="r").shape == (16, 16)
