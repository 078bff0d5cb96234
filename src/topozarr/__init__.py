"""topozarr: multiscale Zarr v3 pyramids from georeferenced xarray Datasets.

>>> from topozarr import create_pyramid  # doctest: +SKIP
>>> create_pyramid(ds, levels=4, x_dim="lon", y_dim="lat").write("pyramid.zarr")  # doctest: +SKIP
"""

from topozarr.coarsen import CoarseningMethod, create_pyramid
from topozarr.metadata import ZarrLayerVarConfig
from topozarr.pyramid import Pyramid

__version__ = "0.1.0"

__all__ = ["CoarseningMethod", "Pyramid", "ZarrLayerVarConfig", "__version__", "create_pyramid"]
