"""``Pyramid.encoding`` is complete: ``as_datatree().to_zarr(encoding=pyramid.encoding)`` writes
the same array metadata (codecs, serializer, chunks, shards, fill) as ``Pyramid.write``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import xproj  # noqa: F401
import zarr
from zarr.codecs import BloscCodec, ZstdCodec
from zarr.storage import MemoryStore

from topozarr import create_pyramid


def _dataset(dtype: str, *, time: bool) -> xr.Dataset:
    rng = np.random.default_rng(3)
    shape = (2, 37, 50) if time else (37, 50)
    values = (rng.random(shape) * 200).astype(dtype)
    dims = ("time", "lat", "lon") if time else ("lat", "lon")
    if values.dtype.kind == "f":
        values[..., :5, :7] = np.nan
    coords: dict[str, Any] = {
        "lat": 80.0 - np.arange(37) * 0.5,  # descending latitude
        "lon": np.arange(50) * 0.5,
    }
    if time:
        coords["time"] = pd.date_range("2021-01-01", periods=2)
    ds = xr.Dataset({"v": (dims, values)}, coords=coords)
    if values.dtype.kind != "f":
        ds["v"].encoding["_FillValue"] = 0
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


def _array_documents(store: Any, levels: int) -> dict[str, dict[str, Any]]:
    return {
        f"{level}/v": zarr.open_array(store, path=f"{level}/v", mode="r").metadata.to_dict()
        for level in range(levels)
    }


@pytest.mark.parametrize(("dtype", "time"), [("float32", False), ("uint8", False), ("int16", True)])
def test_datatree_with_the_plans_encoding_writes_the_same_arrays(dtype: str, time: bool) -> None:
    pyramid = create_pyramid(
        _dataset(dtype, time=time),
        levels=3,
        x_dim="lon",
        y_dim="lat",
        target_chunk_bytes=512,
        chunks_per_shard=2,
    )
    for per_var in pyramid.encoding.values():
        assert {"compressors", "serializer", "chunks", "shards"} <= set(per_var["v"])
    ours, theirs = MemoryStore(), MemoryStore()
    pyramid.write(ours)
    pyramid.as_datatree().to_zarr(
        theirs, encoding=pyramid.encoding, zarr_format=3, consolidated=False
    )
    assert _array_documents(ours, 3) == _array_documents(theirs, 3)


def test_write_honours_the_codecs_a_user_puts_in_the_encoding() -> None:
    pyramid = create_pyramid(
        _dataset("float32", time=False), levels=2, x_dim="lon", y_dim="lat", chunks_per_shard=None
    )
    pyramid.encoding["/1"]["v"]["compressors"] = (ZstdCodec(level=7),)
    store = MemoryStore()
    pyramid.write(store)
    level0 = zarr.open_array(store, path="0/v", mode="r")
    level1 = zarr.open_array(store, path="1/v", mode="r")
    assert isinstance(level0.compressors[0], BloscCodec)  # the float default
    assert level1.compressors == (ZstdCodec(level=7),)
