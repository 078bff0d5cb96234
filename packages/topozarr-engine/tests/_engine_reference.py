"""Independent numpy reference for block reduction (reshape + nan-reductions).

Written from the documented semantics (xarray ``coarsen(boundary="trim")``, NaN and the fill
value skipped, integer means rounded half to even), never from engine or kernel code.
"""

from __future__ import annotations

import warnings

import numpy as np


def _windows(a: np.ndarray, stride: tuple[int, ...]) -> np.ndarray:
    """Trim like coarsen(boundary="trim") and reshape to (out0, w0, out1, w1, ...)."""
    keep, shape = [], []
    for n, s in zip(a.shape, stride, strict=True):
        w = s if n >= s else n
        out = n // s if n >= s else (1 if n else 0)
        keep.append(slice(0, out * w))
        shape += [out, w]
    return a[tuple(keep)].reshape(shape)


def reference_reduce(a, stride, method, fill_value=None, skipna=True):
    a = np.asarray(a)
    stride = tuple(stride)
    w = _windows(a, stride)
    axes = tuple(range(1, w.ndim, 2))
    if method == "nearest":
        return w[tuple(slice(None) if i % 2 == 0 else 0 for i in range(w.ndim))]
    f = w.astype(np.float64)
    valid = ~np.isnan(f)
    if fill_value is not None:
        valid &= w != fill_value
    count = valid.sum(axis=axes)
    anymissing = (~valid).any(axis=axes)
    missing = fill_value if fill_value is not None else np.nan
    if method == "sum":
        if a.dtype.kind in "iu":
            out = np.where(valid, w, 0).astype(np.int64 if a.dtype.kind == "i" else np.uint64)
            res = out.sum(axis=axes)
            if not skipna:
                res = np.where(anymissing, missing, res).astype(res.dtype)
            return res
        res = np.where(valid, f, 0).sum(axis=axes)
        if not skipna:
            res = np.where(anymissing, np.nan, res)
        return res.astype(a.dtype)
    if method == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            res = np.where(valid, f, 0).sum(axis=axes) / count
        if a.dtype.kind in "iu":
            res = np.round(res)  # numpy rounds half to even
    elif method in ("max", "min"):
        fn = np.nanmax if method == "max" else np.nanmin
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
            res = fn(np.where(valid, f, np.nan), axis=axes)
    else:
        raise ValueError(method)
    res = np.where(count > 0, res, missing)
    if not skipna:
        res = np.where(anymissing, missing, res)
    return res.astype(a.dtype)
