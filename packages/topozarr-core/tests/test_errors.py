"""Bad input raises ValueError/TypeError naming the bad value; never a panic."""

from __future__ import annotations

import numpy as np
import pytest
from topozarr_core import block_reduce

A = np.zeros((4, 4), "float32")


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"method": "median"}, ValueError, r'"median".*"mean", "max", "min", "sum", "nearest"'),
        ({"stride": (0, 2)}, ValueError, r"stride \[0, 2\] has 0 on axis 0"),
        ({"stride": (2, -1)}, ValueError, r"-1 on axis 1"),
        ({"stride": (2,)}, ValueError, r"stride has 1 entries but the array has 2"),
        ({"stride": (2, 2, 2)}, ValueError, r"stride has 3 entries"),
        ({"stride": "ab"}, TypeError, r"stride must be a sequence of integers"),
        ({"a": np.zeros((), "float32"), "stride": ()}, ValueError, r"1 to 4 dimensions, got 0"),
        ({"a": np.zeros((1,) * 5, "float32"), "stride": (1,) * 5}, ValueError, r"got 5"),
        ({"a": np.zeros(4, "complex64"), "stride": (2,)}, TypeError, r'"complex64"'),
        ({"a": np.zeros(4, "bool"), "stride": (2,)}, TypeError, r'"bool"'),
        ({"a": np.zeros(4, "float16"), "stride": (2,)}, TypeError, r'"float16"'),
        ({"a": [1.0, 2.0], "stride": (2,)}, TypeError, r"expected a numpy.ndarray, got list"),
        ({"a": np.zeros(4, "uint8"), "stride": (2,), "fill_value": 300}, ValueError, r"300.*uint8"),
        ({"a": np.zeros(4, "uint8"), "stride": (2,), "fill_value": -1}, ValueError, r"-1.*uint8"),
        ({"a": np.zeros(4, "int16"), "stride": (2,), "fill_value": 1.5}, ValueError, r"1.5.*int16"),
        (
            {"a": np.zeros(4, "int32"), "stride": (2,), "fill_value": np.nan},
            ValueError,
            r"nan.*int32",
        ),
        ({"fill_value": 0.1}, ValueError, r"0.1.*float32"),
        ({"fill_value": "x"}, TypeError, r"fill_value must be a number"),
        ({"fill_value": True}, TypeError, r"fill_value must be a number"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = {"a": A, "stride": (2, 2), "method": "mean", **kwargs}
    with pytest.raises(exc, match=match):
        block_reduce(**args)


def test_accepted_fill_values():
    assert block_reduce(np.zeros(4, "uint8"), (2,), "mean", fill_value=255).dtype == np.uint8
    assert block_reduce(np.zeros(4, "int16"), (2,), "mean", fill_value=-3.0).dtype == np.int16
    assert block_reduce(np.zeros(4, "uint64"), (2,), "max", fill_value=2**64 - 1).shape == (2,)
    assert block_reduce(A, (2, 2), "mean", fill_value=np.float32(0.1)).shape == (2, 2)
    assert block_reduce(A, (2, 2), "mean", fill_value=np.int64(-9999)).shape == (2, 2)
    assert block_reduce(A, (2, 2), "mean", fill_value=np.nan).shape == (2, 2)
