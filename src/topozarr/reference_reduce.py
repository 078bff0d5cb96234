"""Block reductions with numpy: what every coarse cell must hold, computed from level 0.

An independent witness of the kernel's rules (docs/design.md): NaN and the fill value are
skipped; an all-missing window gives the fill value for mean/max/min and 0 for sum; integer
means round the exact mean half to even; ``nearest`` is the window's first cell; ``mode`` is the
most frequent valid value, ties going to the smallest.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def windows(native: np.ndarray, missing: np.ndarray, shape: tuple[int, int], factor: int) -> Any:
    """Cut the last two axes of ``native`` into ``factor`` x ``factor`` windows.

    ``native`` starts at the first window's corner; cells past the last window are dropped, and
    where level 0 is shorter than one window (an axis shorter than the factor) the rest is
    padded as missing.
    Returns values and missing mask shaped ``(..., rows, cols, factor * factor)``.
    """
    rows, cols = shape
    # Trim what lies past the last whole window, as xarray.coarsen(boundary="trim") does.
    native = native[..., : rows * factor, : cols * factor]
    missing = missing[..., : rows * factor, : cols * factor]
    pad = [(0, 0)] * (native.ndim - 2) + [
        (0, rows * factor - native.shape[-2]),
        (0, cols * factor - native.shape[-1]),
    ]
    native = np.pad(native, pad)
    missing = np.pad(missing, pad, constant_values=True)
    lead = native.shape[:-2]

    def cut(a: np.ndarray) -> np.ndarray:
        a = a.reshape((*lead, rows, factor, cols, factor))
        return np.swapaxes(a, -3, -2).reshape((*lead, rows, cols, factor * factor))

    return cut(native), cut(missing)


def missing_mask(values: np.ndarray, fill: Any) -> np.ndarray:
    """NaN, and cells equal to the fill value (``fill=None``: nothing but NaN is missing)."""
    missing = np.isnan(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    if fill is not None and not (isinstance(fill, float) and np.isnan(fill)):
        missing |= values == fill
    return missing


def reduce_windows(values: np.ndarray, missing: np.ndarray, method: str, fill: Any) -> np.ndarray:
    """Reduce the last axis of ``values`` (windows) by ``method``, skipping ``missing`` cells."""
    if method == "nearest":
        return values[..., 0]
    count = (~missing).sum(axis=-1)
    empty = np.nan if fill is None else fill
    if method == "sum":
        acc: type[np.generic] = np.float64 if values.dtype.kind == "f" else np.int64
        if values.dtype.kind == "u":
            acc = np.uint64
        return np.where(missing, 0, values).astype(acc).sum(axis=-1)
    if method in ("max", "min"):
        out = _extreme(values, missing, method)
    elif method == "mode":
        out = _mode(values, missing)
    elif method == "mean":
        total = np.where(missing, 0, values).astype(np.float64).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = total / count
        out = np.round(out) if values.dtype.kind in "iu" else out
    else:
        raise ValueError(f"no reference for method {method!r}")
    return np.where(count == 0, empty, out)


def _extreme(values: np.ndarray, missing: np.ndarray, method: str) -> np.ndarray:
    if values.dtype.kind == "f":
        neutral: Any = -np.inf if method == "max" else np.inf
    else:
        info = np.iinfo(values.dtype)
        neutral = info.min if method == "max" else info.max
    masked = np.where(missing, neutral, values)
    return masked.max(axis=-1) if method == "max" else masked.min(axis=-1)


def _mode(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Most frequent valid value of each window (ties: the smallest); any value if none valid."""
    lead, k = values.shape[:-1], values.shape[-1]
    v, m = values.reshape(-1, k), missing.reshape(-1, k)
    order = np.lexsort((v, m), axis=-1)  # valid cells first, each window ascending
    sv, sm = np.take_along_axis(v, order, -1), np.take_along_axis(m, order, -1)
    start = np.ones(sv.shape, bool)
    start[:, 1:] = (sv[:, 1:] != sv[:, :-1]) | (sm[:, 1:] != sm[:, :-1])
    run = np.cumsum(start.ravel()) - 1
    counts = np.bincount(run, weights=(~sm).ravel())
    run_row = np.repeat(np.arange(len(sv)), start.sum(axis=1))
    best = np.zeros(len(sv))
    np.maximum.at(best, run_row, counts)
    first = np.full(len(sv), len(counts))
    ties = np.flatnonzero(counts == best[run_row])
    np.minimum.at(first, run_row[ties], ties)  # runs are ascending, so the smallest value wins
    return sv.ravel()[start.ravel()][first].reshape(lead)


def agree(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Cells where a stored value equals the reference (floats: relative 1e-5, NaN == NaN)."""
    if got.dtype.kind != "f":
        return np.asarray(got == want)
    g, w = got.astype(np.float64), np.asarray(want, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        close = np.abs(g - w) <= 1e-5 * np.abs(w) + 1e-6 * np.maximum(1.0, np.abs(w))
    return close | (np.isnan(g) & np.isnan(w))
