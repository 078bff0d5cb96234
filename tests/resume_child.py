"""A pyramid write in a child process, for the kill -9 / resume tests (tests/test_resume.py).

Run as ``python resume_child.py``: a zygote that imports everything once, then forks one write
per config path read from stdin (a child costs milliseconds instead of seconds of imports).
The source is the Zarr store named in the config, opened lazily through an array that logs
every source read (one line per tile, the tile's start indices) to ``read_log`` and sleeps
``read_delay`` seconds per read, so that a kill lands in the middle of the write.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import xarray as xr
import xproj  # noqa: F401  (registers the .proj accessor)
import zarr
from xarray.backends import BackendArray
from xarray.core import indexing


class LoggingArray(BackendArray):
    """A lazily indexed zarr array that logs each read's start indices."""

    def __init__(self, array: zarr.Array, log: str, delay: float) -> None:
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.log = log
        self.delay = delay

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read
        )

    def _read(self, key: tuple) -> np.ndarray:
        starts = [k.start or 0 if isinstance(k, slice) else int(k) for k in key]
        # O_APPEND lines of a few bytes: whole lines even when the process is killed.
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, (",".join(str(s) for s in starts) + "\n").encode())
        finally:
            os.close(fd)
        time.sleep(self.delay)
        return self.array[key]


def source(config: dict) -> xr.Dataset:
    group = zarr.open_group(config["source"], mode="r")
    ds = xr.open_zarr(config["source"], chunks=None)
    name = config["variable"]
    lazy = indexing.LazilyIndexedArray(
        LoggingArray(group[name], config["read_log"], config["read_delay"])
    )
    var = xr.Variable(ds[name].dims, lazy, attrs=ds[name].attrs, encoding=ds[name].encoding)
    ds = ds.assign({name: var})
    if config.get("isel"):
        ds = ds.isel({dim: slice(*bounds) for dim, bounds in config["isel"].items()})
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


def write(config: dict) -> dict:
    from topozarr import create_pyramid

    ds = source(config)
    pyramid = create_pyramid(ds, **config["create"])
    stats = pyramid.write(config["store"], stats=True, **config["write"])
    return stats["0"] if "0" in stats else next(iter(stats.values()))


def zygote() -> None:
    """Fork one write per config path read from stdin, with every import already done.

    Prints the child's pid; the child writes ``done <stats>`` or ``error <traceback>`` to the
    config's ``result`` file when the write returns. Nothing here touches zarr's event loop
    before forking (its thread would not survive the fork).
    """
    import signal
    import traceback

    import topozarr  # noqa: F401  (imported once, before forking)

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    for line in sys.stdin:
        with open(line.strip()) as f:
            config = json.load(f)
        pid = os.fork()
        if pid == 0:
            try:
                text = "done " + json.dumps(write(config))
                code = 0
            except BaseException:
                text, code = "error " + traceback.format_exc(), 1
            with open(config["result"] + ".tmp", "w") as f:
                f.write(text)
            os.replace(config["result"] + ".tmp", config["result"])
            os._exit(code)
        print(pid, flush=True)


if __name__ == "__main__":
    zygote()
