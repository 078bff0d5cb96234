"""Variables over one spatial dim (a profile along x, a (time, x) section) are coarsened
along it with the same method; cell-bounds variables stay in level 0 only."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
import zarr
from _plan_testing import make_dataset
from _write_testing import SMALL
from topozarr_plan import create_pyramid


def _dataset() -> xr.Dataset:
    ds = make_dataset(40, 56, extra={"time": 3})
    rng = np.random.default_rng(5)
    along_x = rng.normal(0, 1, 56).astype(np.float32)
    along_x[[3, 10, 11]] = np.nan
    section = rng.normal(0, 1, (3, 56)).astype(np.float32)
    section[:, 20:24] = np.nan  # whole windows of missing values
    return ds.assign(
        along_x=("x", along_x),
        section=(("time", "x"), section),
        along_y=("y", rng.integers(0, 100, 40).astype(np.int16)),
        x_bnds=(("x", "nv"), np.stack([ds.x.values - 0.125, ds.x.values + 0.125], axis=1)),
    )


def _coarsen(da: xr.DataArray, dim: str, factor: int, method: str) -> np.ndarray:
    if factor == 1:
        return da.values
    with warnings.catch_warnings():  # all-NaN windows
        warnings.simplefilter("ignore", RuntimeWarning)
        out = getattr(da.coarsen({dim: factor}, boundary="trim"), method)().values
    if da.dtype.kind in "iu":  # the kernel's integer mean: exact, half to even
        out = np.round(out).astype(da.dtype)
    return out


@pytest.mark.parametrize("io", ["python", "rust"])
@pytest.mark.parametrize("method", ["mean", "max"])
def test_profiles_are_coarsened(tmp_path, io: str, method: str) -> None:  # type: ignore[no-untyped-def]
    ds = _dataset()
    pyramid = create_pyramid(ds, levels=3, method=method, **SMALL)  # type: ignore[arg-type]
    path = str(tmp_path / "p.zarr")
    pyramid.write(path, io=io)  # type: ignore[arg-type]
    root = zarr.open_group(path, mode="r")
    tree = xr.open_datatree(path, engine="zarr")
    for level, factor in enumerate(pyramid.factors):
        for name, dim in (("along_x", "x"), ("section", "x"), ("along_y", "y")):
            expected = _coarsen(ds[name], dim, factor, method)
            np.testing.assert_allclose(root[f"{level}/{name}"][...], expected, rtol=1e-6)
            np.testing.assert_allclose(tree[str(level)][name].values, expected, rtol=1e-6)
            assert root[f"{level}/{name}"].metadata.dimension_names == ds[name].dims
    # Bounds cannot be averaged into bounds: level 0 only, unchanged.
    np.testing.assert_array_equal(root["0/x_bnds"][...], ds["x_bnds"].values)
    assert "x_bnds" not in root["1"]


def test_profiles_in_datatree() -> None:
    ds = _dataset()
    pyramid = create_pyramid(ds, levels=3, **SMALL)
    tree = pyramid.as_datatree()
    for level, factor in enumerate(pyramid.factors):
        got = tree[str(level)]["section"].values
        np.testing.assert_allclose(got, _coarsen(ds["section"], "x", factor, "mean"), rtol=1e-6)


def test_method_dict_names_a_profile() -> None:
    ds = _dataset()
    pyramid = create_pyramid(ds, levels=2, method={"along_y": "max"}, **SMALL)
    assert pyramid.method_for("along_y") == "max"
    tree = pyramid.as_datatree()
    expected = _coarsen(ds["along_y"], "y", 2, "max")
    np.testing.assert_array_equal(tree["1"]["along_y"].values, expected)
