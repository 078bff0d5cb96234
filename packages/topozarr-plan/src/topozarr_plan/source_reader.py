"""Reading a plain local Zarr source through the kernel (zarrs) instead of zarr-python.

The level-0 tiles of a write are the largest single cost of a default write of a Zarr source:
zarr-python decodes each chunk through several layers of Python and asyncio, while zarrs
decodes the whole tile in one call with the GIL released. :func:`native_reader` returns such a
reader only when its values are exactly those xarray would give; otherwise ``None`` and the
write reads the variable as before. ``TOPOZARR_NATIVE_SOURCE=0`` turns it off.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

try:  # xarray internals: if a release renames them, every source is read through xarray
    from xarray.backends.zarr import ZarrArrayWrapper
    from xarray.core.indexing import (
        BasicIndexer,
        CopyOnWriteArray,
        LazilyIndexedArray,
        MemoryCachedArray,
    )

    _XARRAY_KNOWN = True
except ImportError:  # pragma: no cover
    _XARRAY_KNOWN = False

__all__ = ["ENV_VAR", "NativeSource", "native_array", "native_reader"]

ENV_VAR = "TOPOZARR_NATIVE_SOURCE"


class NativeSource:
    """A local Zarr array read by region through the kernel's ``SourceArray``.

    Indexed like the engine's sources (a tuple of step-1 slices, one per axis), it returns a
    new numpy array. Pickled as its store directory and array path, so a cluster worker
    reopens the array itself.
    """

    def __init__(self, root: str, path: str) -> None:
        from topozarr_engine.kernel import SourceArray

        self.root, self.path = root, path
        # One tile is read per writer thread already: zarrs decodes the chunks of one tile
        # one after the other rather than competing with the other writers for the cores.
        self._array = SourceArray(root, path, concurrency=1)
        self.shape: tuple[int, ...] = tuple(self._array.shape)
        self.dtype = np.dtype(self._array.dtype)
        self.ndim = len(self.shape)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (NativeSource, (self.root, self.path))

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        if len(key) != self.ndim:
            raise IndexError(f"{len(key)} slices for an array of {self.ndim} axes")
        start, stop = [], []
        for s, n in zip(key, self.shape, strict=True):
            a, b, step = s.indices(n)
            if step != 1:
                raise IndexError(f"slice {s} has step {step}; only step 1 is read natively")
            start.append(a)
            stop.append(max(a, b))
        return self._array.read(start, stop)


def native_reader(var: xr.Variable) -> NativeSource | None:
    """A native reader of ``var``'s values when it reads them exactly as xarray does, else None.

    Safe only for a lazily loaded variable (not dask, not in memory) whose data is a whole
    zarr-python array in a ``LocalStore`` (no ``isel`` or flip applied: the region read must
    be the stored one), whose dtype is the stored one (so no CF decoding changed it), with no
    ``scale_factor`` / ``add_offset`` and no ``_FillValue`` mask other than a float NaN fill
    (which masks NaN to NaN: a no-op).
    """
    zarray = _whole_zarr_array(var)
    if zarray is None or not _values_undecoded(var, zarray):
        return None
    reader = native_array(zarray)
    if reader is None or reader.shape != var.shape or reader.dtype != var.dtype:
        return None
    return reader


def native_array(zarray: Any) -> NativeSource | None:
    """A native reader of a ``zarr.Array`` in a ``LocalStore`` (its stored values, as
    ``zarray[...]`` gives them), else None; also None with ``TOPOZARR_NATIVE_SOURCE=0``.

    The cluster's stage 2 (``mode``) and a resume's refolds read the level 0 stage 1 stored
    through it.
    """
    if os.environ.get(ENV_VAR, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    from zarr.storage import LocalStore

    if not isinstance(zarray.store, LocalStore):
        return None  # zarrs reads the local filesystem only
    try:
        return NativeSource(str(Path(zarray.store.root).absolute()), zarray.path)
    except (ValueError, TypeError, OSError):
        return None  # codecs or a data type zarrs does not decode: zarr-python does


def _whole_zarr_array(var: xr.Variable) -> Any:
    """The zarr.Array behind ``var`` if ``var`` is all of it in stored order, else None."""
    if not _XARRAY_KNOWN:
        return None
    data = var._data  # xarray has no public accessor to the backend array
    # Caching and copy-on-write change neither values nor order. A CF decoder (scale/offset,
    # masking, times) is another wrapper class, so anything else means "not safe".
    while isinstance(data, MemoryCachedArray | CopyOnWriteArray):
        data = data.array
    if not isinstance(data, LazilyIndexedArray):
        return None  # numpy, dask, or a vectorized / transposed lazy index
    inner = data.array
    if not isinstance(inner, ZarrArrayWrapper) or not _identity(data.key, inner.shape):
        return None
    zarray = inner._array
    return zarray if tuple(zarray.shape) == var.shape else None


def _identity(key: Any, shape: tuple[int, ...]) -> bool:
    """Whether a lazy basic index selects every element in stored order."""
    if not isinstance(key, BasicIndexer) or len(key.tuple) != len(shape):
        return False
    return all(
        isinstance(k, slice) and k.indices(n) == (0, n, 1)
        for k, n in zip(key.tuple, shape, strict=True)
    )


def _values_undecoded(var: xr.Variable, zarray: Any) -> bool:
    """Whether xarray left the stored values as they are (no CF decoding of any kind)."""
    if var.dtype != zarray.dtype:
        return False  # masked ints become float, times become datetime64, ...
    enc = var.encoding
    if any(k in enc or k in var.attrs for k in ("scale_factor", "add_offset", "missing_value")):
        return False
    fill = enc.get("_FillValue")
    if fill is None:
        return True
    # A NaN fill masks NaN as NaN; any other fill turns stored values into NaN.
    return var.dtype.kind == "f" and isinstance(fill, float | np.floating) and math.isnan(fill)
