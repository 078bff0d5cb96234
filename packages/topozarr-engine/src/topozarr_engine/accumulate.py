"""Whole-level partial accumulators for pyramid levels whose windows span several tiles.

The single-pass writer folds every level-0 tile into the accumulator of each "deep" level (a
level whose cumulative stride does not divide the tile edge), then finalises a region of that
level once every tile under it has been folded. Values are exact: the kernel's
``Accumulator`` keeps sums and counts (or extremes, or the window's first cell) of native cells,
never rounded coarser values.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from topozarr_engine import kernel
from topozarr_engine.region import Region, coarsened_shape

__all__ = ["LevelAccumulator", "output_dtype"]


def output_dtype(method: str, dtype: np.dtype[Any]) -> np.dtype[Any]:
    """dtype the kernel returns for ``method`` over ``dtype``, from the kernel's method table
    (the input dtype, except int64/uint64 for integer ``sum``)."""
    dtype = np.dtype(dtype)
    return np.dtype(kernel.method_row(method)["output_dtype"].get(dtype.name, dtype.name))


class Reduction(Protocol):
    """How the values are reduced (as for ``kernel.block_reduce``)."""

    @property
    def method(self) -> str: ...

    @property
    def fill_value(self) -> Any: ...

    @property
    def skipna(self) -> bool: ...


class LevelAccumulator:
    """Partial reductions of one whole pyramid level, fed native tiles in any order.

    A thin, thread-safe wrapper of the kernel's ``Accumulator`` (``fold`` and ``result`` take
    an internal lock) that speaks in native-tile origins instead of level offsets and phases.

    Parameters
    ----------
    dtype
        dtype of the native (level-0) values.
    reduction
        Its ``method``, ``fill_value`` and ``skipna``, as for ``kernel.block_reduce`` (a
        :class:`~topozarr_engine.specs.PyramidSpec`, for example).
    stride
        Cumulative stride of the level relative to level 0, per axis.
    native_shape
        Shape of level 0: windows at the array end that are cut by it are trimmed away, except
        on an axis shorter than its stride (a single partial window, as xarray does).
    """

    def __init__(
        self,
        dtype: Any,
        reduction: Reduction,
        *,
        stride: Sequence[int],
        native_shape: Sequence[int],
    ) -> None:
        self.stride = tuple(int(s) for s in stride)
        self.native_shape = tuple(int(n) for n in native_shape)
        self.shape = coarsened_shape(self.native_shape, self.stride)
        self.dtype = np.dtype(dtype)
        method, fill_value, skipna = reduction.method, reduction.fill_value, reduction.skipna
        self.method = method
        self.fill_value = fill_value
        self.skipna = skipna
        self.out_dtype = output_dtype(method, self.dtype)
        self._lock = threading.Lock()
        self._kernel = kernel.Accumulator(
            self.shape, self.dtype, method, fill_value=fill_value, skipna=skipna
        )

    @property
    def nbytes(self) -> int:
        """Bytes held by the partial state."""
        return int(self._kernel.nbytes)

    def fold(self, tile: np.ndarray, origin: Sequence[int]) -> None:
        """Fold a native tile whose first cell is native index ``origin``."""
        origin = tuple(int(o) for o in origin)
        offset = [o // s for o, s in zip(origin, self.stride, strict=True)]
        phase = [o % s for o, s in zip(origin, self.stride, strict=True)]
        if any(c >= n for c, n in zip(offset, self.shape, strict=True)):
            return  # the tile lies in the trimmed tail of the level
        with self._lock:  # the kernel object is not thread-safe
            self._kernel.fold(tile, offset, self.stride, phase=phase)

    def result(self, region: Region | None = None) -> np.ndarray:
        """Final values of ``region`` (level coordinates; default: the whole level)."""
        sl = region.slices if region is not None else tuple(slice(0, n) for n in self.shape)
        with self._lock:
            out = self._kernel.result([x.start for x in sl], [x.stop for x in sl])
        return np.asarray(out).astype(self.out_dtype, copy=False)
