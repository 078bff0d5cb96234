"""topozarr's default compressors for spatial variables.

Measured with ``benchmarks/bench_codecs.py`` (2-core machine, one thread, 256x512 float32
chunks of a synthetic centimetre-precision DEM with a nodata patch; MB/s of uncompressed input):

===============================  ==============  =====  ==============  =====
codec                            slope 1.6 MB/s  ratio  slope 2.2 MB/s  ratio
===============================  ==============  =====  ==============  =====
zstd level 3 (zarr's default)                44   1.33              49   1.43
zstd level 1                                299   1.28             382   1.29
blosc lz4 + byte shuffle (5)                970   1.35             572   1.65
blosc zstd(1) + byte shuffle                274   1.47             208   1.86
===============================  ==============  =====  ==============  =====

On the workspace benchmark DEM as it was then (fractal terrain with 70% NaN ocean; the
benchmark DEM is now 30% NaN, so these figures are due for a new measurement; all 256x512
chunks of the 8192x8192 array, one thread):

===============================  ======  =====
codec                            MB/s    ratio
===============================  ======  =====
zstd level 3 (zarr's default)       353   3.78
zstd level 1                        566   3.78
blosc lz4 + byte shuffle (5)       1142   4.24
blosc zstd(1) + byte shuffle        311   4.38
===============================  ======  =====

Blosc-lz4 with shuffle encodes 3-20x faster than zarr's default and its output is no larger
(10-20% smaller), so it is the default. End to end (``benchmarks/pyramid.py``, 1 GiB DEM,
6 levels) it makes the pyramid 0.86x the size of the xarray+dask baseline's. Every reader topozarr targets decodes it
(zarrita, used by zarr-layer, ships blosc). Users who prefer density override per variable
with a ``"compressors"`` key in ``pyramid.encoding`` (e.g. blosc zstd + shuffle: ~1.1-1.3x
smaller, ~3x slower to encode).
"""

from __future__ import annotations

from typing import Any

__all__ = ["default_compressors"]


def default_compressors() -> tuple[Any, ...]:
    """Compressors for a spatial variable: blosc lz4, clevel 5, shuffle chosen by zarr.

    ``typesize`` and ``shuffle`` are left for zarr to fill from the array's dtype (byte shuffle
    for multi-byte types, bit shuffle for 1-byte types).
    """
    from zarr.codecs import BloscCodec

    return (BloscCodec(cname="lz4", clevel=5),)
