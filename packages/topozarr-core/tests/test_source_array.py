"""The native source reader: regions of local Zarr arrays decoded by zarrs, compared with what
zarr-python reads from the same array (the reference), for v3 and v2 arrays, several dtypes,
codecs, missing chunks, odd sizes and 1- to 4-D regions across chunk edges."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import zarr
from topozarr_core import SourceArray
from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec


def _values(shape, dtype, rng):
    if np.dtype(dtype).kind == "f":
        a = rng.normal(100, 50, shape).astype(dtype)
        a[rng.random(shape) < 0.1] = np.nan
        return a
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def _create(root, shape, dtype, *, chunks, fill, zarr_format=3, **kwargs):
    arr = zarr.create_array(
        zarr.storage.LocalStore(root),
        name="g/a",
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        fill_value=fill,
        zarr_format=zarr_format,
        **kwargs,
    )
    values = _values(shape, dtype, np.random.default_rng(7))
    arr[...] = values
    return arr


def _regions(shape, chunks):
    """The whole array, one region inside one chunk, and one across chunk edges."""
    inside = tuple(
        slice(1, min(c, n) - 1 if min(c, n) > 2 else min(c, n))
        for n, c in zip(shape, chunks, strict=True)
    )
    across = tuple(
        slice(c // 2, min(n, c + c // 2 + 1)) for n, c in zip(shape, chunks, strict=True)
    )
    return [tuple(slice(0, n) for n in shape), inside, across]


def _read(src, key):
    return src.read([s.start for s in key], [s.stop for s in key])


def _check(src, arr, keys, dtype):
    """Each region read natively equals zarr-python's: dtype, C order, writeable, values."""
    for key in keys:
        got = _read(src, key)
        assert got.dtype == np.dtype(dtype)
        assert got.flags.c_contiguous and got.flags.writeable
        np.testing.assert_array_equal(got, arr[key])


CASES = {
    "float32-nan-fill": ((37, 53), "float32", (16, 16), np.nan),
    "int16": ((29, 31), "int16", (8, 16), -999),
    "uint8": ((17, 70), "uint8", (16, 32), 0),
    "float64": ((33, 19), "float64", (10, 7), 0.0),
    "int8-1d": ((101,), "int8", (16,), 3),
    "uint16-3d": ((3, 21, 22), "uint16", (2, 8, 8), 7),
    "int64-4d": ((2, 3, 9, 10), "int64", (1, 2, 4, 4), -1),
    "uint32": ((9, 9), "uint32", (4, 4), 5),
    "int32": ((9, 9), "int32", (4, 4), 5),
    "uint64": ((9, 9), "uint64", (4, 4), 5),
}


@pytest.mark.parametrize("zarr_format", [3, 2])
@pytest.mark.parametrize("case", CASES)
def test_regions_equal_zarr_python(tmp_path, case, zarr_format):
    shape, dtype, chunks, fill = CASES[case]
    arr = _create(tmp_path, shape, dtype, chunks=chunks, fill=fill, zarr_format=zarr_format)
    src = SourceArray(str(tmp_path), "g/a")
    assert src.shape == shape
    assert np.dtype(src.dtype) == np.dtype(dtype)
    _check(src, arr, _regions(shape, chunks), dtype)


@pytest.mark.parametrize("zarr_format", [3, 2])
@pytest.mark.parametrize("case", CASES)
def test_whole_chunks_equal_zarr_python(tmp_path, case, zarr_format):
    """A region that is exactly one stored chunk (how tiles follow source chunks) takes the
    decoded chunk as it is: every whole chunk, and the clipped ones at the edges."""
    shape, dtype, chunks, fill = CASES[case]
    arr = _create(tmp_path, shape, dtype, chunks=chunks, fill=fill, zarr_format=zarr_format)
    src = SourceArray(str(tmp_path), "g/a")
    grid = [range(0, n, c) for n, c in zip(shape, chunks, strict=True)]
    keys = [
        tuple(slice(o, min(o + c, n)) for o, c, n in zip(origin, chunks, shape, strict=True))
        for origin in itertools.product(*grid)
    ]
    _check(src, arr, keys, dtype)


def test_whole_big_endian_chunks_are_native_order(tmp_path):
    """zarr v2 stores '>i2' big-endian; a whole chunk read natively holds the same numbers."""
    arr = zarr.create_array(
        zarr.storage.LocalStore(tmp_path),
        name="a",
        shape=(8, 8),
        dtype=">i2",
        chunks=(4, 4),
        zarr_format=2,
    )
    arr[...] = np.arange(-32, 32, dtype=">i2").reshape(8, 8) * 997
    got = _read(SourceArray(str(tmp_path), "a"), (slice(4, 8), slice(0, 4)))
    np.testing.assert_array_equal(got, arr[4:8, 0:4])


@pytest.mark.parametrize("zarr_format", [3, 2])
def test_missing_chunks_read_as_the_fill_value(tmp_path, zarr_format):
    arr = zarr.create_array(
        zarr.storage.LocalStore(tmp_path),
        name="a",
        shape=(40, 50),
        dtype="float32",
        chunks=(16, 16),
        fill_value=np.nan,
        zarr_format=zarr_format,
    )
    arr[20:30, 5:45] = np.arange(400, dtype="float32").reshape(10, 40)  # most chunks missing
    src = SourceArray(str(tmp_path), "a")
    for key in [
        (slice(0, 40), slice(0, 50)),
        (slice(0, 10), slice(0, 10)),
        (slice(12, 33), slice(3, 47)),
    ]:
        np.testing.assert_array_equal(_read(src, key), arr[key])
    assert np.isnan(_read(src, (slice(0, 16), slice(0, 16)))).all()


@pytest.mark.parametrize(
    "compressors",
    [
        [ZstdCodec(level=3)],
        [BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")],
        [GzipCodec(level=1)],
        None,
    ],
    ids=["zstd", "blosc", "gzip", "none"],
)
def test_codecs_and_shards(tmp_path, compressors):
    arr = _create(
        tmp_path,
        (70, 90),
        "float32",
        chunks=(8, 16),
        fill=np.nan,
        shards=(32, 32),
        compressors=compressors,
    )
    src = SourceArray(str(tmp_path), "g/a")
    for key in _regions((70, 90), (32, 32)):
        np.testing.assert_array_equal(_read(src, key), arr[key])


def test_an_empty_region_has_the_asked_shape(tmp_path):
    _create(tmp_path, (10, 12), "int16", chunks=(4, 4), fill=0)
    got = SourceArray(str(tmp_path), "g/a").read([3, 0], [3, 12])
    assert got.shape == (0, 12)
    assert got.dtype == np.int16


def test_a_region_outside_the_array_is_a_value_error(tmp_path):
    _create(tmp_path, (10, 12), "int16", chunks=(4, 4), fill=0)
    src = SourceArray(str(tmp_path), "g/a")
    with pytest.raises(ValueError, match="not within zarr array"):
        src.read([0, 0], [11, 12])
    with pytest.raises(ValueError, match="not within zarr array"):
        src.read([0], [10])


def test_no_array_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="opening zarr array"):
        SourceArray(str(tmp_path), "nothing")


def test_an_unsupported_dtype_is_a_type_error(tmp_path):
    zarr.create_array(
        zarr.storage.LocalStore(tmp_path), name="b", shape=(4,), dtype="bool", chunks=(2,)
    )
    with pytest.raises(TypeError, match="bool"):
        SourceArray(str(tmp_path), "b")
