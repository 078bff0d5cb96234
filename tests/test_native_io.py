"""io="rust" end to end through the public API, read back by three independent readers.

zarr-python (its own codec pipeline), zarr-python with the zarrs codec pipeline (zarrs-python,
a separate Rust implementation of the codecs) and xarray must all read the natively written
pyramid and get exactly the values of the io="python" pyramid.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr

import topozarr
from topozarr.demo import demo_dataset


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("native")
    ds = demo_dataset(rows=96, months=2)
    pyramid = topozarr.create_pyramid(
        ds, x_dim="lon", y_dim="lat", levels=3, target_chunk_bytes=2048, chunks_per_shard=2
    )
    pyramid.write(root / "python.zarr", io="python")
    pyramid.write(root / "rust.zarr", io="rust")
    return root, pyramid


def _read_all(path, **config):
    out = {}
    with zarr.config.set(config):
        group = zarr.open_group(str(path), mode="r")
        for name, node in group.members(max_depth=None):
            if isinstance(node, zarr.Array):
                out[name] = node[...]
    return out


@pytest.mark.parametrize(
    "config",
    [{}, {"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}],
    ids=["zarr-python", "zarrs-python"],
)
def test_readers_see_identical_values(written, config):
    root, _ = written
    expected = _read_all(root / "python.zarr")
    got = _read_all(root / "rust.zarr", **config)
    assert got.keys() == expected.keys()
    assert {"0/elevation", "2/temperature"} <= set(got)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_xarray_reads_every_level(written):
    root, pyramid = written
    for level in range(len(pyramid.factors)):
        rust = xr.open_zarr(root / "rust.zarr", group=str(level), zarr_format=3)
        python = xr.open_zarr(root / "python.zarr", group=str(level), zarr_format=3)
        xr.testing.assert_identical(rust.load(), python.load())
