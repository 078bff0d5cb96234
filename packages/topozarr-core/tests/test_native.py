"""The native writer: shards encoded by the kernel read back through zarr-python, unchanged.

zarr-python creates each array (so its ``zarr.json`` is the reference), the kernel writes the
shards, and zarr-python decodes them: values must equal the numpy data exactly, for every
codec chain zarr-python writes by default or on request.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import zarr
from topozarr_core import NativeStore
from zarr.codecs import BloscCodec, GzipCodec, TransposeCodec, ZstdCodec

# The kernel has no default of its own (the engine passes its one constant); any budget works.
INFLIGHT = 1 << 20

CODECS = {
    "zarr-default": "auto",
    "zstd1": [ZstdCodec(level=1)],
    "blosc-lz4-shuffle": [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")],
    "gzip": [GzipCodec(level=1)],
    "none": None,
}


def _create(root, path, shape, dtype, *, chunks, shards, fill, compressors="auto", filters=None):
    kwargs = {} if compressors == "auto" else {"compressors": compressors}
    if filters is not None:
        kwargs["filters"] = filters
    return zarr.create_array(
        zarr.storage.LocalStore(root),
        name=path,
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        shards=shards,
        fill_value=fill,
        dimension_names=[f"d{i}" for i in range(len(shape))],
        **kwargs,
    )


def _write_all(store, arr, data):
    native = store.open_array(arr.path)
    shard = native.shard_shape
    grid = [-(-n // s) for n, s in zip(data.shape, shard, strict=True)]
    for idx in itertools.product(*map(range, grid)):
        piece = data[tuple(slice(i * s, (i + 1) * s) for i, s in zip(idx, shard, strict=True))]
        native.write_shard(list(idx), np.ascontiguousarray(piece).reshape(-1).view(np.uint8))
    store.flush()


@pytest.mark.parametrize("codec", sorted(CODECS))
@pytest.mark.parametrize("dtype", ["float32", "int16", "uint8", "float64", "int64"])
def test_shards_read_back_through_zarr_python(tmp_path, codec, dtype):
    rng = np.random.default_rng(3)
    shape = (37, 53)  # odd: edge shards are padded
    if np.dtype(dtype).kind == "f":
        data = rng.normal(100, 30, shape).astype(dtype)
        data[rng.random(shape) < 0.3] = np.nan
        fill = np.nan
    else:
        data = rng.integers(0, 100, shape).astype(dtype)
        fill = 7
        data[:16, :] = 7  # whole fill shards: their keys must not exist
    arr = _create(
        tmp_path,
        "g/a",
        shape,
        dtype,
        chunks=(8, 8),
        shards=(16, 16),
        fill=fill,
        compressors=CODECS[codec],
    )
    store = NativeStore.local(str(tmp_path), max_inflight_bytes=INFLIGHT)
    _write_all(store, arr, data)
    back = zarr.open_array(zarr.storage.LocalStore(tmp_path), path="g/a", mode="r")[...]
    np.testing.assert_array_equal(back, data)
    if np.dtype(dtype).kind in "iu":
        assert not (tmp_path / "g/a/c/0/0").exists()
    assert store.objects_written > 0


def test_three_dims_with_transpose_filter(tmp_path):
    rng = np.random.default_rng(4)
    data = rng.normal(size=(3, 21, 19)).astype("float32")
    arr = _create(
        tmp_path,
        "cube",
        data.shape,
        "float32",
        chunks=(1, 8, 8),
        shards=(2, 16, 16),
        fill=0.0,
        filters=[TransposeCodec(order=(0, 2, 1))],
    )
    store = NativeStore.local(str(tmp_path), max_inflight_bytes=INFLIGHT)
    _write_all(store, arr, data)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "cube"), mode="r")[...], data)


def test_unsharded_arrays_are_written_chunk_by_chunk(tmp_path):
    data = np.arange(30 * 20, dtype="uint16").reshape(30, 20)
    arr = zarr.create_array(
        zarr.storage.LocalStore(tmp_path),
        name="plain",
        shape=data.shape,
        dtype="uint16",
        chunks=(16, 16),
        fill_value=0,
    )
    store = NativeStore.local(str(tmp_path), max_inflight_bytes=INFLIGHT)
    assert store.open_array("plain").shard_shape == (16, 16)
    _write_all(store, arr, data)
    np.testing.assert_array_equal(arr[...], data)


def test_rewriting_a_shard_with_fill_deletes_it(tmp_path):
    arr = _create(tmp_path, "a", (8, 8), "float32", chunks=(4, 4), shards=(8, 8), fill=np.nan)
    store = NativeStore.local(str(tmp_path), max_inflight_bytes=INFLIGHT)
    native = store.open_array("a")
    native.write_shard([0, 0], np.ones((8, 8), "float32").view(np.uint8).reshape(-1))
    store.flush()
    assert (tmp_path / "a/c/0/0").exists()
    native.write_shard([0, 0], np.full((8, 8), np.nan, "float32").view(np.uint8).reshape(-1))
    store.flush()
    assert not (tmp_path / "a/c/0/0").exists()
    assert np.isnan(arr[...]).all()


def test_bad_calls_are_value_errors(tmp_path):
    _create(tmp_path, "a", (10, 10), "float32", chunks=(4, 4), shards=(8, 8), fill=0.0)
    store = NativeStore.local(str(tmp_path), max_inflight_bytes=INFLIGHT)
    native = store.open_array("/a/")
    assert native.path == "a"
    assert native.shape == (10, 10)
    assert native.itemsize == 4
    with pytest.raises(ValueError, match="outside the grid"):
        native.write_shard([2, 0], np.zeros(4 * 64, np.uint8))
    with pytest.raises(ValueError, match="bytes"):
        native.write_shard([1, 1], np.zeros(7, np.uint8))  # edge shard is 2x2 floats = 16 bytes
    with pytest.raises(ValueError, match="C-contiguous"):
        native.write_shard([0, 0], np.zeros(512, np.uint8)[::2])
    with pytest.raises(FileNotFoundError, match=r"nope/zarr\.json"):
        store.open_array("nope")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/zarr.json").write_text('{"zarr_format": 3, "node_type": "array"}')
    with pytest.raises(ValueError, match="bad"):
        store.open_array("bad")
    assert repr(store).startswith("NativeStore(") and "file://" in store.url


def test_storage_failure_surfaces_on_flush_with_the_key(tmp_path):
    arr = _create(tmp_path, "a", (8, 8), "uint8", chunks=(4, 4), shards=(4, 4), fill=0)
    store = NativeStore.local(str(tmp_path), max_inflight_bytes=INFLIGHT)
    native = store.open_array(arr.path)
    (tmp_path / "a/c").write_bytes(b"a file where the chunk directory goes")
    native.write_shard([0, 1], np.ones(16, np.uint8))
    with pytest.raises(OSError, match=r"a/c/0/1"):
        store.flush()
    with pytest.raises(OSError, match=r"a/c/0/1"):  # every later call reports it too
        native.write_shard([1, 1], np.ones(16, np.uint8))


def test_s3_configuration_errors_name_the_key_and_hide_the_secret():
    with pytest.raises(ValueError, match="bogus_key"):
        NativeStore.s3("bucket", config={"bogus_key": "1"}, max_inflight_bytes=INFLIGHT)
    with pytest.raises(ValueError, match="bucket"):
        NativeStore.s3("", config={}, max_inflight_bytes=INFLIGHT)
    store = NativeStore.s3(
        "bucket",
        "some/prefix",
        config={
            "aws_endpoint": "http://127.0.0.1:9",
            "aws_region": "us-east-1",
            "aws_access_key_id": "AKIDEXAMPLE",
            "aws_secret_access_key": "S3CR3T-never-shown",
        },
        client_options={"allow_http": True},
        max_retries=0,
        connect_timeout=1.0,
        max_inflight_bytes=INFLIGHT,
    )
    assert store.url == "s3://bucket/some/prefix"
    assert "S3CR3T" not in repr(store)
    with pytest.raises(OSError) as info:  # nothing listens on port 9
        store.open_array("0/data")
    assert "s3://bucket/some/prefix/0/data/zarr.json" in str(info.value)
    assert "S3CR3T-never-shown" not in str(info.value)


def test_s3_options_are_checked_like_python_keyword_arguments():
    def s3(bucket, prefix="", *, config=None, max_retries=10_000, retry_timeout=300.0):
        """What Python itself says for a misspelt keyword-only option."""

    with pytest.raises(TypeError) as expected:
        s3("bucket", max_retry=3)
    wanted = str(expected.value).split(") ", 1)[1]  # "got an unexpected keyword argument ..."
    # Python 3.13 adds ". Did you mean 'max_retries'?"; the kernel states the error itself.
    wanted = re.escape(wanted.split(". Did you mean")[0])
    with pytest.raises(TypeError, match=wanted):
        NativeStore.s3("bucket", max_retry=3)
    with pytest.raises(TypeError, match="max_retries"):
        NativeStore.s3("bucket", max_retries="many")
    with pytest.raises(ValueError, match="retry_timeout"):
        NativeStore.s3("bucket", retry_timeout=-1.0)


def test_shard_encoder_bytes_decode_through_zarr_python(tmp_path):
    from topozarr_core import ShardEncoder

    rng = np.random.default_rng(5)
    data = rng.normal(size=(12, 10)).astype("float32")
    arr = _create(tmp_path, "e", data.shape, "float32", chunks=(4, 4), shards=(8, 8), fill=np.nan)
    encoder = ShardEncoder("e", (tmp_path / "e/zarr.json").read_bytes())
    assert encoder.shard_shape == (8, 8)
    for i, j in itertools.product(range(2), range(2)):
        piece = np.ascontiguousarray(data[i * 8 : (i + 1) * 8, j * 8 : (j + 1) * 8])
        key = encoder.key([i, j])
        assert key == f"e/c/{i}/{j}"
        blob = encoder.encode([i, j], piece.reshape(-1).view(np.uint8))
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(blob)
    np.testing.assert_array_equal(arr[...], data)
    assert encoder.encode([0, 0], np.full(64, np.nan, "float32").view(np.uint8)) is None
    with pytest.raises(ValueError, match="e"):
        ShardEncoder("e", b"{}")


def test_open_array_from_metadata_bytes_makes_no_request(tmp_path):
    # The array exists only in another directory: with its zarr.json bytes the native store
    # needs nothing from its own root to encode and store shards.
    _create(tmp_path / "ref", "a", (16, 16), "int16", chunks=(8, 8), shards=(16, 16), fill=0)
    doc = (tmp_path / "ref" / "a" / "zarr.json").read_bytes()
    target = tmp_path / "target"
    target.mkdir()
    store = NativeStore.local(str(target), max_inflight_bytes=INFLIGHT)
    with pytest.raises(FileNotFoundError):
        store.open_array("a")
    data = np.arange(256, dtype="int16").reshape(16, 16)
    store.open_array("a", doc).write_shard([0, 0], data.reshape(-1).view(np.uint8))
    store.flush()
    (target / "a" / "zarr.json").write_bytes(doc)
    np.testing.assert_array_equal(zarr.open_array(str(target / "a"), mode="r")[...], data)


def test_the_inflight_budget_has_no_default_in_the_kernel(tmp_path):
    with pytest.raises(TypeError, match="max_inflight_bytes"):
        NativeStore.local(str(tmp_path))  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="max_inflight_bytes"):
        NativeStore.s3("bucket")  # type: ignore[call-arg]


def test_scrub_secrets_masks_every_occurrence_of_long_enough_secrets():
    from topozarr_core import scrub_secrets

    message = "key=S3CR3T-x and again S3CR3T-x, ab stays"
    expected = message.replace("S3CR3T-x", "***")  # str.replace is the reference
    assert scrub_secrets(message, ["S3CR3T-x", "ab"]) == expected
    assert scrub_secrets(message, []) == message
