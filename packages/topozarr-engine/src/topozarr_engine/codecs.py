"""topozarr's default compressors for spatial variables, per dtype class.

Chosen by measurement (``benchmarks/codecs.py``: 48 chunks of the default ~512 KiB shape from
each benchmark source, one thread, MB/s of uncompressed bytes; the table is in docs/usage.md,
"Chunks, shards and codecs"):

==========================  ===========================  ==================================
dtype class                 default                      why
==========================  ===========================  ==================================
floats, multi-byte ints     blosc lz4 5 + byte shuffle   float32 DEM: 1.99x at 433 MB/s
                                                         encode, 2092 MB/s decode; zstd 3
                                                         (zarr's default): 1.61x, 144 / 533
1-byte ints, bool           zstd level 1                 uint8 land cover: 3.33x, as small
                                                         as zstd 3 (3.30x) and faster; blosc
                                                         lz4 + bitshuffle only 2.01x
==========================  ===========================  ==================================

Every reader topozarr targets decodes both: zarrita.js (zarr-layer's reader) registers
``blosc`` and ``zstd``, GDAL >= 3.12 and zarr-python read them, and the native writer (zarrs,
``zstd`` and ``blosc`` features) encodes them. Multi-byte integers were not measured; they keep
the float default because byte shuffle is what makes their high bytes compress. Users override
per variable with a ``"compressors"`` key in ``pyramid.encoding``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["default_compressors"]


def default_compressors(dtype: Any = None) -> tuple[Any, ...]:
    """Compressors for a spatial variable of ``dtype`` (see the module docstring).

    Parameters
    ----------
    dtype
        The variable's dtype (anything ``numpy.dtype`` accepts); ``None`` means float.

    Returns
    -------
    tuple
        ``(ZstdCodec(level=1),)`` for 1-byte types, else blosc lz4 clevel 5 with its
        ``typesize`` and ``shuffle`` left for zarr to fill from the dtype (byte shuffle).
    """
    from zarr.codecs import BloscCodec, ZstdCodec

    if dtype is not None and np.dtype(dtype).itemsize == 1:
        # 1-byte classes have no high bytes for a shuffle to group; an entropy coder packs
        # their few distinct values (3.33x vs blosc-lz4's 2.01x on the land cover).
        return (ZstdCodec(level=1),)
    return (BloscCodec(cname="lz4", clevel=5),)
