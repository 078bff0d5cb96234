"""Small helpers on in-memory blocks: materialising, fill detection, array chunking."""

from __future__ import annotations

from typing import Any

import numpy as np

from topozarr_engine import kernel

__all__ = ["array_block_shape", "empty_value", "is_all_fill", "materialize", "same_fill"]


def materialize(block: Any) -> np.ndarray:
    """Turn what indexing a source returned into a numpy array.

    numpy views are returned as-is (possibly strided): the kernel and zarr's setitem accept
    strided input, so a contiguity copy would only cost memory bandwidth. Lazy arrays
    (xarray variables, dask, zarr) are loaded here, once per region.
    """
    if isinstance(block, np.ndarray):
        return block
    values = getattr(block, "values", None)  # xarray.Variable / DataArray, without importing xarray
    if isinstance(values, np.ndarray):
        return values
    return np.asarray(block)


def _is_nan(value: Any) -> bool:
    try:
        return bool(np.isnan(value))
    except (TypeError, ValueError):
        return False


#: Elements looked at before a full scan (evenly spaced over the block).
_SAMPLES = 64


def is_all_fill(block: np.ndarray, fill_value: Any) -> bool:
    """True when every element of ``block`` equals ``fill_value`` (NaN equal to NaN).

    Such a block need not be written: reading an unwritten chunk returns the fill value.
    A few evenly spaced elements are checked first, so a block that is only partly fill
    (a DEM tile with ocean in its corners) is rejected without scanning all of it.
    """
    if block.size == 0:
        return True
    if fill_value is None:
        return False
    nan = _is_nan(fill_value)
    if nan and block.dtype.kind not in "fc":
        return False
    sample = block.flat[np.linspace(0, block.size - 1, min(block.size, _SAMPLES), dtype=np.intp)]
    if not _all_equal(sample, fill_value, nan):
        return False
    return _all_equal(block, fill_value, nan)


def _all_equal(values: np.ndarray, fill_value: Any, nan: bool) -> bool:
    if nan:
        return bool(np.isnan(values).all())
    return bool((values == fill_value).all())


def empty_value(method: str, dtype: np.dtype[Any], fill_value: Any) -> Any:
    """Value the kernel gives a window with no valid cell (the method table's ``empty``).

    0 for ``sum``; otherwise ``fill_value``, or NaN for floats without one.
    """
    if kernel.method_row(method)["empty"] == "zero":
        return dtype.type(0)
    if fill_value is not None:
        return fill_value
    if dtype.kind in "fc":
        return dtype.type(np.nan)
    return dtype.type(0)


def array_block_shape(arr: Any) -> tuple[int, ...]:
    """The unit of independent writes of a zarr array: its shard shape, else its chunk shape."""
    shards = getattr(arr, "shards", None)
    if shards is not None:
        return tuple(int(s) for s in shards)
    return tuple(int(c) for c in arr.chunks)


def same_fill(a: Any, b: Any) -> bool:
    """True when fill values ``a`` and ``b`` mark the same cells (NaN equal to NaN)."""
    if a is None or b is None:
        return False
    try:
        return bool(a == b) or bool(np.isnan(a) and np.isnan(b))
    except (TypeError, ValueError):
        return False
