"""Small helpers on in-memory blocks: materialising, fill detection, array chunking."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["array_block_shape", "empty_value", "is_all_fill", "materialize"]


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


def is_all_fill(block: np.ndarray, fill_value: Any) -> bool:
    """True when every element of ``block`` equals ``fill_value`` (NaN equal to NaN).

    Such a block need not be written: reading an unwritten chunk returns the fill value.
    The first and last elements are checked first, so non-empty blocks (the common case)
    are rejected without scanning.
    """
    if block.size == 0:
        return True
    if fill_value is None:
        return False
    flat0, flat1 = block.flat[0], block.flat[-1]
    if _is_nan(fill_value):
        if block.dtype.kind not in "fc":
            return False
        if not (np.isnan(flat0) and np.isnan(flat1)):
            return False
        return bool(np.isnan(block).all())
    if flat0 != fill_value or flat1 != fill_value:
        return False
    return bool((block == fill_value).all())


def empty_value(method: str, dtype: np.dtype[Any], fill_value: Any) -> Any:
    """Value the kernel gives a window with no valid cell.

    0 for ``sum``; otherwise ``fill_value``, or NaN for floats without one.
    """
    if method == "sum":
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
