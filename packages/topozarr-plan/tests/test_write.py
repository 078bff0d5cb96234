"""Pyramid.write end to end: every level against xarray coarsen(boundary="trim") of the source."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr
from _plan_testing import make_dataset
from topozarr_engine import RegionError
from topozarr_plan import create_pyramid
from topozarr_plan.level_layout import non_spatial_encoding
from zarr.storage import LocalStore, MemoryStore

SMALL = {"target_chunk_bytes": 1024, "chunks_per_shard": 2}  # 16x16 float32 chunks, 32x32 shards


def with_holes(ds: xr.Dataset, name: str = "data", frac: float = 0.2, seed: int = 1) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    ds = ds.copy()
    values = ds[name].values.copy()
    values[rng.random(values.shape) < frac] = np.nan
    # A whole region of missing values: skipped on write, NaN (or 0 for sum) when read.
    values[..., :32, :32] = np.nan
    ds[name] = ds[name].copy(data=values)
    return ds


def int_with_fill(ds: xr.Dataset, dtype: str, fill: int, *, frac: float = 0.2) -> xr.Dataset:
    rng = np.random.default_rng(2)
    values = ds["data"].values.astype(dtype)
    values[rng.random(values.shape) < frac] = fill
    ds = ds.copy()
    ds["data"] = ds["data"].copy(data=values)
    ds["data"].encoding["_FillValue"] = fill
    return ds


def reference(ds: xr.Dataset, name: str, factor: int, method: str, fill=None) -> np.ndarray:
    """xarray coarsen(boundary="trim") of the source, with the fill value masked."""
    da = ds[name]
    dtype = da.dtype
    if factor == 1:
        return da.values
    if fill is not None:
        da = da.where(da != fill)
    out = getattr(da.coarsen({"y": factor, "x": factor}, boundary="trim"), method)()
    values = out.values
    if dtype.kind in "iu":
        if method == "mean":
            values = np.round(values)  # half to even, like the kernel
        if method == "sum":
            return values.astype(np.int64)
        values = np.where(np.isnan(values), fill if fill is not None else 0, values)
        return values.astype(dtype)
    return values.astype(dtype)


def assert_levels(pyramid, store, name="data", method="mean", fill=None, source=None):
    source = pyramid.source if source is None else source
    root = zarr.open_group(store, mode="r")
    for level, factor in enumerate(pyramid.factors):
        got = root[f"{level}/{name}"][...]
        expected = reference(source, name, factor, method, fill)
        assert got.shape == expected.shape, level
        if got.dtype.kind == "f":
            np.testing.assert_allclose(got, expected, rtol=2e-6, equal_nan=True, err_msg=str(level))
        else:
            np.testing.assert_array_equal(got, expected, err_msg=f"level {level}")


def is_published(store) -> bool:
    return "multiscales" in zarr.open_group(store, mode="r", use_consolidated=False).attrs


def test_float_mean_with_nan_memory_store():
    ds = with_holes(make_dataset(100, 120))
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    store = MemoryStore()
    assert pyramid.write(store, max_workers=2) is None
    assert_levels(pyramid, store)
    root = zarr.open_group(store, mode="r")
    assert dict(root.attrs) == pyramid.attrs or set(pyramid.attrs) <= set(root.attrs)
    arr = root["1/data"]
    assert np.isnan(arr.fill_value)
    assert arr.metadata.dimension_names == ("y", "x")
    assert tuple(arr.chunks) == tuple(pyramid.encoding["/1"]["data"]["chunks"])
    assert tuple(arr.shards) == tuple(pyramid.encoding["/1"]["data"]["shards"])
    assert root.metadata.consolidated_metadata is not None
    # Level group attrs and coordinates come from the templates.
    level1 = xr.open_zarr(store, group="1", zarr_format=3)
    np.testing.assert_array_equal(level1["x"].values, pyramid.level_templates[1]["x"].values)
    for key, value in pyramid.level_templates[1].attrs.items():
        assert level1.attrs[key] == value


def test_int16_fill_mean():
    ds = int_with_fill(make_dataset(64, 80), "int16", -9999)
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    assert_levels(pyramid, store, fill=-9999)
    assert zarr.open_group(store, mode="r")["2/data"].fill_value == -9999


def test_uint8_max():
    ds = make_dataset(64, 64, dtype="uint8")
    pyramid = create_pyramid(ds, levels=5, method="max", **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    assert_levels(pyramid, store, method="max")


@pytest.mark.parametrize("dtype", ["float32", "int16"])
def test_sum(dtype):
    ds = make_dataset(64, 64)
    ds = with_holes(ds) if dtype == "float32" else int_with_fill(ds, dtype, -1)
    pyramid = create_pyramid(ds, levels=4, method="sum", **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    assert_levels(pyramid, store, method="sum", fill=None if dtype == "float32" else -1)


def test_min():
    ds = with_holes(make_dataset(48, 80))
    pyramid = create_pyramid(ds, levels=3, method="min", **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    assert_levels(pyramid, store, method="min")


@pytest.mark.parametrize("factors", [[1, 4, 16], [1, 3, 9]])
def test_sparse_factors(factors):
    ds = with_holes(make_dataset(90, 110))
    pyramid = create_pyramid(ds, factors=factors, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    assert_levels(pyramid, store)


def test_time_cube():
    ds = with_holes(make_dataset(40, 56, extra={"time": 3}))
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    root = zarr.open_group(store, mode="r")
    for level, factor in enumerate(pyramid.factors):
        expected = reference(ds, "data", factor, "mean")
        np.testing.assert_allclose(root[f"{level}/data"][...], expected, rtol=2e-6, equal_nan=True)
    assert "time" in zarr.open_group(store, path="1", mode="r")


def test_odd_sizes():
    ds = with_holes(make_dataset(53, 77))
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    assert_levels(pyramid, store)


def test_write_matches_as_datatree():
    ds = with_holes(make_dataset(64, 72))
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    tree = pyramid.as_datatree()
    written = xr.open_datatree(store, engine="zarr", zarr_format=3)
    for level in range(3):
        a = written[str(level)].to_dataset()["data"].values
        b = tree[str(level)].to_dataset()["data"].values
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=2e-6, equal_nan=True)


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


def test_float_with_numeric_fill_value():
    ds = with_holes(make_dataset(48, 64))
    values = ds["data"].values.copy()
    values[40:, 40:] = -9999.0
    ds["data"] = ds["data"].copy(data=values)
    ds["data"].encoding["_FillValue"] = -9999.0
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    root = zarr.open_group(store, mode="r")
    assert root["1/data"].fill_value == -9999.0
    for level, factor in enumerate(pyramid.factors):
        da = ds["data"].where(ds["data"] != -9999.0)
        if factor > 1:
            da = da.coarsen({"y": factor, "x": factor}, boundary="trim").mean()
        # Windows with no valid cell hold the fill value, NaN holes included.
        expected = np.where(np.isnan(da.values), -9999.0, da.values) if factor > 1 else values
        np.testing.assert_allclose(root[f"{level}/data"][...], expected, rtol=2e-6, equal_nan=True)


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


@pytest.mark.parametrize("kind", ["float", "int"])
def test_layout_matches_xarray_to_zarr(kind):
    """The spatial arrays' metadata is what xarray's own to_zarr would write."""
    ds = make_dataset(40, 48, extra={"time": 2})
    ds["elev"] = ds["data"].isel(time=0).astype("int16")
    ds["elev"].encoding["_FillValue"] = -9999
    if kind == "int":
        ds = ds.drop_vars("data")
    pyramid = create_pyramid(ds, levels=2, **SMALL)
    ours = MemoryStore()
    pyramid.write(ours)
    for level in (0, 1):
        template = pyramid.level_templates[level]
        enc = {}
        for name in pyramid.encoding["/0"]:
            e = dict(pyramid.encoding[f"/{level}"][name])
            fill = pyramid.fill_values[name]
            e.update(fill_value=fill, _FillValue=fill)
            enc[name] = e
        # Coordinates along time get a fixed chunk length (appends keep the layout).
        enc.update(non_spatial_encoding(template.drop_vars(list(enc)), ("x", "y")))
        theirs = MemoryStore()
        template.to_zarr(
            theirs, group=str(level), compute=False, consolidated=False, zarr_format=3, encoding=enc
        )
        g_ours = zarr.open_group(ours, path=str(level), mode="r")
        g_theirs = zarr.open_group(theirs, path=str(level), mode="r")
        assert dict(g_ours.attrs) == dict(g_theirs.attrs)
        assert sorted(g_ours.array_keys()) == sorted(g_theirs.array_keys())
        for name in g_theirs.array_keys():
            a, b = g_ours[name], g_theirs[name]
            assert dict(a.attrs) == dict(b.attrs), name
            assert a.metadata.dimension_names == b.metadata.dimension_names
            assert (a.shape, a.dtype, a.chunks, a.shards) == (b.shape, b.dtype, b.chunks, b.shards)
            assert a.fill_value == b.fill_value or (
                np.isnan(a.fill_value) and np.isnan(b.fill_value)
            )
        reopened = xr.open_zarr(ours, group=str(level), zarr_format=3)
        assert set(reopened.coords) == set(template.coords)


def test_dask_source_with_lazy_non_spatial_variables():
    pytest.importorskip("dask")
    ds = with_holes(make_dataset(48, 64, extra={"time": 2}))
    ds["time_weight"] = ("time", np.array([0.25, 0.75]))
    ds = ds.chunk({"time": 1, "y": 16, "x": 32})
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    for level, factor in enumerate(pyramid.factors):
        got = xr.open_zarr(store, group=str(level), zarr_format=3)
        np.testing.assert_array_equal(got["time_weight"].values, [0.25, 0.75])
        expected = reference(ds.compute(), "data", factor, "mean")
        np.testing.assert_allclose(got["data"].values, expected, rtol=2e-6, equal_nan=True)


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


def test_transposed_dims_and_extra_trailing_dim():
    ds = with_holes(make_dataset(40, 56, extra={"band": 2}))
    ds = ds.transpose("x", "band", "y")
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    root = zarr.open_group(store, mode="r")
    for level, factor in enumerate(pyramid.factors):
        expected = reference(ds, "data", factor, "mean")
        got = root[f"{level}/data"]
        assert got.metadata.dimension_names == ("x", "band", "y")
        np.testing.assert_allclose(got[...], expected, rtol=2e-6, equal_nan=True)


def test_mode_a_on_store_without_v3_group_deletes_nothing(tmp_path):
    path = tmp_path / "p.zarr"
    path.mkdir()
    (path / "README.txt").write_text("keep me")
    pyramid = create_pyramid(make_dataset(32, 32), levels=2, **SMALL)
    pyramid.write(str(path), mode="a")
    assert (path / "README.txt").read_text() == "keep me"
    assert_levels(pyramid, LocalStore(path))
    assert is_published(LocalStore(path))


EXACT_CASES = [
    pytest.param("float32", None, id="float32-mean-nan"),
    pytest.param("int16", -9999, id="int16-mean-fill"),
]


def _exact_case(dtype, fill):
    # Odd sizes (trimmed edges), holes everywhere and a whole missing block: a mean of means
    # (or an integer mean rounded per level) differs from the reference on such data.
    ds = with_holes(make_dataset(150, 110), frac=0.35)
    if fill is not None:
        values = ds["data"].values
        ds = int_with_fill(ds.fillna(fill), dtype, fill, frac=0.0)
        assert np.isnan(values).any()
    return ds


@pytest.mark.parametrize(("dtype", "fill"), EXACT_CASES)
def test_level_subset_rewrite_is_exact(dtype, fill):
    ds = _exact_case(dtype, fill)
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    store = MemoryStore()
    pyramid.write(store)
    for level in (1, 3):
        zarr.open_group(store, mode="r+")[f"{level}/data"][...] = 0  # damage both
    stats = pyramid.write(store, mode="a", levels=[1, 3], stats=True)
    assert stats["3"]["path"] == "single-pass"
    assert_levels(pyramid, store, fill=fill)
    assert is_published(store)


@pytest.mark.parametrize(("dtype", "fill"), EXACT_CASES)
def test_level_subset_without_other_levels_is_exact(dtype, fill):
    ds = _exact_case(dtype, fill)
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    store = MemoryStore()
    stats = pyramid.write(store, levels=[2], stats=True)  # computed from the source
    # Level 0 is read but not written: its reads count for level 2.
    assert stats["2"]["bytes_read"] == ds["data"].nbytes and stats["2"]["read_s"] > 0
    root = zarr.open_group(store, mode="r")
    expected = reference(ds, "data", pyramid.factors[2], "mean", fill)
    got = root["2/data"][...]
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=2e-6, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, expected)
    assert "0" not in root and not is_published(store)


@pytest.mark.parametrize(("dtype", "fill"), EXACT_CASES)
def test_keep_levels_in_memory_false_is_exact(dtype, fill):
    ds = _exact_case(dtype, fill)
    pyramid = create_pyramid(ds, levels=4, **SMALL)
    store = MemoryStore()
    stats = pyramid.write(store, keep_levels_in_memory=False, stats=True)
    assert stats["2"]["path"] == "level-by-level"
    assert_levels(pyramid, store, fill=fill)
    assert is_published(store)


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
