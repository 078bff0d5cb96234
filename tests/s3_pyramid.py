"""The small DEM and pyramid the S3 tests write (test_s3.py, test_s3_faults.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
import xproj  # noqa: F401  (registers .proj)

from topozarr import create_pyramid


def synthetic_dem(ny: int = 96, nx: int = 160, seed: int = 7) -> xr.Dataset:
    """A float32 DEM with a NaN sea and scattered NaNs, descending latitude, EPSG:4326."""
    rng = np.random.default_rng(seed)
    lat = 60.0 - 0.25 * (np.arange(ny) + 0.5)
    lon = -20.0 + 0.25 * (np.arange(nx) + 0.5)
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    z = 900.0 * np.sin(yy / 9.0) * np.cos(xx / 13.0) + rng.normal(0.0, 25.0, (ny, nx))
    z = z.astype(np.float32)
    z[z < -250] = np.nan
    z[rng.random(z.shape) < 0.05] = np.nan
    ds = xr.Dataset(
        {"elevation": (("lat", "lon"), z, {"units": "m", "long_name": "elevation"})},
        coords={"lat": lat, "lon": lon},
    )
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


def small_pyramid() -> Any:
    """Small chunks and shards: dozens of shard objects, so every level has several and every
    injected fault is hit several times."""
    return create_pyramid(
        synthetic_dem(),
        levels=3,
        x_dim="lon",
        y_dim="lat",
        target_chunk_bytes=2048,
        chunks_per_shard=2,
    )
