"""topozarr: multiscale Zarr v3 pyramids from georeferenced xarray Datasets."""

__version__ = "0.1.0"
