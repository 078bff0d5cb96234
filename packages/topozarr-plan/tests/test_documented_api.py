"""Walk the documented API (README "Public API", docstrings): every parameter, field, error."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

import numpy as np
import pytest
import topozarr_plan
from _plan_testing import make_dataset
from topozarr_plan import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_CHUNKS_PER_SHARD,
    ChunksPerShard,
    CoarseningMethod,
    Pyramid,
    create_pyramid,
)


def test_version() -> None:
    assert topozarr_plan.__version__ == "0.1.0"


def test_create_pyramid_signature() -> None:
    sig = inspect.signature(create_pyramid)
    params = sig.parameters
    assert list(params) == [
        "ds",
        "levels",
        "factors",
        "x_dim",
        "y_dim",
        "method",
        "target_chunk_bytes",
        "chunks_per_shard",
        "layer_hints",
    ]
    assert params["ds"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert params["levels"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    for name in list(params)[2:]:
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    defaults = {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}
    assert defaults == {
        "levels": None,
        "factors": None,
        "x_dim": "x",
        "y_dim": "y",
        "method": "mean",
        "target_chunk_bytes": DEFAULT_CHUNK_BYTES,
        "chunks_per_shard": DEFAULT_CHUNKS_PER_SHARD,
        "layer_hints": None,
    }


def test_defaults_and_aliases() -> None:
    # "~500 KB" per chunk, 4 chunks per shard along each spatial dimension.
    assert 400_000 <= DEFAULT_CHUNK_BYTES <= 600_000
    assert DEFAULT_CHUNKS_PER_SHARD == 4
    assert set(typing.get_args(ChunksPerShard)) == {1, 2, 4, 8, 16, 32}
    assert {"mean", "max", "min", "sum"} <= set(typing.get_args(CoarseningMethod))


def test_pyramid_fields_in_documented_order() -> None:
    fields = dataclasses.fields(Pyramid)
    names = [f.name for f in fields]
    assert names[:9] == [
        "source",
        "level_templates",
        "encoding",
        "attrs",
        "x_dim",
        "y_dim",
        "method",
        "factors",
        "fill_values",
    ]
    by_name = {f.name: f for f in fields}
    for required in names[:7]:
        assert by_name[required].default is dataclasses.MISSING
        assert by_name[required].default_factory is dataclasses.MISSING
    assert by_name["factors"].default_factory() == []  # type: ignore[misc]
    assert by_name["fill_values"].default_factory() == {}  # type: ignore[misc]
    # The extra field has a default so the documented constructor call still works.
    assert names[9:] == ["group_attrs"]
    p = Pyramid(
        source=make_dataset(),
        level_templates={},
        encoding={},
        attrs={},
        x_dim="x",
        y_dim="y",
        method="mean",
    )
    assert p.factors == [] and p.fill_values == {} and p.group_attrs == {}


def test_write_signature() -> None:
    from topozarr_engine import DEFAULT_MAX_REGION_BYTES

    params = inspect.signature(Pyramid.write).parameters
    assert list(params) == [
        "self",
        "store",
        "mode",
        "max_workers",
        "levels",
        "max_region_bytes",
        "progress",
        "stats",
        "keep_levels_in_memory",
        "io",
        "resume",  # ours, after the documented ones
        "append_dim",
        "client",
    ]
    for name in list(params)[2:]:
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
    assert {n: p.default for n, p in list(params.items())[2:]} == {
        "mode": "w",
        "max_workers": None,
        "levels": None,
        "max_region_bytes": DEFAULT_MAX_REGION_BYTES,
        "progress": False,
        "stats": False,
        "keep_levels_in_memory": None,
        "io": "python",
        "resume": False,
        "append_dim": None,
        "client": None,
    }
    assert DEFAULT_MAX_REGION_BYTES == 256 * 1024 * 1024


def test_as_datatree_exists() -> None:
    assert list(inspect.signature(Pyramid.as_datatree).parameters) == ["self"]


def test_levels_means_cumulative_powers_of_two() -> None:
    p = create_pyramid(make_dataset(64, 64), levels=4)
    assert p.factors == [1, 2, 4, 8]
    assert [p.level_templates[k].sizes["x"] for k in range(4)] == [64, 32, 16, 8]


def test_sparse_factors_documented_example() -> None:
    ds = make_dataset(64, 64, x_dim="lon", y_dim="lat")
    p = create_pyramid(ds, factors=[1, 4, 16], x_dim="lon", y_dim="lat")
    assert p.factors == [1, 4, 16]
    assert [p.level_templates[k].sizes["lat"] for k in range(3)] == [64, 16, 4]
    assert p.x_dim == "lon" and p.y_dim == "lat" and p.method == "mean"


def test_returns_pyramid_with_documented_fields() -> None:
    ds = make_dataset(64, 64)
    p = create_pyramid(ds, levels=2)
    assert isinstance(p, Pyramid)
    assert p.source is ds
    assert set(p.level_templates) == {0, 1}
    assert set(p.encoding) == {"/0", "/1"}
    assert {"chunks", "shards"} <= set(p.encoding["/0"]["data"])
    assert "multiscales" in p.attrs and "proj:wkt2" in p.attrs and "spatial:transform" in p.attrs
    assert np.isnan(p.fill_values["data"])


def test_documented_errors() -> None:
    ds = make_dataset(64, 64)
    # "If ds has no CRS"
    with pytest.raises(ValueError, match="no CRS"):
        create_pyramid(ds.drop_vars("spatial_ref"), levels=2)
    # "chunks_per_shard is not a power of 2 in the range 1-32"
    for bad in (0, 3, 64, 2.0, True):
        with pytest.raises(ValueError, match="power of 2"):
            create_pyramid(ds, levels=2, chunks_per_shard=bad)  # type: ignore[arg-type]
    # "a spatial variable has more than 4 dimensions (topozarr-core kernel limit)"
    big = make_dataset(8, 8, extra={"a": 1, "b": 1, "c": 1})
    with pytest.raises(ValueError, match="at most 4"):
        create_pyramid(big, levels=1)
    # "Exactly one of levels / factors must be given."
    with pytest.raises(ValueError, match="exactly one"):
        create_pyramid(ds)
    with pytest.raises(ValueError, match="exactly one"):
        create_pyramid(ds, 2, factors=[1, 2])
    # factors: "Must start at 1, be strictly increasing, and have each entry integer-divide
    # the next."
    with pytest.raises(ValueError, match="start at 1"):
        create_pyramid(ds, factors=[2, 4])
    with pytest.raises(ValueError, match="strictly increasing"):
        create_pyramid(ds, factors=[1, 4, 4])
    with pytest.raises(ValueError, match="divide"):
        create_pyramid(ds, factors=[1, 4, 6])


def test_chunks_per_shard_none_disables_sharding() -> None:
    p = create_pyramid(make_dataset(64, 64), levels=2, chunks_per_shard=None)
    for level in p.encoding.values():
        for enc in level.values():
            assert "shards" not in enc and "chunks" in enc


def test_layer_hints_written_to_zarr_layer_key() -> None:
    from topozarr_metadata import ZarrLayerVarConfig

    hints = {"data": ZarrLayerVarConfig(clim=(0.0, 20.0), colormap="viridis")}
    p = create_pyramid(make_dataset(64, 64), levels=2, layer_hints=hints)
    assert "zarr-layer" in p.attrs


def _air_temperature_like() -> Any:
    """Shaped like xr.tutorial's air_temperature (no download): (time, lat, lon), 2.5 deg."""
    import pandas as pd
    import xarray as xr
    import xproj  # noqa: F401

    lat = np.arange(75.0, 14.9, -2.5)
    lon = np.arange(200.0, 330.1, 2.5)
    time = pd.date_range("2013-01-01", periods=20, freq="6h")
    rng = np.random.default_rng(0)
    air = rng.normal(280, 10, size=(20, lat.size, lon.size)).astype("float32")
    ds = xr.Dataset(
        {"air": (("time", "lat", "lon"), air, {"units": "degK", "long_name": "air"})},
        coords={"time": time, "lat": lat, "lon": lon},
    )
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


def test_documented_examples(tmp_path: Any) -> None:
    import xarray as xr

    ds = _air_temperature_like()
    pyramid = create_pyramid(ds, levels=2, x_dim="lon", y_dim="lat")
    assert pyramid.factors == [1, 2]
    assert pyramid.level_templates[1].sizes == {"time": 20, "lat": 12, "lon": 26}
    sparse = create_pyramid(ds, factors=[1, 4, 16], x_dim="lon", y_dim="lat")
    assert [sparse.level_templates[k].sizes["lon"] for k in range(3)] == [53, 13, 3]
    dt = sparse.as_datatree()
    dt.to_zarr(tmp_path / "s.zarr", zarr_format=3, consolidated=False, encoding=sparse.encoding)
    back = xr.open_datatree(tmp_path / "s.zarr", engine="zarr", consolidated=False)
    np.testing.assert_array_equal(back["2"]["time"].values, ds["time"].values)
    ref = ds["air"].coarsen(lat=16, lon=16, boundary="trim").mean()
    np.testing.assert_allclose(back["2"]["air"].values, ref.values, rtol=1e-6)


def test_annotations_match_documented_api() -> None:
    import xarray as xr
    from topozarr_metadata import ZarrLayerVarConfig

    hints = typing.get_type_hints(Pyramid)
    assert hints["source"] is xr.Dataset
    assert hints["level_templates"] == dict[int, xr.Dataset]
    assert hints["encoding"] == dict[str, Any]
    assert hints["attrs"] == dict[str, Any]
    assert hints["x_dim"] is str and hints["y_dim"] is str
    # Issue 8 widened the documented CoarseningMethod: a {variable: method} dict is accepted too.
    assert hints["method"] == CoarseningMethod | dict[str, CoarseningMethod]
    assert hints["factors"] == list[int]
    assert hints["fill_values"] == dict[str, float | int | None]
    fn = typing.get_type_hints(create_pyramid)
    assert fn["ds"] is xr.Dataset
    assert fn["levels"] == int | None
    assert fn["factors"] == list[int] | None
    assert fn["method"] == CoarseningMethod | dict[str, CoarseningMethod]
    assert fn["target_chunk_bytes"] is int
    assert fn["chunks_per_shard"] == ChunksPerShard | None
    assert fn["layer_hints"] == dict[str, ZarrLayerVarConfig] | None
    assert fn["return"] is Pyramid
    w = typing.get_type_hints(Pyramid.write)
    assert w["io"] == typing.Literal["python", "rust"]
    assert w["return"] == dict[str, Any] | None
