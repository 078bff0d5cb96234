"""A numpy stand-in for ``topozarr_engine.kernel``, used only while the compiled kernel is
not importable in the dev venv (it is rebuilt concurrently). Follows the kernel contract."""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np

METHODS = ("mean", "max", "min", "sum", "nearest")
DTYPES = (
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "uint64",
    "int64",
    "float32",
    "float64",
)
MAX_NDIM = 4
KERNEL_VERSION = "0.0.0+numpy-shim"


def block_reduce(a: Any, stride: Any, method: str, fill_value: Any = None, skipna: bool = True):
    a = np.asarray(a)
    stride = tuple(int(s) for s in stride)
    out_shape = tuple(max(1, n // s) if n else 0 for n, s in zip(a.shape, stride, strict=True))
    trimmed = a[tuple(slice(0, o * s) for o, s in zip(out_shape, stride, strict=True))]
    win = tuple(min(s, n) for s, n in zip(stride, trimmed.shape, strict=True))
    new_shape: list[int] = []
    for o, w in zip(out_shape, win, strict=True):
        new_shape += [o, w]
    blocks = trimmed.reshape(new_shape)
    axes = tuple(range(1, 2 * a.ndim, 2))
    if method == "nearest":
        return blocks[tuple(slice(None) if i % 2 == 0 else 0 for i in range(2 * a.ndim))].copy()
    valid = np.ones(blocks.shape, dtype=bool)
    if a.dtype.kind == "f":
        valid &= ~np.isnan(blocks)
    if fill_value is not None:
        valid &= blocks != fill_value
    count = valid.sum(axis=axes)
    if a.dtype.kind == "f":
        fill = np.nan if fill_value is None else fill_value
        vals = np.where(valid, blocks, 0).astype(np.float64)
    else:
        fill = 0 if fill_value is None else fill_value
        vals = np.where(valid, blocks, 0)
    if method == "sum":
        out = vals.sum(axis=axes)
        return out.astype(np.add.reduce(np.zeros(1, a.dtype)).dtype)
    if method == "mean":
        if a.dtype.kind == "f":
            m = vals.sum(axis=axes) / np.maximum(count, 1)
        else:
            s = vals.astype(object).sum(axis=axes)
            m = np.array(
                [
                    float(np.round(np.float64(x) / max(c, 1)))
                    for x, c in zip(s.ravel(), count.ravel(), strict=True)
                ]
            ).reshape(s.shape)
        out = np.where(count > 0, m, fill)
        return out.astype(a.dtype)
    if method in ("max", "min"):
        if a.dtype.kind == "f":
            big = np.inf if method == "min" else -np.inf
        else:
            info = np.iinfo(a.dtype)
            big = info.max if method == "min" else info.min
        filled = np.where(valid, blocks, big)
        r = filled.min(axis=axes) if method == "min" else filled.max(axis=axes)
        return np.where(count > 0, r, fill).astype(a.dtype)
    raise ValueError(method)


def install_if_missing() -> bool:
    """Register this module as ``topozarr_engine.kernel`` if the real one cannot import."""
    try:
        import topozarr_engine.kernel
    except ImportError:
        import topozarr_engine

        mod = types.ModuleType("topozarr_engine.kernel")
        for name in ("METHODS", "DTYPES", "MAX_NDIM", "KERNEL_VERSION", "block_reduce"):
            setattr(mod, name, globals()[name])
        sys.modules["topozarr_engine.kernel"] = mod
        topozarr_engine.kernel = mod  # type: ignore[attr-defined]
        return True
    return False
