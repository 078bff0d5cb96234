"""Shared fixtures: small deterministic georeferenced datasets."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import numpy as np
import pytest
import xarray as xr
import xproj  # noqa: F401  (registers .proj)

_here = pathlib.Path(__file__).parent
_spec = importlib.util.spec_from_file_location("_plan_numpy_kernel", _here / "_numpy_kernel.py")
assert _spec and _spec.loader
_shim = importlib.util.module_from_spec(_spec)
sys.modules["_plan_numpy_kernel"] = _shim
_spec.loader.exec_module(_shim)
USING_SHIM = _shim.install_if_missing()


def make_dataset(
    ny: int = 64,
    nx: int = 96,
    *,
    crs: str = "EPSG:4326",
    north_up: bool = True,
    dtype: str = "float32",
    extra: dict[str, int] | None = None,
    y_dim: str = "y",
    x_dim: str = "x",
    res: float = 0.25,
    x0: float = -10.0,
    y_top: float = 50.0,
    name: str = "data",
    seed: int = 0,
) -> xr.Dataset:
    """A regular grid with cell centres, deterministic values and an xproj CRS."""
    extra = extra or {}
    rng = np.random.default_rng(seed)
    shape = (*extra.values(), ny, nx)
    dims = (*extra.keys(), y_dim, x_dim)
    if np.dtype(dtype).kind == "f":
        values = rng.normal(10, 5, size=shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -1000), min(info.max, 1000)
        values = rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    xs = x0 + res * (np.arange(nx) + 0.5)
    if north_up:
        ys = y_top - res * (np.arange(ny) + 0.5)
    else:
        ys = (y_top - res * ny) + res * (np.arange(ny) + 0.5)
    coords: dict[str, object] = {y_dim: ys, x_dim: xs}
    for d, n in extra.items():
        coords[d] = np.arange(n)
    ds = xr.Dataset({name: (dims, values, {"units": "K", "long_name": "test"})}, coords=coords)
    return ds.proj.assign_crs(spatial_ref=crs)


@pytest.fixture
def small() -> xr.Dataset:
    return make_dataset()
