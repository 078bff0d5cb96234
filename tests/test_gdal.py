"""GIS tools read the pyramids: GDAL (through rasterio's wheel) and rioxarray.

GDAL's Zarr driver names one variable of one level ``ZARR:"<store>":/<level>/<variable>``.
What it reads depends on its version, and these tests pin what docs/usage.md ("GIS tools")
says about each: GDAL before 3.11 rejects every standard Zarr v3 array (it knows the
``bytes`` codec only by its draft name), 3.11 and later read unsharded arrays, and GDAL up to
3.12 rejects sharded ones. CI runs the suite with rasterio 1.4 (GDAL 3.10) on Python 3.11 and
rasterio 1.5 (GDAL 3.12) on Python 3.13, so both branches run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyproj
import pytest
import rasterio
import rioxarray  # also registers the .rio accessor
import xarray as xr
import xproj  # noqa: F401  (registers the .proj accessor)
import zarr
from rasterio.errors import RasterioIOError

from topozarr import create_pyramid
from topozarr.gis_checks import SHARDED_GDAL_NOTE, grid_mapping_findings

GDAL = tuple(int(p) for p in rasterio.__gdal_version__.split(".")[:2])
# GDAL 3.11 renamed its Zarr v3 'endian' codec to the standard 'bytes'.
GDAL_READS_ZARR_V3 = GDAL >= (3, 11)
TOPOZARR = str(Path(sys.executable).parent / "topozarr")
INT_FILL = -9999
LEVELS = 3


def subdataset(store: Path, level: int, name: str) -> str:
    return f'ZARR:"{store}":/{level}/{name}'


def make_source(crs: str, *, crs_name: str = "spatial_ref") -> xr.Dataset:
    """A float32 DEM with NaN holes and an int16 class map with a fill value, on a 64x96 grid.

    The 8x8 missing blocks stay missing down to level 2 (4x), so nodata is checked there too.
    """
    rng = np.random.default_rng(7)
    res, x0, y_top = (0.25, -10.0, 50.0) if crs == "EPSG:4326" else (30.0, 500_000.0, 4e6)
    xs = x0 + res * (np.arange(96) + 0.5)
    ys = y_top - res * (np.arange(64) + 0.5)
    dem = rng.normal(500, 100, (64, 96)).astype(np.float32)
    dem[:8, :8] = np.nan
    dem[rng.random(dem.shape) < 0.1] = np.nan
    classes = rng.integers(1, 9, (64, 96)).astype(np.int16)
    classes[-8:, -8:] = INT_FILL
    ds = xr.Dataset(
        {
            "elevation": (("y", "x"), dem, {"units": "m"}),
            "landcover": (("y", "x"), classes, {"_FillValue": INT_FILL}),
        },
        coords={"y": ys, "x": xs},
    )
    return ds.proj.assign_crs({crs_name: crs})


def write(tmp_path: Path, ds: xr.Dataset, **options: object) -> Path:
    store = tmp_path / "pyramid.zarr"
    create_pyramid(
        ds, levels=LEVELS, method={"elevation": "mean", "landcover": "mode"}, **options
    ).write(store)
    return store


def assert_gdal_rejects_zarr_v3(store: Path) -> None:
    with pytest.raises(RasterioIOError, match="Unsupported codec: bytes"):
        rasterio.open(subdataset(store, 0, "elevation"))


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:32633"])
def test_gdal_reads_every_level_of_an_unsharded_pyramid(tmp_path: Path, crs: str) -> None:
    ds = make_source(crs)
    store = write(tmp_path, ds, chunks_per_shard=None)
    if not GDAL_READS_ZARR_V3:
        assert_gdal_rejects_zarr_v3(store)
        return
    root = zarr.open_group(store, mode="r")
    for level in range(LEVELS):
        group = root[str(level)]
        transform = group.attrs["spatial:transform"]
        x, y = group["x"][:], group["y"][:]
        for name, nodata in (("elevation", np.nan), ("landcover", INT_FILL)):
            expected = group[name][:]  # zarr-python, the reference reader
            with rasterio.open(subdataset(store, level, name)) as src:
                assert pyproj.CRS.from_wkt(src.crs.to_wkt()) == ds.proj.crs
                np.testing.assert_allclose(tuple(src.transform)[:6], transform)
                # The transform places the level's own cell centres, as written by zarr.
                np.testing.assert_allclose(src.xy(0, np.arange(x.size))[0], x)
                np.testing.assert_allclose(src.xy(np.arange(y.size), 0)[1], y)
                np.testing.assert_array_equal(src.nodata, nodata)
                masked = src.read(1, masked=True)
            assert masked.dtype == expected.dtype
            missing = np.isnan(expected) if expected.dtype.kind == "f" else expected == INT_FILL
            assert missing.any() and not missing.all()
            np.testing.assert_array_equal(np.ma.getmaskarray(masked), missing)
            np.testing.assert_array_equal(masked.data[~missing], expected[~missing])


def test_gdal_reads_a_uint8_class_map_at_its_default_codec(tmp_path: Path) -> None:
    # 1-byte variables default to zstd (blosc for wider types): GDAL must read that too.
    ds = make_source("EPSG:4326").drop_vars(["elevation", "landcover"])
    ds["classes"] = (("y", "x"), np.random.default_rng(3).integers(1, 14, (64, 96), np.uint8))
    store = tmp_path / "classes.zarr"
    create_pyramid(ds, levels=LEVELS, method="nearest", chunks_per_shard=None).write(store)
    root = zarr.open_group(store, mode="r")
    assert type(root["0/classes"].compressors[0]).__name__ == "ZstdCodec"
    if not GDAL_READS_ZARR_V3:
        with pytest.raises(RasterioIOError, match="Unsupported codec: bytes"):
            rasterio.open(subdataset(store, 0, "classes"))
        return
    for level in range(LEVELS):
        with rasterio.open(subdataset(store, level, "classes")) as src:
            got = src.read(1)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, root[f"{level}/classes"][:])


def test_rioxarray_open_rasterio_finds_crs_and_transform(tmp_path: Path) -> None:
    ds = make_source("EPSG:32633")
    store = write(tmp_path, ds, chunks_per_shard=None)
    if not GDAL_READS_ZARR_V3:
        assert_gdal_rejects_zarr_v3(store)
        return
    group = zarr.open_group(store, mode="r")["1"]
    da = rioxarray.open_rasterio(subdataset(store, 1, "landcover"))
    assert pyproj.CRS.from_wkt(da.rio.crs.to_wkt()) == ds.proj.crs
    np.testing.assert_allclose(tuple(da.rio.transform())[:6], group.attrs["spatial:transform"])
    assert da.rio.nodata == INT_FILL
    np.testing.assert_array_equal(da.values[0], group["landcover"][:])


@pytest.mark.parametrize("chunks_per_shard", [None, 4])
def test_rioxarray_accessor_on_a_level_group(tmp_path: Path, chunks_per_shard: int | None) -> None:
    # A CRS coordinate not called spatial_ref: rioxarray then finds it only via grid_mapping.
    ds = make_source("EPSG:32633", crs_name="crs")
    store = write(tmp_path, ds, chunks_per_shard=chunks_per_shard)
    for level in range(LEVELS):
        attrs = zarr.open_group(store, mode="r")[str(level)].attrs
        lv = xr.open_zarr(store, group=str(level), consolidated=False)
        for name in ("elevation", "landcover"):
            assert pyproj.CRS.from_wkt(lv[name].rio.crs.to_wkt()) == ds.proj.crs
            transform = tuple(lv[name].rio.transform())[:6]
            np.testing.assert_allclose(transform, attrs["spatial:transform"])


def test_sharded_default_is_not_read_by_gdal(tmp_path: Path) -> None:
    store = write(tmp_path, make_source("EPSG:4326"))
    assert zarr.open_array(store / "0" / "elevation", mode="r").shards is not None
    for level in range(LEVELS):
        try:
            with rasterio.open(subdataset(store, level, "elevation")):
                pass
        except RasterioIOError as err:
            assert "Unsupported codec: sharding_indexed" in str(err)
        else:
            pytest.fail(
                f"GDAL {rasterio.__gdal_version__} reads sharded Zarr now: update the 'GIS tools' "
                f"section of docs/usage.md, docs/cli.md and topozarr.gis_checks.SHARDED_GDAL_NOTE"
            )


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TOPOZARR, *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_cli_no_shards_builds_what_gdal_reads(tmp_path: Path) -> None:
    ds = make_source("EPSG:4326")
    ds.proj.write_crs_info().to_zarr(tmp_path / "src.zarr", zarr_format=3, consolidated=False)
    out = tmp_path / "gis.zarr"
    src = str(tmp_path / "src.zarr")
    built = run("build", src, str(out), "--levels", "2", "--no-shards", "--no-progress")
    assert built.returncode == 0, built.stderr
    root = zarr.open_group(out, mode="r")
    for level in range(2):
        for name in ("elevation", "landcover"):
            assert root[f"{level}/{name}"].shards is None
    info = run("info", str(out))
    assert info.returncode == 0, info.stderr
    assert SHARDED_GDAL_NOTE not in info.stdout
    if not GDAL_READS_ZARR_V3:
        assert_gdal_rejects_zarr_v3(out)
        return
    with rasterio.open(subdataset(out, 1, "elevation")) as src:
        assert pyproj.CRS.from_wkt(src.crs.to_wkt()) == ds.proj.crs
        np.testing.assert_array_equal(src.read(1), root["1/elevation"][:])


def test_cli_no_shards_and_chunks_per_shard_exclude_each_other(tmp_path: Path) -> None:
    both = run("build", "src.zarr", "out.zarr", "--no-shards", "--chunks-per-shard", "2")
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr


def test_info_notes_that_gdal_cannot_read_a_sharded_store(tmp_path: Path) -> None:
    store = write(tmp_path, make_source("EPSG:4326"))
    info = run("info", str(store))
    assert info.returncode == 0, info.stderr
    assert f"note    {SHARDED_GDAL_NOTE}" in info.stdout.splitlines()


def _edit_attrs(store: Path, path: str, *, drop: str = "", **update: str) -> None:
    """Edit one array's attributes the way an older or broken writer would have left them."""
    arr = zarr.open_array(store / path, mode="r+")
    attrs = {k: v for k, v in arr.attrs.asdict().items() if k != drop}
    arr.attrs.put({**attrs, **update})
    zarr.consolidate_metadata(store)  # what readers (and topozarr validate) see


def test_written_stores_have_no_grid_mapping_findings(tmp_path: Path) -> None:
    store = write(tmp_path, make_source("EPSG:32633", crs_name="crs"))
    assert grid_mapping_findings(zarr.open_group(store, mode="r")) == []
    result = run("validate", str(store))
    assert result.returncode == 0, result.stdout
    assert "warning" not in result.stdout


def test_validate_warns_without_grid_mapping_and_keeps_exit_code(tmp_path: Path) -> None:
    # A store as topozarr wrote it before grid_mapping: valid, but GIS tools find no CRS.
    store = write(tmp_path, make_source("EPSG:4326"))
    _edit_attrs(store, "1/landcover", drop="grid_mapping")
    result = run("validate", str(store))
    assert result.returncode == 0, result.stdout
    warnings = [ln for ln in result.stdout.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: 1/landcover: no CF grid_mapping attribute")
    assert result.stdout.rstrip().endswith(": valid")


def test_grid_mapping_findings_name_a_missing_or_wrong_crs_variable(tmp_path: Path) -> None:
    store = write(tmp_path, make_source("EPSG:4326"))
    _edit_attrs(store, "0/elevation", grid_mapping="nowhere")
    wrong = pyproj.CRS("EPSG:32633").to_wkt()
    _edit_attrs(store, "2/spatial_ref", crs_wkt=wrong, spatial_ref=wrong)
    findings = grid_mapping_findings(zarr.open_group(store, mode="r"))
    assert findings == [
        "0/elevation: grid_mapping 'nowhere' is not an array of level 0",
        "2/spatial_ref: its CRS (WGS 84 / UTM zone 33N) differs from proj:wkt2 (WGS 84)",
    ]
