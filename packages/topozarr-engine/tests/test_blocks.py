"""is_all_fill against a plain numpy comparison, including blocks the sampling would miss."""

from __future__ import annotations

import numpy as np
import pytest
from topozarr_engine.blocks import is_all_fill


def _reference(block, fill):
    if fill is None:
        return block.size == 0
    if isinstance(fill, float) and np.isnan(fill):
        return block.dtype.kind in "fc" and bool(np.isnan(block).all())
    return bool((block == fill).all())


@pytest.mark.parametrize(
    ("dtype", "fill"), [(np.float32, np.nan), (np.int16, -9999), (np.uint8, 0)]
)
@pytest.mark.parametrize("shape", [(0, 4), (1,), (7, 13), (3, 64, 65)])
def test_matches_numpy_on_all_fill_and_single_valid_cell(dtype, fill, shape):
    block = np.full(shape, fill, dtype=dtype)
    assert is_all_fill(block, fill) is True
    if block.size:
        # One valid cell anywhere, including between the sampled positions.
        for flat in (0, block.size // 2 + 1, block.size - 1, 37):
            b = block.copy()
            b.flat[flat % block.size] = 5
            assert _reference(b, fill) is False
            assert is_all_fill(b, fill) is False


def test_strided_views_and_partly_filled_blocks():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(64, 96)).astype(np.float32)
    base[:, :40] = np.nan  # "ocean" on the left, including every first element of a row
    view = base[::2, ::3]
    assert is_all_fill(view, np.nan) is _reference(view, np.nan) is False
    ocean = base[:, :40][:, ::2]
    assert is_all_fill(ocean, np.nan) is _reference(ocean, np.nan) is True


def test_no_fill_value_and_nan_fill_on_integers():
    assert is_all_fill(np.zeros(4, np.int16), None) is False
    assert is_all_fill(np.zeros(4, np.int16), np.nan) is False
    assert is_all_fill(np.zeros(0, np.int16), None) is True


KERNEL_DTYPES = ["uint8", "int16", "uint32", "int64", "float32", "float64"]


@pytest.mark.parametrize("dtype", KERNEL_DTYPES)
@pytest.mark.parametrize("method", ["mean", "max", "min", "sum", "nearest", "mode"])
def test_output_dtype_and_empty_value_are_what_the_kernel_computes(method, dtype) -> None:
    from topozarr_engine.accumulate import output_dtype
    from topozarr_engine.blocks import empty_value
    from topozarr_engine.kernel import block_reduce

    dt = np.dtype(dtype)
    assert output_dtype(method, dt) == block_reduce(np.arange(4, dtype=dt), (2,), method).dtype
    # A window whose every cell is the fill value: the kernel's own answer.
    empty = block_reduce(np.full(2, 5, dtype=dt), (2,), method, fill_value=5)
    assert empty_value(method, dt, 5) == empty[0]


def test_an_unknown_method_is_an_error_naming_the_valid_ones() -> None:
    from topozarr_engine.accumulate import output_dtype
    from topozarr_engine.blocks import empty_value

    with pytest.raises(ValueError, match=r"'median'.*mean"):
        output_dtype("median", np.dtype("float32"))
    with pytest.raises(ValueError, match=r"'median'.*mean"):
        empty_value("median", np.dtype("float32"), None)
