"""The kernel reports what it can do, and its version matches the installed wheel."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import topozarr_core


def test_version_matches_wheel():
    assert topozarr_core.__version__ == importlib.metadata.version("topozarr-core")


def test_methods():
    assert topozarr_core.METHODS == ("mean", "max", "min", "sum", "nearest", "mode")


def test_dtypes_are_numpy_names_and_all_work():
    assert len(topozarr_core.DTYPES) == 10
    for name in topozarr_core.DTYPES:
        assert np.dtype(name).name == name
        a = np.zeros((2, 2), name)
        for method in topozarr_core.METHODS:
            topozarr_core.block_reduce(a, (2, 2), method)


def test_max_ndim():
    assert topozarr_core.MAX_NDIM == 4
    topozarr_core.block_reduce(np.zeros((1,) * 4, "float32"), (1,) * 4, "mean")


def test_simd_level():
    assert topozarr_core.SIMD in ("avx2", "generic")
