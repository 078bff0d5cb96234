"""Attributes become plain JSON values at plan time; what JSON cannot hold, and names no store
path can hold, are rejected by ``create_pyramid`` before anything is written.

The reference for the conversion is xarray's own ``to_zarr`` of the same dataset: every
attribute a pyramid stores must read back (as JSON, through zarr-python and through xarray)
exactly as in a store xarray writes itself.
"""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from _plan_testing import make_dataset
from topozarr_plan import create_pyramid
from topozarr_plan.attrs import json_value
from topozarr_plan.errors import PlanError

NUMPY_ATTRS: dict[str, Any] = {
    "valid_min": np.float32(-5.5),
    "valid_max": np.float64(99.25),
    "valid_range": np.array([-5.5, 99.25], np.float32),
    "flag_values": np.array([1, 2, 4], np.int8),
    "flag_masks": np.uint16(7),
    "count": np.int64(2**40),
    "is_dem": np.bool_(True),
    "label": np.str_("height"),
    "scalar_array": np.array(3.5),
    "nan": np.float32("nan"),
    "inf": np.float64("inf"),
    "neg_inf": -np.inf,
}


def _dataset() -> xr.Dataset:
    ds = make_dataset(32, 48, extra={"time": 2})
    ds["data"].attrs.update(NUMPY_ATTRS)
    ds["x"].attrs.update(step=np.float64(0.25), axis=np.str_("X"))
    ds["time"].attrs["offsets"] = np.arange(2, dtype=np.int32)
    ds["weight"] = ("time", np.ones(2, np.float32), {"scale": np.float32(2.0)})  # carried
    ds.attrs.update(version=np.int32(3), history=["made", np.str_("by test")])
    ds.attrs["nested"] = {"range": np.array([0.5, 1.5]), "n": np.int16(4)}
    return ds


def _stored(root: Path, path: str) -> dict[str, Any]:
    return dict(json.loads((root / path / "zarr.json").read_text())["attributes"])


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return type(got) is type(want) and got == want


@pytest.mark.parametrize("value", list(NUMPY_ATTRS.values()), ids=list(NUMPY_ATTRS))
def test_json_value_matches_xarrays_encoding(value: Any) -> None:
    from xarray.backends.zarr import encode_zarr_attr_value

    got = json_value(value)
    want = encode_zarr_attr_value(value)
    assert _same(got, want), (got, want)
    json.dumps(got, allow_nan=True)  # what zarr-python does with it


def test_pyramid_attrs_are_stored_as_xarray_stores_them(tmp_path: Path) -> None:
    ds = _dataset()
    ref = tmp_path / "xarray.zarr"
    # The reference: xarray's own to_zarr of the same variables (nested dicts flattened by
    # hand: xarray converts only top-level numpy values).
    plain = ds.drop_vars("spatial_ref").copy()
    plain.attrs["nested"] = {"range": [0.5, 1.5], "n": 4}
    plain.to_zarr(ref, zarr_format=3, consolidated=False)
    out = tmp_path / "p.zarr"
    create_pyramid(ds, levels=2).write(out)

    for level in (0, 1):
        for path in ("data", "x", "time", "weight"):
            want = _stored(ref, path)
            got = _stored(out, f"{level}/{path}")
            for key in ds[path].attrs:
                assert key in got, (level, path, key)
                assert _same(got[key], want[key]) or got[key] == want[key], (path, key)
        group = _stored(out, str(level))
        for key in ("version", "history", "nested"):
            assert group[key] == _stored(ref, "")[key]

    # NaN and infinities as zarr-python writes them, and read back by zarr-python and xarray.
    text = (out / "1" / "data" / "zarr.json").read_text()
    assert '"nan": NaN' in text and '"inf": Infinity' in text and '"neg_inf": -Infinity' in text
    arr = zarr.open_array(out / "1" / "data", mode="r")
    back = xr.open_zarr(out, group="1", consolidated=False)["data"].attrs
    for key, value in NUMPY_ATTRS.items():
        np.testing.assert_array_equal(np.asarray(arr.attrs[key]), np.asarray(value))
        np.testing.assert_array_equal(np.asarray(back[key]), np.asarray(value))


def test_attrs_are_converted_at_plan_time() -> None:
    pyramid = create_pyramid(_dataset(), levels=2)
    for level, template in pyramid.level_templates.items():
        for name in ("data", "x", "time", "weight"):
            for key, value in template[name].attrs.items():
                assert not isinstance(value, np.ndarray | np.generic), (level, name, key)
        json.dumps(template.attrs, allow_nan=True)
    assert pyramid.source["data"].attrs["valid_min"].dtype == np.float32  # source untouched


BAD_VALUES = {
    "datetime": datetime.datetime(2020, 1, 1, 12),
    "date": datetime.date(2020, 1, 1),
    "set": {1, 2},
    "bytes": b"abc",
    "datetime64": np.datetime64("2020-01-01"),
    "datetime64_array": np.array(["2020-01-01"], dtype="datetime64[ns]"),
    "timedelta64": np.timedelta64(1, "D"),
    "complex": 1 + 2j,
    "object": object(),
    "nested_set": [1, {2}],
    "int_keys": {1: "a"},
}


@pytest.mark.parametrize("owner", ["data", "x", "weight", None])
@pytest.mark.parametrize("value", list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_unserialisable_attrs_are_rejected_before_any_write(
    tmp_path: Path, owner: str | None, value: Any
) -> None:
    ds = _dataset()
    (ds.attrs if owner is None else ds[owner].attrs)["bad_key"] = value
    out = tmp_path / "out.zarr"
    with pytest.raises(PlanError) as info:
        create_pyramid(ds, levels=2).write(out)
    message = str(info.value)
    assert "'bad_key'" in message and "\n" not in message
    assert ("the dataset" if owner is None else repr(owner)) in message
    assert not out.exists()


def test_non_str_attr_key_is_rejected() -> None:
    ds = _dataset()
    ds["data"].attrs[3] = "three"
    with pytest.raises(PlanError, match="attribute key 3 of variable 'data'"):
        create_pyramid(ds, levels=2)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("variable", "v" * 300),
        ("variable", "é" * 128),  # 256 bytes in UTF-8
        ("dimension", "d" * 300),
    ],
)
def test_names_too_long_for_a_path_are_rejected(tmp_path: Path, kind: str, name: str) -> None:
    ds = make_dataset(16, 16)
    # A dimension without a coordinate: a name in dimension_names only.
    ds = ds.rename(data=name) if kind == "variable" else ds.expand_dims({name: 1})
    out = tmp_path / "out.zarr"
    with pytest.raises(PlanError, match=f"^{kind} name .* bytes long in UTF-8") as info:
        create_pyramid(ds, levels=1).write(out)
    assert "255" in str(info.value) and len(str(info.value)) < 300
    assert not out.exists()


def test_longest_name_that_fits_is_written(tmp_path: Path) -> None:
    name = "é" * 127  # 254 bytes in UTF-8
    ds = make_dataset(16, 16).rename(data=name)
    out = tmp_path / "out.zarr"
    create_pyramid(ds, levels=2).write(out)
    want = ds[name].coarsen(y=2, x=2).mean().values
    np.testing.assert_allclose(zarr.open_group(out, mode="r")[f"1/{name}"][...], want, rtol=1e-6)
