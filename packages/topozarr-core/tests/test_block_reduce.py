"""block_reduce against the independent numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from _core_reference import (
    DTYPES,
    METHODS,
    arrays_with_views,
    assert_matches,
    fill_values,
    out_shape,
    reference,
    shapes_and_strides,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from topozarr_core import block_reduce


@st.composite
def cases(draw, dtypes=DTYPES, methods=METHODS):
    dtype = draw(st.sampled_from(dtypes))
    method = draw(st.sampled_from(methods))
    shape, stride = draw(shapes_and_strides())
    a = draw(arrays_with_views(np.dtype(dtype), shape))
    fill = draw(fill_values(a))
    skipna = draw(st.booleans())
    return a, stride, method, fill, skipna


@settings(max_examples=400, deadline=None)
@given(cases())
def test_matches_reference(case):
    a, stride, method, fill, skipna = case
    got = block_reduce(a, stride, method, fill_value=fill, skipna=skipna)
    assert_matches(got, reference(a, stride, method, fill, skipna))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
def test_every_method_dtype_ndim(dtype, method, ndim):
    rng = np.random.default_rng(ndim)
    shape = (5, 4, 3, 7)[-ndim:]
    stride = (2, 3, 2, 2)[-ndim:]
    a = (rng.integers(0, 50, shape)).astype(dtype)
    if a.dtype.kind == "f":
        a[rng.random(shape) < 0.3] = np.nan
    for fill in (None, 7):
        for skipna in (True, False):
            got = block_reduce(a, stride, method, fill_value=fill, skipna=skipna)
            assert_matches(got, reference(a, stride, method, fill, skipna))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("stride", [(2, 2), (3, 3), (2, 4), (4, 2), (1, 2), (2, 1), (5, 3)])
def test_float_fast_path_random_data(dtype, stride):
    # Random normal data is not exactly summable: float32 stays within 1 ulp of the f64
    # reference; float64 sums in another order can differ by a few ulp of the *inputs* when
    # values cancel, so compare against the input scale there.
    rng = np.random.default_rng(0)
    a = rng.standard_normal((67, 301)).astype(dtype)
    a[rng.random(a.shape) < 0.3] = np.nan
    for method in ("mean", "sum"):
        for skipna in (True, False):
            got = block_reduce(a, stride, method, skipna=skipna)
            want = reference(a, stride, method, None, skipna)
            if dtype == "float32":
                assert_matches(got, want)
            else:
                assert got.dtype == want.dtype
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_large_parallel_matches_serial_reference():
    # Big enough to take the rayon path.
    rng = np.random.default_rng(1)
    a = rng.integers(-1000, 1000, (3, 301, 517)).astype("int32")
    got = block_reduce(a, (1, 2, 2), "mean", fill_value=-1000)
    assert_matches(got, reference(a, (1, 2, 2), "mean", -1000))
    f = a.astype("float32") / 8
    f[::7] = np.nan
    for method in METHODS:
        assert_matches(block_reduce(f, (1, 3, 2), method), reference(f, (1, 3, 2), method))


def test_docstring_examples():
    a = np.array([[1.0, 2.0, np.nan, np.nan], [3.0, 4.0, np.nan, 9.0]], dtype="float32")
    np.testing.assert_array_equal(block_reduce(a, (2, 2), "mean"), [[2.5, 9.0]])
    np.testing.assert_array_equal(
        block_reduce(a, (2, 2), "mean", skipna=False), np.array([[2.5, np.nan]], "float32")
    )
    np.testing.assert_array_equal(block_reduce(a, (2, 2), "sum"), [[10.0, 9.0]])
    np.testing.assert_array_equal(block_reduce(a, (2, 2), "nearest"), [[1.0, np.nan]])


def test_shape_follows_xarray_trim():
    a = np.zeros((5, 3, 1), "uint8")
    assert block_reduce(a, (2, 4, 3), "max").shape == out_shape(a.shape, (2, 4, 3)) == (2, 1, 1)


def test_integer_mean_rounds_half_to_even():
    a = np.array([1, 2, 3, 4, -1, -2, -3, -4, 250, 251], dtype="int16")
    np.testing.assert_array_equal(block_reduce(a, (2,), "mean"), [2, 4, -2, -4, 250])
    u = np.array([254, 255], dtype="uint8")
    assert block_reduce(u, (2,), "mean").tolist() == [254]


def test_sum_promotes_and_saturates():
    a = np.array([2**62, 2**62, 2**62, 2**62], dtype="int64")
    out = block_reduce(a, (4,), "sum")
    assert out.dtype == np.int64 and out[0] == np.iinfo(np.int64).max
    u = np.full(4, 2**63, dtype="uint64")
    assert block_reduce(u, (4,), "sum")[0] == np.iinfo(np.uint64).max
    assert block_reduce(np.ones(4, "uint8"), (2,), "sum").dtype == np.uint64
    assert block_reduce(np.ones(4, "int8"), (2,), "sum").dtype == np.int64
    assert block_reduce(np.ones(4, "float32"), (2,), "sum").dtype == np.float32


def test_all_missing_windows():
    a = np.full((2, 2), -9, dtype="int32")
    for method in ("mean", "max", "min"):
        assert block_reduce(a, (2, 2), method, fill_value=-9).tolist() == [[-9]]
    assert block_reduce(a, (2, 2), "sum", fill_value=-9).tolist() == [[0]]
    assert block_reduce(a, (2, 2), "sum", fill_value=-9, skipna=False).tolist() == [[-9]]
    f = np.full((2, 2), np.nan, dtype="float64")
    assert np.isnan(block_reduce(f, (2, 2), "mean")).all()
    assert block_reduce(f, (2, 2), "sum").tolist() == [[0.0]]


def test_does_not_modify_or_copy_input():
    a = np.arange(64, dtype="float32").reshape(8, 8)
    a.flags.writeable = False
    view = a[::-1, ::2]
    out = block_reduce(view, (2, 2), "mean")
    assert_matches(out, reference(view, (2, 2), "mean"))


def test_empty_axis_gives_empty_output():
    assert block_reduce(np.zeros((0, 4), "float32"), (2, 2), "mean").shape == (0, 2)
