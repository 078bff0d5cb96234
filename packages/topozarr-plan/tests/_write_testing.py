"""Shared by the Pyramid.write tests: small layouts, sources with holes and fills, and the
independent reference (xarray coarsen(boundary="trim") of the source)."""

from __future__ import annotations

import numpy as np
import xarray as xr
import zarr

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
