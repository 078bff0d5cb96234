"""`method_table()`: the kernel's one description of each method, checked against what the
kernel computes and against numpy's own rules (never against the table itself)."""

import math

import numpy as np
import pytest
from topozarr_core import DTYPES, METHODS, Accumulator, block_reduce, method_table

TABLE = {row["name"]: row for row in method_table()}


def _valid(dtype: str) -> np.ndarray:
    """A 1-D array of 16 distinct values, all representable in `dtype`."""
    return np.arange(1, 17).astype(dtype)


def test_one_row_per_method_in_methods_order() -> None:
    assert [row["name"] for row in method_table()] == list(METHODS)
    for row in method_table():
        assert set(row["output_dtype"]) == set(DTYPES)
        assert set(row["state_bytes"]) == set(DTYPES)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_output_dtype_is_what_block_reduce_returns(method: str, dtype: str) -> None:
    out = block_reduce(_valid(dtype), (4,), method)
    assert out.dtype == np.dtype(TABLE[method]["output_dtype"][dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_widens_as_numpy_sums(dtype: str) -> None:
    # numpy's accumulation dtype of a sum: int64/uint64 for integers, the float itself.
    expected = np.add.reduce(np.zeros(2, dtype=dtype)).dtype
    assert np.dtype(TABLE["sum"]["output_dtype"][dtype]) == expected


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", [m for m in METHODS if m != "sum"])
def test_other_methods_keep_the_source_dtype(method: str, dtype: str) -> None:
    assert TABLE[method]["output_dtype"][dtype] == np.dtype(dtype).name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_empty_window_reports_the_fill_or_zero(method: str, dtype: str) -> None:
    fill = 7
    out = block_reduce(np.full(4, fill, dtype=dtype), (4,), method, fill_value=fill)
    # numpy: the nan-sum of nothing is 0; every other method reports the fill value.
    expected = np.nansum(np.array([], dtype="float64")) if method == "sum" else fill
    assert TABLE[method]["empty"] == ("zero" if method == "sum" else "fill")
    assert out.tolist() == [expected]


@pytest.mark.parametrize("dtype", ["uint8", "int32", "float64"])
@pytest.mark.parametrize("method", METHODS)
def test_state_bytes_is_a_fresh_accumulators_size_per_cell(method: str, dtype: str) -> None:
    shape = (3, 5)
    acc = Accumulator(shape, dtype, method)
    assert acc.nbytes == math.prod(shape) * TABLE[method]["state_bytes"][dtype]


@pytest.mark.parametrize("method", METHODS)
def test_decomposable_means_the_state_does_not_grow(method: str) -> None:
    # Fixed-size partial states (sum and count, extreme, first cell) keep nbytes constant
    # whatever is folded; a histogram grows with the distinct values of its window.
    acc = Accumulator((1,), "int32", method)
    before = acc.nbytes
    acc.fold(np.arange(64, dtype="int32"), (0,), (64,))
    assert (acc.nbytes == before) == TABLE[method]["decomposable"]
