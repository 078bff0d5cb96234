"""create_pyramid across grids, cubes and source kinds; the 16 GiB no-read check."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from _plan_testing import (
    assert_encoding_consistent,
    assert_metadata_valid,
    make_dataset,
    requires_dask,
)
from topozarr_plan import create_pyramid
from zarr.storage import MemoryStore, WrapperStore


def _zarr_backed(
    tmp_path: Any, ds: xr.Dataset, zchunks: dict[str, int], **open_kw: Any
) -> xr.Dataset:
    path = tmp_path / "src.zarr"
    enc = {
        v: {"chunks": tuple(zchunks.get(d, ds.sizes[d]) for d in ds[v].dims)} for v in ds.data_vars
    }
    ds.drop_vars("spatial_ref").to_zarr(path, zarr_format=3, consolidated=False, encoding=enc)
    crs = ds.proj.crs
    return xr.open_zarr(path, consolidated=False, **open_kw).proj.assign_crs(spatial_ref=crs)


CASES = {
    "north_up_4326": lambda tmp: (make_dataset(64, 96), {"levels": 4}),
    "south_up": lambda tmp: (make_dataset(64, 96, north_up=False), {"levels": 3}),
    "epsg3857_metres": lambda tmp: (
        make_dataset(128, 128, crs="EPSG:3857", res=30.0, x0=500_000.0, y_top=4_000_000.0),
        {"levels": 5},
    ),
    "time_cube": lambda tmp: (make_dataset(64, 64, extra={"time": 5}), {"levels": 3}),
    "band_cube": lambda tmp: (
        make_dataset(64, 64, extra={"band": 3}, dtype="uint8"),
        {"levels": 3},
    ),
    "odd_1001x733": lambda tmp: (make_dataset(1001, 733), {"levels": 6}),
    "sparse_1_4_16": lambda tmp: (make_dataset(256, 200), {"factors": [1, 4, 16]}),
    "dask_chunked": lambda tmp: (make_dataset(300, 400).chunk({"y": 100, "x": 128}), {"levels": 4}),
    "zarr_lazy": lambda tmp: (
        _zarr_backed(tmp, make_dataset(300, 400, extra={"time": 2}), {"time": 1, "y": 64, "x": 64}),
        {"levels": 3},
    ),
    "zarr_lazy_no_dask": lambda tmp: (
        _zarr_backed(tmp, make_dataset(300, 400), {"y": 64, "x": 64}, chunks=None),
        {"levels": 3},
    ),
    "lat_lon_names": lambda tmp: (
        make_dataset(90, 180, y_dim="lat", x_dim="lon", res=2.0, x0=-180.0, y_top=90.0),
        {"levels": 3, "x_dim": "lon", "y_dim": "lat"},
    ),
}


_NEEDS_DASK = {"dask_chunked", "zarr_lazy"}


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=requires_dask) if c in _NEEDS_DASK else c for c in sorted(CASES)],
)
def test_plans_are_valid(case: str, tmp_path: Any) -> None:
    ds, kwargs = CASES[case](tmp_path)
    p = create_pyramid(ds, **kwargs)
    assert_encoding_consistent(p)
    y_dim, x_dim = p.y_dim, p.x_dim
    layout = p.attrs["multiscales"]["layout"]
    assert [e["asset"] for e in layout] == [str(k) for k in range(len(p.factors))]
    for level, factor in enumerate(p.factors):
        tpl = p.level_templates[level]
        shape = [ds.sizes[y_dim] // factor, ds.sizes[x_dim] // factor]
        assert layout[level]["spatial:shape"] == shape
        assert p.group_attrs[level]["spatial:shape"] == shape
        assert [tpl.sizes[y_dim], tpl.sizes[x_dim]] == shape
    # Row direction follows the y coordinate.
    e = p.attrs["spatial:transform"][4]
    assert (e < 0) == bool(ds[y_dim][0] > ds[y_dim][-1])
    assert_metadata_valid(p)


def test_transform_and_code() -> None:
    ds = make_dataset(1024, 2048, res=0.17578125, x0=-180.0, y_top=90.0)
    p = create_pyramid(ds, levels=3)
    assert p.attrs["spatial:transform"] == [0.17578125, 0.0, -180.0, 0.0, -0.17578125, 90.0]
    assert p.attrs["spatial:bbox"] == [-180.0, -90.0, 180.0, 90.0]
    assert p.attrs["proj:code"] == "EPSG:4326"
    assert p.attrs["proj:wkt2"].startswith("GEOGCRS")
    assert p.group_attrs[2]["spatial:transform"] == [0.703125, 0.0, -180.0, 0.0, -0.703125, 90.0]


def test_crs_without_authority_code() -> None:
    proj4 = "+proj=lcc +lat_1=30 +lat_2=60 +lat_0=45 +lon_0=10 +x_0=0 +y_0=0 +ellps=GRS80 +units=m"
    ds = make_dataset(32, 32, crs=proj4, res=1000.0, x0=0.0, y_top=0.0)
    p = create_pyramid(ds, levels=2)
    assert "proj:code" not in p.attrs
    assert "proj:wkt2" in p.attrs
    assert_metadata_valid(p)


def test_method_recorded() -> None:
    p = create_pyramid(make_dataset(32, 32), levels=3, method="max")
    assert p.attrs["multiscales"]["resampling_method"] == "max"
    assert p.method == "max"


@requires_dask
def test_dask_source_level0_snapped() -> None:
    ds = make_dataset(3000, 3000).chunk({"y": 1000, "x": 1000})
    p = create_pyramid(ds, levels=3)
    enc = p.encoding["/0"]["data"]
    assert (enc["chunks"], enc["shards"]) == ((250, 500), (1000, 2000))
    # Coarser levels keep the pyramid-aligned power-of-two grid.
    assert p.encoding["/1"]["data"]["chunks"] == (256, 512)


@requires_dask
def test_source_not_computed_for_dask() -> None:
    import dask

    calls = []

    def boom(x: Any) -> Any:
        calls.append(1)
        raise AssertionError("source data was computed")

    import dask.array as da

    arr = da.zeros((512, 512), chunks=256, dtype="float32").map_blocks(
        boom, dtype="float32", meta=np.empty((0, 0), "float32")
    )
    ds = make_dataset(512, 512)
    ds["data"] = (("y", "x"), arr)
    with dask.config.set(scheduler="sync"):
        create_pyramid(ds, levels=4)
    assert calls == []


class CountingStore(WrapperStore[Any]):
    """Records every key read through ``get`` / ``get_partial_values``."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.keys: list[str] = []

    def _with_store(self, store: Any) -> CountingStore:
        out = type(self)(store)
        out.keys = self.keys
        return out

    async def get(self, key: str, *args: Any, **kwargs: Any) -> Any:
        self.keys.append(key)
        return await super().get(key, *args, **kwargs)

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> Any:
        key_ranges = list(key_ranges)
        self.keys.extend(k for k, _ in key_ranges)
        return await super().get_partial_values(prototype, key_ranges)


def _virtual_16gib() -> CountingStore:
    n = 65536
    res = 10.0
    mem = MemoryStore()
    root = zarr.open_group(mem, mode="w", zarr_format=3)
    # Metadata only: no chunk of the 16 GiB array is ever written.
    root.create_array(
        "elevation",
        shape=(n, n),
        dtype="float32",
        chunks=(512, 512),
        shards=(4096, 4096),
        fill_value=float("nan"),
        dimension_names=["y", "x"],
    )
    # Carried variables (level 0 only) must stay lazy too.
    root.create_array(
        "x_bnds",
        shape=(n, 2),
        dtype="float64",
        chunks=(4096, 2),
        dimension_names=["x", "nv"],
    )
    y = root.create_array("y", shape=(n,), dtype="float64", chunks=(n,), dimension_names=["y"])
    y[:] = 5_000_000.0 - res * (np.arange(n) + 0.5)
    x = root.create_array("x", shape=(n,), dtype="float64", chunks=(n,), dimension_names=["x"])
    x[:] = 300_000.0 + res * (np.arange(n) + 0.5)
    return CountingStore(mem)


@pytest.mark.parametrize("chunks", [pytest.param("dask", marks=requires_dask), None])
def test_16_gib_source_plans_fast_without_reading(chunks: str | None) -> None:
    store = _virtual_16gib()
    open_kw: dict[str, Any] = {} if chunks == "dask" else {"chunks": None}
    ds = xr.open_zarr(store, consolidated=False, **open_kw).proj.assign_crs(
        spatial_ref="EPSG:32633"
    )
    assert ds["elevation"].nbytes == 16 * 2**30
    # The wrapper sees the reads (metadata and the 1-D coordinates at open time).
    assert "elevation/zarr.json" in store.keys and "x/c/0" in store.keys
    store.keys.clear()
    t0 = time.perf_counter()
    p = create_pyramid(ds, levels=8)
    elapsed = time.perf_counter() - t0
    chunk_reads = [k for k in store.keys if k.split("/")[0] in ("elevation", "x_bnds")]
    assert chunk_reads == []
    assert elapsed < 1.0, f"create_pyramid took {elapsed:.2f}s"
    # Level 0 follows the source's 4096-cell shards: 4096 is a multiple of 512 / 1024 ...
    enc = p.encoding["/0"]["elevation"]
    assert (enc["chunks"], enc["shards"]) == ((256, 512), (1024, 2048))
    assert p.level_templates[7].sizes == {"y": 512, "x": 512}
    assert "x_bnds" in p.level_templates[0] and "x_bnds" not in p.level_templates[1]
    assert_metadata_valid(p)


def test_fill_keys_in_encoding() -> None:
    p = create_pyramid(make_dataset(32, 32, dtype="int16"), levels=2)
    assert "fill_value" not in p.encoding["/1"]["data"]  # no fill: every cell valid
    ds = make_dataset(32, 32, dtype="int16")
    ds["data"].attrs["_FillValue"] = -1
    p = create_pyramid(ds, levels=2)
    enc = p.encoding["/1"]["data"]
    assert enc["fill_value"] == enc["_FillValue"] == -1
    p = create_pyramid(make_dataset(32, 32), levels=2)
    assert np.isnan(p.encoding["/0"]["data"]["fill_value"])


@requires_dask
def test_16_gib_as_datatree_is_lazy() -> None:
    store = _virtual_16gib()
    ds = xr.open_zarr(store, consolidated=False, chunks=None).proj.assign_crs(
        spatial_ref="EPSG:32633"
    )
    p = create_pyramid(ds, levels=8)
    store.keys.clear()
    dt = p.as_datatree()
    assert [k for k in store.keys if k.split("/")[0] in ("elevation", "x_bnds")] == []
    # Every level's blocks are whole shards of that level.
    for level in range(8):
        data = dt[str(level)]["elevation"].data
        shards = p.encoding[f"/{level}"]["elevation"]["shards"]
        assert all(
            all(c % s == 0 for c in cs[:-1]) for cs, s in zip(data.chunks, shards, strict=True)
        )
