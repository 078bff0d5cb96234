"""Independent numpy reference for the kernel, and hypothesis strategies shared by the tests.

The reference is written only with numpy reshapes, masks and Python integers, never with
topozarr_core, so agreement means something.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

METHODS = ("mean", "max", "min", "sum", "nearest")
INT_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64")
FLOAT_DTYPES = ("float32", "float64")
DTYPES = INT_DTYPES + FLOAT_DTYPES


def out_shape(shape, stride, strict=False):
    """xarray coarsen(boundary="trim") shape; `strict` drops the one-window rule."""
    return tuple(
        1 if (not strict and 0 < n < s) else n // s for n, s in zip(shape, stride, strict=True)
    )


def reference(a, stride, method, fill_value=None, skipna=True, strict=False):
    """Block-reduce `a` the slow, obvious way."""
    a = np.asarray(a)
    nd = a.ndim
    dtype = a.dtype
    is_float = dtype.kind == "f"
    outs = out_shape(a.shape, stride, strict)
    widths = [n if (not strict and 0 < n < s) else s for n, s in zip(a.shape, stride, strict=True)]
    if method == "sum":
        out_dtype = dtype if is_float else np.dtype("uint64" if dtype.kind == "u" else "int64")
    else:
        out_dtype = dtype
    if 0 in outs:
        return np.zeros(outs, out_dtype)
    cut = a[tuple(slice(0, o * w) for o, w in zip(outs, widths, strict=True))]
    b = cut.reshape([x for o, w in zip(outs, widths, strict=True) for x in (o, w)])
    # Move the window axes last and flatten them: b[..., k] is cell k of each window.
    b = b.transpose([2 * i for i in range(nd)] + [2 * i + 1 for i in range(nd)])
    b = b.reshape((*outs, -1))
    if method == "nearest":
        return b[..., 0].copy()
    missing = np.isnan(b) if is_float else np.zeros(b.shape, bool)
    if fill_value is not None:
        missing |= b == fill_value
    count = (~missing).sum(axis=-1)
    bad = count == 0 if skipna else missing.any(axis=-1)
    fill = fill_value if fill_value is not None else (np.nan if is_float else 0)
    if method in ("mean", "sum"):
        if is_float:
            total = np.where(missing, 0.0, b.astype(np.float64)).sum(axis=-1)
        else:
            # Python ints: exact, whatever the dtype.
            total = np.where(missing, 0, b).astype(object).sum(axis=-1)
        if method == "sum":
            if is_float:
                res = total.astype(out_dtype)
            else:
                info = np.iinfo(out_dtype)
                res = np.array(
                    [min(max(int(t), info.min), info.max) for t in total.ravel()], out_dtype
                ).reshape(total.shape)
            if skipna:
                return res
            return np.where(missing.any(axis=-1), np.array(fill).astype(out_dtype), res)
        if is_float:
            with np.errstate(invalid="ignore", divide="ignore"):
                res = (total / np.maximum(count, 1)).astype(dtype)
        else:
            res = np.array(
                [
                    _round_half_even(int(t), max(int(c), 1))
                    for t, c in zip(total.ravel(), count.ravel(), strict=True)
                ],
                dtype=object,
            ).reshape(total.shape)
            res = res.astype(dtype) if res.size else np.zeros(res.shape, dtype)
        return np.where(bad, np.array(fill).astype(dtype), res).astype(dtype)
    # max / min
    if is_float:
        neutral = -np.inf if method == "max" else np.inf
    else:
        info = np.iinfo(dtype)
        neutral = info.min if method == "max" else info.max
    vals = np.where(missing, np.array(neutral).astype(dtype), b)
    res = vals.max(axis=-1) if method == "max" else vals.min(axis=-1)
    return np.where(bad, np.array(fill).astype(dtype), res).astype(dtype)


def _round_half_even(total: int, n: int) -> int:
    q, r = divmod(total, n)  # floor division, 0 <= r < n
    if 2 * r > n or (2 * r == n and q % 2 == 1):
        q += 1
    return q


def assert_matches(got, want):
    """Exact for integers; floats within 1 ulp of the f64-accumulated reference, same NaNs."""
    got = np.asarray(got)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want)
        return
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    if ok.any():
        np.testing.assert_array_max_ulp(got[ok], want[ok], maxulp=1)


def elements(dtype):
    """Values that sum exactly in f64 whatever the order (floats), or the full integer range."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        # Multiples of 1/64 up to 2**15: exactly summable in f64, exactly stored in float32.
        return st.integers(-(2**21), 2**21).map(lambda i: i / 64) | st.just(math.nan)
    info = np.iinfo(dtype)
    return st.integers(int(info.min), int(info.max)) | st.sampled_from(
        [0, 1, 2, int(info.max), int(info.min)]
    )


@st.composite
def shapes_and_strides(draw, min_ndim=1, max_ndim=4, max_side=7, max_stride=5):
    nd = draw(st.integers(min_ndim, max_ndim))
    shape = tuple(draw(st.integers(1, max_side)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, max_stride)) for _ in range(nd))
    return shape, stride


@st.composite
def arrays_with_views(draw, dtype, shape):
    """An array of `shape`, sometimes as a strided or negative-stride view of a bigger one."""
    steps = tuple(draw(st.sampled_from([1, 1, 2, -1, -2])) for _ in shape)
    base_shape = tuple(n * abs(s) for n, s in zip(shape, steps, strict=True))
    base = draw(hnp.arrays(dtype, base_shape, elements=elements(dtype)))
    view = base[tuple(slice(None, None, s) for s in steps)]
    assert view.shape == shape
    return view


@st.composite
def fill_values(draw, a):
    """None, a value present in `a` (so it matches), or another valid value."""
    choice = draw(st.sampled_from(["none", "present", "zero"]))
    if choice == "none":
        return None
    if choice == "present" and a.size:
        flat = a.ravel()
        v = flat[draw(st.integers(0, flat.size - 1))]
        if a.dtype.kind == "f":
            return None if np.isnan(v) else float(v)
        return int(v)
    return 0.0 if a.dtype.kind == "f" else 0
