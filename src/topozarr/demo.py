"""The embedded demo dataset: a synthetic global DEM and a temperature cube, made in code.

Nothing is downloaded: the terrain is fractal value noise generated from a fixed seed, so the
same ``size`` always gives the same bytes, and the demo runs offline in seconds.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

DEFAULT_DEMO_ROWS = 2048
# Environmental lapse rate: temperature falls ~6.5 K per km of altitude.
_LAPSE_K_PER_M = 0.0065


class FractalTerrain:
    """Deterministic fractal (1/f) value noise, evaluable on any band of rows.

    Each octave is a small random grid, periodic in x so the terrain is seamless at 180°,
    sampled bilinearly. Because the grids depend only on ``seed`` and the raster size, a band of
    rows can be generated on its own: large benchmark sources are written band by band in
    bounded memory and are identical to the whole raster generated at once.
    """

    def __init__(
        self, rows: int, cols: int, *, seed: int = 42, octaves: int = 9, land_fraction: float = 0.3
    ) -> None:
        if not 0.0 < land_fraction <= 1.0:
            raise ValueError(f"land_fraction must be in (0, 1], got {land_fraction}")
        rng = np.random.default_rng(seed)
        self.rows, self.cols = rows, cols
        self.grids = []
        amplitude = 1.0
        for octave in range(octaves):
            gy = min(rows, 3 * 2**octave + 1)
            gx = min(cols, 6 * 2**octave)
            grid = rng.standard_normal((gy, gx)).astype(np.float32) * np.float32(amplitude)
            self.grids.append(grid)
            amplitude *= 0.55
        # Sea level: a quantile of a sparse preview, so about ``land_fraction`` of the raster
        # is land (the demo keeps 30%; benchmarks ask for more land to have less NaN).
        preview = self._relief(
            np.linspace(0, rows - 1, 256).astype(np.intp),
            np.linspace(0, cols - 1, 512).astype(np.intp),
        )
        self.sea_level = np.float32(np.quantile(preview, 1.0 - land_fraction))

    def _relief(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        out = np.zeros((rows.size, cols.size), dtype=np.float32)
        for grid in self.grids:
            gy, gx = grid.shape
            ys = rows.astype(np.float32) * np.float32((gy - 1) / max(1, self.rows - 1))
            xs = (cols.astype(np.float32) + np.float32(0.5)) * np.float32(gx / self.cols)
            y0 = np.floor(ys).astype(np.intp)
            y1 = np.minimum(y0 + 1, gy - 1)
            wy = (ys - y0)[:, None]
            x0 = np.floor(xs).astype(np.intp) % gx
            x1 = (x0 + 1) % gx
            wx = (xs - np.floor(xs))[None, :]
            band = grid[y0] * (1 - wy) + grid[y1] * wy  # (len(rows), gx)
            out += band[:, x0] * (1 - wx) + band[:, x1] * wx
        return out

    def relief(self, start: int, stop: int) -> np.ndarray:
        """The raw noise of rows [start, stop), float32, no sea level applied (about N(0, 1.2))."""
        return self._relief(np.arange(start, stop), np.arange(self.cols))

    def band(self, start: int, stop: int) -> np.ndarray:
        """Elevation in metres of rows [start, stop), float32; sea (below 0) is NaN."""
        relief = self.relief(start, stop)
        relief -= self.sea_level
        relief *= np.float32(2500.0)  # realistic relief: peaks of a few thousand metres
        return np.where(relief > 0, relief, np.float32(np.nan)).astype(np.float32)


def demo_dataset(rows: int = DEFAULT_DEMO_ROWS, *, seed: int = 42, months: int = 4) -> xr.Dataset:
    """Build the demo Dataset: ``elevation`` (lat, lon) and ``temperature`` (time, lat, lon).

    Parameters
    ----------
    rows
        Number of latitude rows of the DEM; the grid is global (EPSG:4326), north-up, with
        ``2 * rows`` longitude columns; the temperature cube shares the grid.
    seed
        Seed of the terrain noise; the same seed gives the same bytes.
    months
        Length of the temperature cube's time axis.

    Returns
    -------
    xarray.Dataset
        With a CRS assigned through xproj, ready for :func:`topozarr.create_pyramid`
        (``x_dim="lon", y_dim="lat"``). The ocean is NaN in ``elevation``.
    """
    if rows < 8 or rows % 4:
        raise ValueError(f"demo rows must be a multiple of 4 and at least 8, got {rows}")
    import xproj  # noqa: F401  (registers the .proj accessor)

    cols = 2 * rows
    cell = 180.0 / rows
    lat = 90.0 - cell * (np.arange(rows) + 0.5)  # descending: row 0 is the north edge
    lon = -180.0 + cell * (np.arange(cols) + 0.5)
    elevation = FractalTerrain(rows, cols, seed=seed).band(0, rows)

    # Temperature on the same grid: a latitude profile, a seasonal cycle of opposite sign in
    # each hemisphere, and altitude cooling over land.
    month = np.arange(months)
    season = np.cos(2 * np.pi * (month - 6) / 12).astype(np.float32)[:, None, None]
    sin_lat = np.sin(np.deg2rad(lat)).astype(np.float32)[None, :, None]
    temperature = np.float32(300.0) - np.float32(45.0) * sin_lat**2
    temperature = temperature + np.float32(12.0) * season * sin_lat
    temperature = temperature - np.float32(_LAPSE_K_PER_M) * np.nan_to_num(elevation)[None]
    temperature = temperature.astype(np.float32)

    ds = xr.Dataset(
        {
            "elevation": (("lat", "lon"), elevation, {"units": "m", "long_name": "Elevation"}),
            "temperature": (
                ("time", "lat", "lon"),
                temperature,
                {"units": "K", "long_name": "Air temperature"},
            ),
        },
        coords={
            "time": ("time", (np.datetime64("2000-01", "M") + month).astype("datetime64[ns]")),
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
        attrs={"title": "topozarr demo: synthetic fractal terrain", "source": "topozarr.demo"},
    )
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")
