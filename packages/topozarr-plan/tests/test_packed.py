"""CF-packed integers stay packed: same dtype, scale_factor, add_offset and _FillValue in
every level, and each level equals the reduction of the unpacked values, repacked."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
import zarr
from _plan_testing import make_dataset, requires_dask
from _write_testing import SMALL
from topozarr_plan import PlanError, create_pyramid

# A power-of-two scale and a small offset: unpacking and repacking are exact in floats, so
# the reference below (unpack, reduce, repack) has no rounding of its own.
SCALE, OFFSET, FILL = 0.5, 100.0, -32768


def _packed_netcdf(tmp_path, *, scale: float = SCALE) -> str:  # type: ignore[no-untyped-def]
    """A NetCDF file packed the way CF writers pack it (written and read by xarray)."""
    pytest.importorskip("h5netcdf")
    ds = make_dataset(40, 56, extra={"time": 2})
    rng = np.random.default_rng(3)
    values = np.round(rng.normal(0, 400, ds["data"].shape)) * abs(scale) + OFFSET
    values[rng.random(values.shape) < 0.2] = np.nan
    values[..., :8, :8] = np.nan  # whole windows of missing values
    ds["data"] = ds["data"].copy(data=values.astype(np.float32))
    path = str(tmp_path / "packed.nc")
    encoding = {
        "data": {"dtype": "int16", "scale_factor": scale, "add_offset": OFFSET, "_FillValue": FILL}
    }
    ds.drop_vars("spatial_ref").to_netcdf(path, engine="h5netcdf", encoding=encoding)
    return path


def _open(path: str, **kwargs) -> xr.Dataset:  # type: ignore[no-untyped-def]
    ds = xr.open_dataset(path, engine="h5netcdf", **kwargs)
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


def _reference(unpacked: xr.DataArray, factor: int, method: str) -> np.ndarray:
    """Reduce the unpacked floats with xarray, then repack (NaN -> _FillValue)."""
    if factor == 1:
        reduced = unpacked.values.astype(np.float64)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            coarse = unpacked.astype(np.float64).coarsen(y=factor, x=factor, boundary="trim")
            reduced = getattr(coarse, method)().values
    packed = np.round((reduced - OFFSET) / SCALE)
    return np.where(np.isnan(packed), FILL, packed).astype(np.int16)


@pytest.mark.parametrize(
    ("method", "chunks", "io"),
    [
        ("mean", None, "python"),
        ("max", None, "rust"),
        ("mode", None, "python"),
        pytest.param("mean", {}, "python", marks=requires_dask),
    ],
)
def test_packed_levels_are_repacked_reductions(tmp_path, method, chunks, io) -> None:  # type: ignore[no-untyped-def]
    ds = _open(_packed_netcdf(tmp_path), chunks=chunks)
    assert ds["data"].dtype.kind == "f"  # xarray decoded it
    pyramid = create_pyramid(ds, levels=3, method=method, **SMALL)
    out = str(tmp_path / "p.zarr")
    pyramid.write(out, io=io)
    root = zarr.open_group(out, mode="r")
    tree = xr.open_datatree(out, engine="zarr")
    for level, factor in enumerate(pyramid.factors):
        arr = root[f"{level}/data"]
        assert arr.dtype == np.int16
        assert arr.attrs["scale_factor"] == SCALE and arr.attrs["add_offset"] == OFFSET
        if method != "mode":  # mode is checked against the packed values below
            np.testing.assert_array_equal(arr[...], _reference(ds["data"], factor, method))
        # xarray reads every level back unpacked, with the source's packing in its encoding.
        back = tree[str(level)]["data"]
        assert back.encoding["dtype"] == np.int16
        assert back.encoding["_FillValue"] == FILL
        assert back.encoding["scale_factor"] == SCALE and back.encoding["add_offset"] == OFFSET
        if level == 0:
            np.testing.assert_array_equal(back.values, ds["data"].values)


def test_packed_mode_equals_mode_of_packed_values(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Unpacking is one-to-one, so the mode of the unpacked values is the unpacked mode.
    path = _packed_netcdf(tmp_path)
    ds = _open(path)
    tree = create_pyramid(ds, levels=2, method="mode", **SMALL).as_datatree()
    raw = xr.open_dataset(path, engine="h5netcdf", mask_and_scale=False)
    packed = raw["data"].values[..., :40, :56].reshape(2, 20, 2, 28, 2).transpose(0, 1, 3, 2, 4)
    windows = packed.reshape(2, 20, 28, 4)
    # The tree holds what write stores: the packed integers (attrs say how to unpack them).
    level1 = tree["1"]["data"]
    assert level1.dtype == np.int16 and level1.attrs["scale_factor"] == SCALE
    got = level1.values
    for idx in np.ndindex(2, 20, 28):
        valid = windows[idx][windows[idx] != FILL]
        if valid.size == 0:
            assert got[idx] == FILL
            continue
        values, counts = np.unique(valid, return_counts=True)
        assert got[idx] == values[np.argmax(counts)]  # ties: the smallest value


@pytest.mark.parametrize(
    ("method", "scale", "match"), [("sum", SCALE, "sum"), ("max", -SCALE, "negative scale")]
)
def test_packing_that_cannot_commute_is_refused(tmp_path, method, scale, match) -> None:  # type: ignore[no-untyped-def]
    ds = _open(_packed_netcdf(tmp_path, scale=scale))
    with pytest.raises(PlanError, match=match):
        create_pyramid(ds, levels=2, method=method)
    # The way out the message gives: clear the packing, write floats.
    ds["data"].encoding.clear()
    assert create_pyramid(ds, levels=2, method=method).level_templates[1]["data"].dtype.kind == "f"


def test_packing_without_fill_value_and_missing_values(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds = _open(_packed_netcdf(tmp_path)).load()
    del ds["data"].encoding["_FillValue"]
    pyramid = create_pyramid(ds, levels=2, **SMALL)
    with pytest.raises(Exception, match="_FillValue"):
        pyramid.write(str(tmp_path / "p.zarr"))
