"""io="rust": the kernel's native writer stores exactly what io="python" stores.

For each dataset of the engine's acceptance list, one pyramid is written with each io path to
its own local directory; every ``zarr.json`` (root, level groups, arrays, consolidated
metadata) must be identical and every array value equal, and both must equal the independent
xarray ``coarsen`` reference.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from _plan_testing import make_dataset
from _write_testing import SMALL, assert_levels, int_with_fill, is_published, with_holes
from topozarr_plan import create_pyramid
from zarr.storage import LocalStore, MemoryStore

CASES = {
    "float-nan-mean": (lambda: with_holes(make_dataset(100, 120)), {"levels": 4}, None),
    "int16-fill-mean": (
        lambda: int_with_fill(make_dataset(64, 80), "int16", -9999),
        {"levels": 4},
        -9999,
    ),
    "uint8-max": (
        lambda: make_dataset(64, 64, dtype="uint8"),
        {"levels": 5, "method": "max"},
        None,
    ),
    "float-sum": (lambda: with_holes(make_dataset(64, 64)), {"levels": 4, "method": "sum"}, None),
    "float-min": (lambda: with_holes(make_dataset(48, 80)), {"levels": 3, "method": "min"}, None),
    "sparse-factors": (lambda: with_holes(make_dataset(90, 110)), {"factors": [1, 3, 9]}, None),
    "time-cube": (lambda: with_holes(make_dataset(40, 56, extra={"time": 3})), {"levels": 3}, None),
    "odd-sizes": (lambda: with_holes(make_dataset(53, 77)), {"levels": 4}, None),
    "south-up": (lambda: with_holes(make_dataset(40, 40, north_up=False)), {"levels": 3}, None),
}


def _metadata(root) -> dict[str, dict]:
    return {
        str(p.relative_to(root)): json.loads(p.read_text()) for p in sorted(root.rglob("zarr.json"))
    }


def _arrays(store) -> dict[str, np.ndarray]:
    out = {}
    for path, node in zarr.open_group(store, mode="r").members(max_depth=None):
        if isinstance(node, zarr.Array):
            out[path] = node[...]
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_rust_and_python_io_write_identical_stores(tmp_path, case):
    build, kwargs, fill = CASES[case]
    ds = build()
    pyramid = create_pyramid(ds, **kwargs, **SMALL)
    pyramid.write(tmp_path / "python", io="python", max_workers=2)
    pyramid.write(str(tmp_path / "rust"), io="rust", max_workers=2)
    assert _metadata(tmp_path / "rust") == _metadata(tmp_path / "python")
    py, rs = _arrays(LocalStore(tmp_path / "python")), _arrays(LocalStore(tmp_path / "rust"))
    assert py.keys() == rs.keys()
    for path in py:
        np.testing.assert_array_equal(rs[path], py[path], err_msg=path)
    if case != "time-cube":
        method = kwargs.get("method", "mean")
        assert_levels(pyramid, LocalStore(tmp_path / "rust"), method=method, fill=fill)
    assert is_published(LocalStore(tmp_path / "rust"))


def test_local_store_and_obstore_local_store(tmp_path):
    obstore = pytest.importorskip("obstore")
    ds = with_holes(make_dataset(48, 64))
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    pyramid.write(LocalStore(tmp_path / "a"), io="rust")
    (tmp_path / "b").mkdir()
    store = zarr.storage.ObjectStore(obstore.store.LocalStore(str(tmp_path / "b")))
    pyramid.write(store, io="rust")
    for root in ("a", "b"):
        assert_levels(pyramid, LocalStore(tmp_path / root))
        assert is_published(LocalStore(tmp_path / root))


def test_unsupported_store_fails_before_writing():
    pyramid = create_pyramid(make_dataset(32, 32), levels=2, **SMALL)
    store = MemoryStore()
    with pytest.raises(ValueError, match=r"io='rust' cannot write to MemoryStore.*s3://"):
        pyramid.write(store, io="rust")
    assert not dict(store._store_dict)


def test_mode_a_subset_with_rust_io_keeps_other_levels(tmp_path):
    ds = with_holes(make_dataset(64, 64))
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    pyramid.write(tmp_path, io="rust")
    level0 = zarr.open_group(LocalStore(tmp_path), mode="r")["0/data"][...]
    zarr.open_group(LocalStore(tmp_path), mode="r+")["2/data"][...] = 0  # damage level 2
    pyramid.write(tmp_path, mode="a", levels=[2], io="rust")
    assert_levels(pyramid, LocalStore(tmp_path))
    np.testing.assert_array_equal(
        zarr.open_group(LocalStore(tmp_path), mode="r")["0/data"][...], level0
    )


def test_storage_error_is_raised_and_store_not_published(tmp_path, monkeypatch):
    from topozarr_engine import RegionError
    from topozarr_engine.storage.native import NativeWriter

    ds = with_holes(make_dataset(64, 64))
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    real = NativeWriter.write_region

    def broken(self, dst, region, block):
        # A file where level 1's chunk directory must go: the upload fails in the background.
        (tmp_path / "1/data/c").write_bytes(b"x")
        real(self, dst, region, block)

    monkeypatch.setattr(NativeWriter, "write_region", broken)
    with pytest.raises((RegionError, OSError), match="1/data/c/"):
        pyramid.write(tmp_path, io="rust", max_workers=1)
    assert not is_published(LocalStore(tmp_path))
    monkeypatch.undo()
    (tmp_path / "1/data/c").unlink()
    pyramid.write(tmp_path, mode="a", io="rust")
    assert_levels(pyramid, LocalStore(tmp_path))
    assert is_published(LocalStore(tmp_path))


def test_level_by_level_passes_with_rust_io(tmp_path):
    # keep_levels_in_memory=False: one pass per coarse level, each flushed before the next.
    ds = int_with_fill(make_dataset(64, 80), "int16", -9999)
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    stats = pyramid.write(tmp_path, io="rust", keep_levels_in_memory=False, stats=True)
    assert {s["path"] for s in stats.values()} == {"level-by-level"}
    assert_levels(pyramid, LocalStore(tmp_path), fill=-9999)
    assert is_published(LocalStore(tmp_path))


def test_icechunk_session_is_refused_by_rust_io():
    icechunk = pytest.importorskip("icechunk")
    repo = icechunk.Repository.create(icechunk.in_memory_storage())
    session = repo.writable_session("main")
    pyramid = create_pyramid(make_dataset(32, 32), levels=2, **SMALL)
    with pytest.raises(ValueError, match="io='rust' cannot write to"):
        pyramid.write(session.store, io="rust")
    assert not session.has_uncommitted_changes
