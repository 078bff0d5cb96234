"""Flat (single-level) stores: recommend_encoding and attach_geozarr_metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
import zarr
from _plan_testing import make_dataset
from topozarr_metadata import ZarrLayerVarConfig
from topozarr_plan import PlanError, attach_geozarr_metadata, create_pyramid, recommend_encoding


def _dataset() -> xr.Dataset:
    ds = make_dataset(100, 120, extra={"time": 3}, name="temperature")
    return ds.assign(
        elevation=(("y", "x"), np.arange(100 * 120, dtype=np.float32).reshape(100, 120)),
        profile=("x", np.arange(120.0)),
        label=("time", np.arange(3)),
    )


def test_recommend_encoding_is_what_zarr_stores(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds = _dataset()
    encoding = recommend_encoding(ds, target_chunk_bytes=4096, chunks_per_shard=2)
    assert set(encoding) == {"temperature", "elevation", "profile"}  # no spatial dim: skipped
    path = str(tmp_path / "flat.zarr")
    ds.drop_vars("spatial_ref").to_zarr(path, zarr_format=3, consolidated=False, encoding=encoding)
    root = zarr.open_group(path, mode="r")
    for name, enc in encoding.items():
        assert root[name].chunks == enc["chunks"]
        assert root[name].shards == enc["shards"]
    back = xr.open_zarr(path, consolidated=False)
    xr.testing.assert_equal(back["temperature"], ds["temperature"].drop_vars("spatial_ref"))
    # 32 x 32 float32 chunks (4 KiB); 2 x 2 chunks per shard; time widened, never clipped.
    assert encoding["elevation"] == {"chunks": (32, 32), "shards": (64, 64)}
    assert encoding["temperature"]["chunks"] == (1, 32, 32)


def test_create_pyramid_level0_matches_recommend_encoding() -> None:
    ds = _dataset()
    pyramid = create_pyramid(ds, levels=2, target_chunk_bytes=4096, chunks_per_shard=2)
    rec = recommend_encoding(ds, target_chunk_bytes=4096, chunks_per_shard=2)
    for name in ("temperature", "elevation", "profile"):
        level0 = pyramid.encoding["/0"][name]
        assert (level0["chunks"], level0["shards"]) == (rec[name]["chunks"], rec[name]["shards"])


def test_recommend_encoding_errors() -> None:
    with pytest.raises(PlanError, match="x_dim='lon'"):
        recommend_encoding(_dataset(), x_dim="lon")
    with pytest.raises(PlanError, match="chunks_per_shard"):
        recommend_encoding(_dataset(), chunks_per_shard=3)  # type: ignore[arg-type]


def test_flat_store_metadata_validates_and_reads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("jsonschema")
    import topozarr_metadata as md

    ds = attach_geozarr_metadata(
        _dataset(), layer_hints={"elevation": ZarrLayerVarConfig(colormap="viridis")}
    )
    path = tmp_path / "flat.zarr"
    ds.to_zarr(str(path), zarr_format=3, consolidated=False, encoding=recommend_encoding(ds))
    root_doc = json.loads((path / "zarr.json").read_text())
    names = {
        p.parent.name: json.loads(p.read_text()).get("dimension_names") or []
        for p in path.glob("*/zarr.json")
    }
    assert names["temperature"] == ["time", "y", "x"]
    assert md.validate(root_doc, dimension_names=names) == []
    attrs = root_doc["attributes"]
    assert [c["name"] for c in attrs["zarr_conventions"]] == ["proj", "spatial"]
    assert attrs["proj:code"] == "EPSG:4326"
    assert "multiscales" not in attrs
    # The transform places the cell centres where the coordinates say (numpy reference).
    a, b, c, d, e, f = attrs["spatial:transform"]
    assert b == d == 0.0  # north-up, no rotation
    x, y = ds.x.values, ds.y.values
    np.testing.assert_allclose(c + a * (np.arange(x.size) + 0.5), x)
    np.testing.assert_allclose(f + e * (np.arange(y.size) + 0.5), y)
    assert attrs["spatial:shape"] == [y.size, x.size]
    back = xr.open_zarr(str(path), consolidated=False)
    np.testing.assert_array_equal(back["elevation"].values, ds["elevation"].values)
    np.testing.assert_array_equal(back["x"].values, ds["x"].values)


def test_attach_geozarr_metadata_explicit_crs_and_errors() -> None:
    ds = _dataset().drop_vars("spatial_ref")
    with pytest.raises(PlanError, match="no CRS"):
        attach_geozarr_metadata(ds)
    out = attach_geozarr_metadata(ds, crs="EPSG:3857")
    assert out.attrs["proj:code"] == "EPSG:3857"
    assert "proj:code" not in ds.attrs  # the input is left alone
    with pytest.raises(PlanError, match="not a CRS"):
        attach_geozarr_metadata(ds, crs="EPSG:nope")
    with pytest.raises(PlanError, match="layer_hints"):
        attach_geozarr_metadata(ds, crs=4326, layer_hints={"profile": ZarrLayerVarConfig()})
