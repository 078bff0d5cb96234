"""Whole-level partial accumulators for pyramid levels whose windows span several tiles.

The single-pass writer folds every level-0 tile into the accumulator of each "deep" level (a
level whose cumulative stride does not divide the tile edge), then finalises a region of that
level once every tile under it has been folded. Values are exact: sums and counts come from
native cells, never from rounded coarser values.

``LevelAccumulator`` wraps the kernel's ``Accumulator`` when the installed kernel has it and
otherwise runs a numpy implementation built on ``kernel.block_reduce``: the tile is cut at
window boundaries (a partial head window, whole windows, a partial tail window per axis) and
each piece is reduced with the kernel, whose "axis shorter than its stride gives one window"
rule makes a partial piece a single window.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from topozarr_engine import kernel
from topozarr_engine.blocks import empty_value
from topozarr_engine.region import Region

__all__ = ["LevelAccumulator", "output_dtype"]


def output_dtype(method: str, dtype: np.dtype[Any]) -> np.dtype[Any]:
    """dtype the kernel returns: the input dtype, except int64/uint64 for integer ``sum``."""
    dtype = np.dtype(dtype)
    if method == "sum" and dtype.kind in "iu":
        return np.dtype(np.int64 if dtype.kind == "i" else np.uint64)
    return dtype


def _pieces(origin: int, length: int, stride: int) -> list[tuple[int, int]]:
    """Cut ``[origin, origin + length)`` at multiples of ``stride``: head, body, tail pieces."""
    end = origin + length
    cuts = {origin, end}
    first = -(-origin // stride) * stride
    last = (end // stride) * stride
    for c in (first, last):
        if origin < c < end:
            cuts.add(c)
    edges = sorted(cuts)
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def _round_half_even(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Exact ``round(total / count)`` with ties to even, in integer arithmetic."""
    q, r = np.divmod(total, count)  # floor division: 0 <= r < count
    twice = 2 * r
    up = (twice > count) | ((twice == count) & (q % 2 != 0))
    return q + up


class LevelAccumulator:
    """Partial reductions of one whole pyramid level, fed native tiles in any order.

    Thread-safe: ``fold`` and ``result`` take an internal lock.

    Parameters
    ----------
    shape
        Shape of the level (``coarsened_shape(native_shape, stride)``).
    dtype
        dtype of the native (level-0) values.
    method, fill_value, skipna
        As for ``kernel.block_reduce``.
    stride
        Cumulative stride of the level relative to level 0, per axis.
    native_shape
        Shape of level 0: windows at the array end that are cut by it are trimmed away, except
        on an axis shorter than its stride (a single partial window, as xarray does).
    """

    def __init__(
        self,
        shape: Sequence[int],
        dtype: Any,
        method: str,
        *,
        stride: Sequence[int],
        native_shape: Sequence[int],
        fill_value: Any = None,
        skipna: bool = True,
    ) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.method = method
        self.stride = tuple(int(s) for s in stride)
        self.native_shape = tuple(int(n) for n in native_shape)
        self.fill_value = fill_value
        self.skipna = skipna
        self.out_dtype = output_dtype(method, self.dtype)
        self._lock = threading.Lock()
        self._empty = empty_value(method, self.out_dtype, fill_value)
        self._kernel: Any = None
        if kernel.Accumulator is not None:
            # The kernel keeps exact partial states (sum + count, extremes + flags) in Rust.
            self._kernel = kernel.Accumulator(
                self.shape, self.dtype, method, fill_value=fill_value, skipna=skipna
            )
            self._missing = None
            return
        if method in ("mean", "sum"):
            acc = (
                np.float64
                if self.dtype.kind in "fc"
                else (np.int64 if self.dtype.kind == "i" else np.uint64)
            )
            self._total = np.zeros(self.shape, dtype=acc)
            self._count = np.zeros(self.shape, dtype=np.int64)
        elif method in ("max", "min", "nearest"):
            self._value = np.full(self.shape, self._empty, dtype=self.out_dtype)
            self._valid = np.zeros(self.shape, dtype=bool)
        else:
            raise ValueError(f"unsupported method {method!r}")
        # With skipna=False a window holding any missing cell is missing.
        self._missing = None if skipna else np.zeros(self.shape, dtype=bool)

    @property
    def nbytes(self) -> int:
        """Bytes held by the partial state."""
        if self._kernel is not None:
            return int(self._kernel.nbytes)
        arrays = [getattr(self, n, None) for n in ("_total", "_count", "_value", "_valid")]
        arrays.append(self._missing)
        return sum(a.nbytes for a in arrays if a is not None)

    def _valid_mask(self, a: np.ndarray) -> np.ndarray:
        valid = ~np.isnan(a) if a.dtype.kind in "fc" else np.ones(a.shape, dtype=bool)
        if self.fill_value is not None:
            valid &= a != self.fill_value
        return valid

    def fold(self, tile: np.ndarray, origin: Sequence[int]) -> None:
        """Fold a native tile whose first cell is native index ``origin``."""
        origin = tuple(int(o) for o in origin)
        if self._kernel is not None:
            offset = [o // s for o, s in zip(origin, self.stride, strict=True)]
            phase = [o % s for o, s in zip(origin, self.stride, strict=True)]
            if any(c >= n for c, n in zip(offset, self.shape, strict=True)):
                return  # the tile lies in the trimmed tail of the level
            with self._lock:  # the kernel object is not thread-safe
                self._kernel.fold(tile, offset, self.stride, phase=phase)
            return
        if self.method == "nearest":
            self._fold_nearest(tile, origin)
            return
        per_axis = [
            _pieces(o, n, s) for o, n, s in zip(origin, tile.shape, self.stride, strict=True)
        ]
        for combo in itertools.product(*per_axis):
            cells_start = [a // s for (a, _), s in zip(combo, self.stride, strict=True)]
            piece = tile[
                tuple(slice(a - o, b - o) for (a, b), o in zip(combo, origin, strict=True))
            ]
            # A window cut by the array end (beyond the trimmed shape) contributes nothing.
            out = tuple(
                slice(c, min(c + max(1, (b - a) // s), n))
                for c, (a, b), s, n in zip(cells_start, combo, self.stride, self.shape, strict=True)
            )
            if any(sl.start >= sl.stop for sl in out):
                continue
            self._fold_piece(piece, out)

    def _reduce(self, a: np.ndarray, method: str, *, mask: bool = False) -> np.ndarray:
        fill = None if mask else self.fill_value  # masks are 0/1 uint8: no fill applies
        return np.asarray(kernel.block_reduce(a, self.stride, method, fill_value=fill, skipna=True))

    def _fold_piece(self, piece: np.ndarray, out: tuple[slice, ...]) -> None:
        keep = tuple(slice(0, sl.stop - sl.start) for sl in out)
        valid = self._valid_mask(piece)
        count = self._reduce(valid.view(np.uint8), "sum", mask=True)[keep]
        missing = None
        if self._missing is not None:
            missing = self._reduce((~valid).view(np.uint8), "max", mask=True)[keep] > 0
        if self.method in ("mean", "sum"):
            partial = self._reduce(piece, "sum")[keep]
            with self._lock:
                self._total[out] += partial.astype(self._total.dtype, copy=False)
                self._count[out] += count.astype(np.int64, copy=False)
                if missing is not None:
                    self._missing[out] |= missing  # type: ignore[index]
            return
        partial = self._reduce(piece, self.method)[keep]
        has = count > 0
        pick = np.maximum if self.method == "max" else np.minimum
        with self._lock:
            cur = self._value[out]
            cur_valid = self._valid[out]
            both = cur_valid & has
            merged = np.where(has, partial, cur)
            merged[both] = pick(cur[both], partial[both])
            self._value[out] = merged
            self._valid[out] = cur_valid | has
            if missing is not None:
                self._missing[out] |= missing  # type: ignore[index]

    def _fold_nearest(self, tile: np.ndarray, origin: tuple[int, ...]) -> None:
        # nearest keeps the top-left cell of each window: pick the window starts in the tile.
        src, dst = [], []
        for o, n, s, m in zip(origin, tile.shape, self.stride, self.shape, strict=True):
            first = -(-o // s)  # first window starting at or after o
            last = min(-(-(o + n) // s), m)  # windows starting before o + n, within the level
            if last <= first:
                return
            src.append(slice(first * s - o, (last - 1) * s - o + 1, s))
            dst.append(slice(first, last))
        with self._lock:
            self._value[tuple(dst)] = tile[tuple(src)]

    def result(self, region: Region | None = None) -> np.ndarray:
        """Final values of ``region`` (level coordinates; default: the whole level)."""
        sl = region.slices if region is not None else tuple(slice(0, n) for n in self.shape)
        if self._kernel is not None:
            with self._lock:
                start = [x.start for x in sl]
                stop = [x.stop for x in sl]
                out = self._kernel.result(start, stop)
            return np.asarray(out).astype(self.out_dtype, copy=False)
        with self._lock:
            if self.method == "nearest":
                out = self._value[sl].copy()
            elif self.method in ("max", "min"):
                out = np.where(self._valid[sl], self._value[sl], self._empty).astype(self.out_dtype)
            else:
                total, count = self._total[sl], self._count[sl]
                if self.method == "sum":
                    out = total.astype(self.out_dtype)
                elif self.out_dtype.kind in "fc":
                    with np.errstate(invalid="ignore", divide="ignore"):
                        mean = total / np.maximum(count, 1)
                    out = np.where(count > 0, mean, self._empty).astype(self.out_dtype)
                else:
                    rounded = _round_half_even(total, np.maximum(count, 1))
                    out = np.where(count > 0, rounded, self._empty).astype(self.out_dtype)
            if self._missing is not None:
                missing_value = (
                    self.fill_value
                    if self.fill_value is not None
                    else (np.nan if self.out_dtype.kind in "fc" else self._empty)
                )
                out = np.where(self._missing[sl], missing_value, out).astype(self.out_dtype)
        return out
