"""The benchmark sources: a DEM, a cube and a land-cover map, written once under data/.

Shared by ``pyramid.py`` and ``peers.py``. Only numpy is imported at module level, so the
scripts answer ``--help`` at once and a peer's environment (which must not import this
project) can use the output helpers.

* ``dem``: float32 fractal terrain, about 30% NaN ocean (the fraction is measured from the
  data and printed, never assumed), square.
* ``cube``: float32 (time=12, lat, lon) temperature-like field, no NaN.
* ``landcover``: uint8, 13 classes (1-13) in patches with per-cell noise, so most 2x2
  windows hold more than one class; reduced with ``nearest``.

Sizes are nominal labels (``--size``): the shapes below, all multiples of 32 on each
spatial axis so the six levels of a 2x pyramid are exact.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SIZES = ("256M", "1G", "4G")
DATASETS = ("dem", "cube", "landcover")
SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "dem": {"256M": (8192, 8192), "1G": (16384, 16384), "4G": (32768, 32768)},
    "cube": {"256M": (12, 2048, 4096), "1G": (12, 4096, 8192), "4G": (12, 8192, 16384)},
    "landcover": {"256M": (16384, 16384), "1G": (32768, 32768), "4G": (65536, 65536)},
}
VARIABLE = {"dem": "elevation", "cube": "temperature", "landcover": "landcover"}
METHOD = {"dem": "mean", "cube": "mean", "landcover": "nearest"}
LEVELS = 6
SOURCE_CHUNK = 1024
BAND_ROWS = 1024
CLASSES = 13
DEM_LAND_FRACTION = 0.7  # FractalTerrain's share of cells above sea level: ~30% NaN


@dataclass(frozen=True)
class Source:
    """One benchmark source on disk and how to reduce it."""

    dataset: str
    size: str
    path: Path

    @property
    def var(self) -> str:
        return VARIABLE[self.dataset]

    @property
    def method(self) -> str:
        return METHOD[self.dataset]

    @property
    def shape(self) -> tuple[int, ...]:
        return SHAPES[self.dataset][self.size]


def source(dataset: str, size: str) -> Source:
    """The source of ``dataset`` at ``size`` (a path under data/, written by make_source)."""
    # v2: the DEM is ~30% NaN (v1 was ~70%, which skipped most tiles and flattered ratios).
    return Source(dataset, size, DATA / f"{dataset}-v2-{size}.zarr")


def make_source(dataset: str, size: str) -> Source:
    """Write the deterministic source as a chunked Zarr v3 store, band by band (bounded memory)."""
    src = source(dataset, size)
    if (src.path / "zarr.json").exists():
        return src
    import zarr

    DATA.mkdir(exist_ok=True)
    tmp = src.path.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _write_template(src, tmp)
    arr = zarr.open_array(tmp / src.var, mode="r+")
    rows = src.shape[-2]
    bands = _band_maker(src)
    for start in range(0, rows, BAND_ROWS):
        stop = min(rows, start + BAND_ROWS)
        arr[..., start:stop, :] = bands(start, stop)
        print(f"  {dataset} source rows {stop}/{rows}", end="\r", file=sys.stderr)
    print(file=sys.stderr)
    tmp.rename(src.path)
    return src


def _write_template(src: Source, tmp: Path) -> None:
    import dask.array as da
    import xarray as xr

    rows, cols = src.shape[-2:]
    cell = 180.0 / rows
    coords: dict[str, Any] = {
        "lat": 90.0 - cell * (np.arange(rows) + 0.5),  # descending, like most DEMs
        "lon": -180.0 + cell * (np.arange(cols) + 0.5),
    }
    dims: tuple[str, ...] = ("lat", "lon")
    chunks: tuple[int, ...] = (SOURCE_CHUNK, SOURCE_CHUNK)
    if src.dataset == "cube":
        dims, chunks = ("time", *dims), (1, *chunks)
        coords["time"] = np.arange(src.shape[0], dtype="int64")
    dtype = np.uint8 if src.dataset == "landcover" else np.float32
    encoding: dict[str, Any] = {"chunks": chunks}
    if dtype == np.float32:
        encoding["fill_value"] = np.nan
    lazy = da.zeros(src.shape, dtype=dtype, chunks=chunks)
    template = xr.Dataset({src.var: (dims, lazy)}, coords=coords)
    template.to_zarr(
        tmp, compute=False, zarr_format=3, consolidated=False, encoding={src.var: encoding}
    )


def _band_maker(src: Source) -> Any:
    from topozarr.demo import FractalTerrain

    rows, cols = src.shape[-2:]
    if src.dataset == "dem":
        dem = FractalTerrain(rows, cols, seed=7, octaves=12, land_fraction=DEM_LAND_FRACTION)
        return dem.band
    terrain = FractalTerrain(rows, cols, seed=11, octaves=10)
    if src.dataset == "cube":
        return lambda start, stop: _cube_band(terrain, start, stop, src.shape)
    return lambda start, stop: _landcover_band(terrain, start, stop)


def _cube_band(terrain: Any, start: int, stop: int, shape: tuple[int, ...]) -> np.ndarray:
    """Monthly temperature (K): a latitude profile, a seasonal cycle and fractal weather."""
    nt, rows = shape[0], shape[1]
    lat = np.deg2rad(90.0 - 180.0 / rows * (np.arange(start, stop) + 0.5))[:, None]
    base = 300.0 - 45.0 * np.sin(lat) ** 2 + 4.0 * terrain.relief(start, stop)
    season = np.cos(2 * np.pi * np.arange(nt) / nt)[:, None, None] * 12.0 * np.sin(lat)
    return (base[None] + season).astype(np.float32)


def _landcover_band(terrain: Any, start: int, stop: int) -> np.ndarray:
    """Classes 1..13 in patches from the terrain, a quarter of the cells re-drawn at random."""
    relief = terrain.relief(start, stop)
    classes = np.clip(np.floor((relief + 3.0) * (CLASSES / 6.0)), 0, CLASSES - 1).astype(np.uint8)
    classes += 1
    rng = np.random.default_rng([13, start])  # per band, so any band is reproducible alone
    noisy = rng.random(classes.shape, dtype=np.float32) < 0.25
    classes[noisy] = rng.integers(1, CLASSES + 1, int(noisy.sum()), dtype=np.uint8)
    return classes


def numcodec(compressor: Any, dtype: Any) -> Any:
    """The numcodecs twin of a zarr v3 compressor as zarr applies it to ``dtype``.

    zarr fills a Blosc codec's unset ``typesize`` and ``shuffle`` from the dtype when an array
    is created (byte shuffle for multi-byte items, bitshuffle for bytes); an unresolved codec
    says ``bitshuffle``, which is not what any float array is written with. The settings are
    read back from an array zarr creates in memory, so zarr's own rule decides them.
    """
    import zarr
    from numcodecs import Blosc, Zstd

    probe = zarr.create_array(
        zarr.storage.MemoryStore(), shape=(1,), dtype=dtype, compressors=[compressor]
    )
    config = probe.compressors[0].to_dict()["configuration"]
    if type(compressor).__name__ == "ZstdCodec":
        return Zstd(level=config["level"])
    shuffle = {
        "noshuffle": Blosc.NOSHUFFLE,
        "shuffle": Blosc.SHUFFLE,
        "bitshuffle": Blosc.BITSHUFFLE,
    }
    return Blosc(config["cname"], config["clevel"], shuffle[config["shuffle"]])


def describe(src: Source) -> str:
    """One line measured from the data: NaN share (floats) or mixed 2x2 windows (land cover)."""
    import zarr

    arr = zarr.open_array(src.path / src.var, mode="r")
    rows = src.shape[-2]
    if src.dataset == "landcover":
        # Whole 2x2 windows are needed, so sample full-width bands rather than a stride.
        bands = [arr[r : r + 256, :] for r in range(0, rows, max(256, rows // 8))]
        mixed = np.mean([_mixed_fraction(b) for b in bands])
        return f"{CLASSES} classes, {mixed:.0%} of 2x2 windows mixed (sampled bands)"
    sample = arr[..., ::7, ::7]  # every 7th row and column: a strided sample of the data
    return f"{np.isnan(sample).mean():.1%} NaN (strided sample, 1 in 49 cells)"


def _mixed_fraction(band: np.ndarray) -> float:
    ny, nx = band.shape[0] // 2 * 2, band.shape[1] // 2 * 2
    w = band[:ny, :nx].reshape(ny // 2, 2, nx // 2, 2)
    first = w[:, :1, :, :1]
    return float(np.mean(np.any(w != first, axis=(1, 3))))


def peak_rss() -> int:
    """This process's peak resident bytes since it started (exec), not its parent's.

    ``ru_maxrss`` is carried over from the parent through fork and exec, so a child of a big
    parent reports the parent's peak; Linux's VmHWM belongs to the new address space.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def output_stats(out: str) -> tuple[int, int]:
    """(bytes, objects) of a written store: a local directory or an ``s3://`` prefix."""
    path = Path(out)
    if not path.exists():  # a URL: the storage layer is only needed then (before_after.py
        # runs this with older checkouts' packages, which have no topozarr_engine.storage)
        import obstore
        from topozarr_engine.storage import open_object_store, parse_url

        if not parse_url(out).is_object_store:
            return 0, 0
        sizes = [m["size"] for batch in obstore.list(open_object_store(out)) for m in batch]
        return sum(sizes), len(sizes)
    files = [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files), len(files)
