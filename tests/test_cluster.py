"""``Pyramid.write(store, client=client)`` on a LocalCluster equals the local write.

Each case writes the same plan twice, once on this machine's threads and once on a
``LocalCluster`` of two worker processes, then compares the stores: the same keys, every
``zarr.json`` equal as JSON, every value equal as zarr-python reads it back. (Shard bytes may
differ: zarr-python lays a shard's inner chunks out in the order their encodings finish.)
"""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import distributed
import numpy as np
import pytest
import xarray as xr
import xproj  # noqa: F401
import zarr
from topozarr_engine import RegionError
from topozarr_engine.storage import resolve_target
from topozarr_plan.errors import PlanError
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from topozarr import create_pyramid

CREATE = {"levels": 5, "target_chunk_bytes": 1024, "chunks_per_shard": 2}


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    # Workers unpickle this module's helpers (sources, stores, plugins) by reference, as
    # ``tests.test_cluster``. pytest's importlib mode does not put the repository on sys.path,
    # and spawned workers (restarted ones too) take their sys.path from this process.
    root = str(Path(__file__).resolve().parent.parent)
    added = root not in sys.path
    if added:
        sys.path.insert(0, root)
    try:
        with (
            distributed.LocalCluster(
                processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as c,
        ):
            yield c
    finally:
        if added:
            sys.path.remove(root)


def _coords(ny: int, nx: int) -> dict[str, Any]:
    return {
        "y": 90 - (np.arange(ny) + 0.5) * 180 / ny,
        "x": -180 + (np.arange(nx) + 0.5) * 360 / nx,
    }


def dem(ny: int = 203, nx: int = 317) -> xr.Dataset:
    """Float32 with NaN holes and a missing corner; odd sizes, so every level trims."""
    rng = np.random.default_rng(3)
    values = rng.normal(100, 30, (ny, nx)).astype("float32")
    values[rng.random((ny, nx)) < 0.2] = np.nan
    values[:70, :90] = np.nan
    return xr.Dataset({"elevation": (("y", "x"), values, {"units": "m"})}, coords=_coords(ny, nx))


def classes(ny: int = 150, nx: int = 261) -> xr.Dataset:
    """Int16 classes with a declared fill value in holes and in a whole missing band."""
    rng = np.random.default_rng(5)
    values = rng.integers(0, 9, (ny, nx)).astype("int16")
    values[rng.random((ny, nx)) < 0.15] = -9999
    values[100:, :] = -9999
    ds = xr.Dataset({"landcover": (("y", "x"), values)}, coords=_coords(ny, nx))
    ds["landcover"].attrs["_FillValue"] = -9999
    return ds


def cube(nt: int = 3, ny: int = 97, nx: int = 130, *, grid: bool = True) -> xr.Dataset:
    """Float64 with a time dim and NaN holes. With ``grid``, values on a 2**-10 grid: their
    float64 sums are exact, so the deep levels' means do not depend on the order in which a
    window's partial sums are added (the cluster's tree of partials adds them in another order
    than a local write's tiles)."""
    rng = np.random.default_rng(11)
    values = rng.normal(280, 10, (nt, ny, nx))
    if grid:
        values = np.round(values * 1024) / 1024
    values[rng.random(values.shape) < 0.1] = np.nan
    return xr.Dataset(
        {"t2m": (("time", "y", "x"), values)},
        coords={"time": np.arange(nt), **_coords(ny, nx)},
    )


def on_disk(ds: xr.Dataset, path: Path, chunks: tuple[int, ...]) -> xr.Dataset:
    """``ds`` stored as Zarr and opened lazily (dask-backed), as workers would read it."""
    name = next(iter(ds.data_vars))
    ds.to_zarr(path, zarr_format=3, consolidated=False, encoding={name: {"chunks": chunks}})
    return xr.open_zarr(path, consolidated=False, mask_and_scale=False)


def with_crs(ds: xr.Dataset) -> xr.Dataset:
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


def store_keys(target: Any) -> dict[str, bytes]:
    """Every key of a local or S3 store (the write journal left out) and its bytes."""
    zstore = resolve_target(target, check=False).store

    async def read() -> dict[str, bytes]:
        proto = default_buffer_prototype()
        keys = sorted([k async for k in zstore.list()])
        out = {}
        for key in keys:
            if not key.startswith(".topozarr-write/"):
                buf = await zstore.get(key, prototype=proto)
                out[key] = buf.to_bytes()
        return out

    return dict(sync(read()))


def assert_same_store(got: Any, want: Path | str) -> None:
    a, b = store_keys(want), store_keys(got)
    assert sorted(b) == sorted(a)
    for key in a:
        if key.endswith("zarr.json"):
            assert json.loads(b[key]) == json.loads(a[key]), key
    ref = zarr.open_group(resolve_target(want, check=False).store, mode="r")
    out = zarr.open_group(resolve_target(got, check=False).store, mode="r")
    for path, array in ref.members(max_depth=None):
        if isinstance(array, zarr.Array):
            np.testing.assert_array_equal(out[path][...], array[...], err_msg=path)


def write_both(
    ds: xr.Dataset,
    tmp_path: Path,
    client: Any,
    *,
    io: str = "python",
    target: str | None = None,
    **create: Any,
) -> tuple[Path, Path | str]:
    """The plan written locally (``io="python"``, threads) and on the cluster (``io``, to
    ``target``: an ``s3://`` URL, or a path under ``tmp_path``)."""
    pyramid = create_pyramid(with_crs(ds), **{**CREATE, **create})
    local = tmp_path / "local.zarr"
    remote: Path | str = target or tmp_path / "cluster.zarr"
    # One shard per tile on both sides: blocks then hold several tiles and the deep levels
    # come from the blocks' partials.
    pyramid.write(local, max_region_bytes=1)
    pyramid.write(remote, client=client, io=io, max_region_bytes=1)
    return local, remote


def _tripwire(block: np.ndarray, *, counter: str, at: int, kill: bool) -> np.ndarray:
    """Pass ``block`` through; the ``at``-th chunk read anywhere (0-based) fails its task.

    Reads are numbered by exclusive file creation in ``counter``, a count every worker process
    shares. ``kill`` kills the reading worker process instead of raising.
    """
    for n in itertools.count():
        try:
            os.close(os.open(os.path.join(counter, str(n)), os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            continue
    if n == at:
        if kill:
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError(f"tripwire: chunk read {n} fails")
    return block


def tripped(ds: xr.Dataset, counter: Path, *, at: int, kill: bool = False) -> xr.Dataset:
    """``ds`` (dask-backed) whose ``at``-th chunk read fails: a test-only source wrapper."""
    counter.mkdir()
    out = ds.copy()
    for name, var in ds.data_vars.items():
        data = var.data.map_blocks(
            _tripwire, counter=str(counter), at=at, kill=kill, dtype=var.dtype
        )
        out[name] = var.copy(data=data)
    return out


def test_interrupted_write_resumes_to_the_local_write(tmp_path: Path, client: Any) -> None:
    ds = dem().chunk({"y": 32, "x": 32})
    local, remote, reads = tmp_path / "local.zarr", tmp_path / "cluster.zarr", tmp_path / "reads"
    create_pyramid(with_crs(ds), **CREATE).write(local, max_region_bytes=1)
    pyramid = create_pyramid(with_crs(tripped(ds, reads, at=20)), **CREATE)
    with pytest.raises(RegionError, match="tripwire: chunk read 20 fails"):
        pyramid.write(remote, client=client, max_region_bytes=1)
    assert "multiscales" not in zarr.open_group(remote, mode="r").attrs  # not published
    before = len(os.listdir(reads))
    pyramid.write(remote, client=client, max_region_bytes=1, resume=True)
    # The finished blocks were skipped: the resume read only part of the source's chunks.
    assert 0 < len(os.listdir(reads)) - before < math.prod(len(c) for c in ds.chunks.values())
    assert_same_store(remote, local)


def test_killed_worker_gives_the_local_write(tmp_path: Path, client: Any) -> None:
    ds = dem().chunk({"y": 32, "x": 32})
    local, remote = tmp_path / "local.zarr", tmp_path / "cluster.zarr"
    create_pyramid(with_crs(ds), **CREATE).write(local, max_region_bytes=1)
    pyramid = create_pyramid(with_crs(tripped(ds, tmp_path / "reads", at=20, kill=True)), **CREATE)
    pyramid.write(remote, client=client, max_region_bytes=1)
    assert len(os.listdir(tmp_path / "reads")) > 20  # the kill did happen
    assert_same_store(remote, local)
    client.wait_for_workers(2)


@pytest.mark.parametrize("io", ["python", "rust"])
def test_dem_mean_from_zarr_equals_local_write(tmp_path: Path, client: Any, io: str) -> None:
    ds = on_disk(dem(), tmp_path / "src.zarr", (64, 64))
    local, remote = write_both(ds, tmp_path, client, io=io)
    assert_same_store(remote, local)


@pytest.mark.parametrize(
    ("method", "io"), [("max", "python"), ("mode", "python"), ("mode", "rust")]
)
def test_integer_fill_from_dask_graph_equals_local_write(
    tmp_path: Path, client: Any, method: str, io: str
) -> None:
    ds = classes().chunk({"y": 50, "x": 87})  # in memory, but dask: the graph travels
    local, remote = write_both(ds, tmp_path, client, method=method, io=io)
    assert_same_store(remote, local)


@pytest.mark.parametrize("io", ["python", "rust"])
def test_time_dim_equals_local_write(tmp_path: Path, client: Any, io: str) -> None:
    ds = on_disk(cube(), tmp_path / "src.zarr", (1, 32, 64))
    local, remote = write_both(ds, tmp_path, client, levels=6, io=io)
    assert_same_store(remote, local)


def test_two_variables_each_get_their_own_deep_tree(tmp_path: Path, client: Any) -> None:
    """A float mean and an integer max in one Dataset: each variable's blocks feed its own
    deep tasks (partials of one never reach the other's)."""
    ds = dem().assign(
        flat=(("y", "x"), np.arange(203 * 317, dtype="int32").reshape(203, 317) % 1000)
    )
    ds = on_disk(ds, tmp_path / "src.zarr", (64, 64))
    local, remote = write_both(ds, tmp_path, client, levels=6, method={"flat": "max"})
    assert_same_store(remote, local)


def test_float64_sums_in_another_order_differ_only_by_rounding(tmp_path: Path, client: Any) -> None:
    """Without exact sums, a float64 mean of a deep level may differ in its last bits from a
    local write's (as two local writes on different threads may): by rounding only, the
    error of adding a window's cells in float64 (at most cells x 2**-53, relative)."""
    ds = on_disk(cube(grid=False), tmp_path / "src.zarr", (1, 32, 64))
    local, remote = write_both(ds, tmp_path, client, levels=6)
    ref = zarr.open_group(local, mode="r")
    out = zarr.open_group(remote, mode="r")
    for level in range(6):
        want, got = ref[f"{level}/t2m"][...], out[f"{level}/t2m"][...]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=4**level * 2.0**-52, equal_nan=True)


def test_progress_and_stats_from_the_workers(
    tmp_path: Path, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tqdm.auto

    updates: list[int] = []

    class Recording(tqdm.auto.tqdm):  # type: ignore[misc, name-defined]
        def update(self, n: float | None = 1) -> bool | None:
            updates.append(int(n or 0))
            return super().update(n)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    ds = on_disk(dem(), tmp_path / "src.zarr", (64, 64))
    pyramid = create_pyramid(with_crs(ds), **CREATE)
    local = pyramid.write(tmp_path / "local.zarr", max_region_bytes=1, stats=True)
    updates.clear()
    remote = pyramid.write(
        tmp_path / "cluster.zarr", client=client, max_region_bytes=1, stats=True, progress=True
    )
    assert local is not None and remote is not None
    # One step per finished block, adding up to the source's bytes.
    assert len(updates) > 1 and all(n > 0 for n in updates)
    assert sum(updates) == ds["elevation"].nbytes
    # The workers' timers, merged: what each level wrote is what a local write does; the
    # source is read once (level 0) and nothing else is (the deep levels fold partials).
    assert remote["0"]["bytes_read"] == local["0"]["bytes_read"] == ds["elevation"].nbytes
    assert sum(remote[level]["bytes_read"] for level in remote) == ds["elevation"].nbytes
    for level in local:
        for key in ("bytes_written", "writes", "skipped"):
            assert remote[level][key] == local[level][key], (level, key)
        assert remote[level]["write_s"] >= remote[level]["encode_s"] > 0
        assert remote[level]["workers"] == sum(client.nthreads().values())


class CountingStore(zarr.storage.WrapperStore):  # type: ignore[type-arg]
    """A source store that counts reads of ``name``'s chunks, in whichever process.

    Each read creates a file ``<chunk key>@<pid>@<n>`` in ``counter`` (a directory every
    worker sees), so the count survives pickling to the workers.
    """

    def __init__(self, store: Any, counter: str, name: str) -> None:
        super().__init__(store)
        self.counter = counter
        self.name = name

    def __getstate__(self) -> dict[str, Any]:
        return {"store": self._store, "counter": self.counter, "name": self.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["store"], state["counter"], state["name"])  # type: ignore[misc]

    def _with_store(self, store: Any) -> CountingStore:
        return type(self)(store, self.counter, self.name)

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        if key.startswith(f"{self.name}/c/"):
            tag = f"{key.replace('/', '_')}@{os.getpid()}@"
            for n in itertools.count():
                try:
                    os.close(
                        os.open(os.path.join(self.counter, f"{tag}{n}"), os.O_CREAT | os.O_EXCL)
                    )
                    break
                except FileExistsError:
                    continue
        return await self._store.get(key, prototype, byte_range)


def chunk_reads(counter: Path) -> tuple[dict[str, int], set[int]]:
    """Reads per chunk key, and the processes that read."""
    reads: dict[str, int] = {}
    pids = set()
    for entry in os.listdir(counter):
        key, pid, _ = entry.split("@")
        reads[key] = reads.get(key, 0) + 1
        pids.add(int(pid))
    return reads, pids


@pytest.mark.parametrize("chunks", [(32, 32), (48, 40)])
def test_each_source_chunk_is_read_once_on_the_workers(
    tmp_path: Path, client: Any, chunks: tuple[int, int]
) -> None:
    src, counts = tmp_path / "src.zarr", tmp_path / "reads"
    dem().to_zarr(
        src, zarr_format=3, consolidated=False, encoding={"elevation": {"chunks": chunks}}
    )
    counts.mkdir()
    store = CountingStore(zarr.storage.LocalStore(src, read_only=True), str(counts), "elevation")
    ds = xr.open_zarr(store, consolidated=False)
    nchunks = zarr.open_array(src / "elevation").nchunks
    pyramid = create_pyramid(with_crs(ds), **CREATE)
    pyramid.write(tmp_path / "cluster.zarr", client=client)
    reads, pids = chunk_reads(counts)
    assert os.getpid() not in pids  # none in the client
    assert len(reads) == nchunks and set(reads.values()) == {1}, reads
    for entry in os.listdir(counts):
        os.remove(counts / entry)
    pyramid.as_datatree().to_zarr(tmp_path / "tree.zarr", zarr_format=3, consolidated=False)
    tree, _ = chunk_reads(counts)
    print(
        f"source chunks: {nchunks}; reads by write(client=): {sum(reads.values())}, "
        f"by as_datatree().to_zarr(): {sum(tree.values())}"
    )


@pytest.mark.parametrize(
    ("shape", "method", "levels"),
    [((203, 317), "max", 7), ((37, 1029), "mean", 6), ((5, 700), "nearest", 3)],
)
def test_deep_levels_come_from_partials_without_a_second_read(
    tmp_path: Path, client: Any, shape: tuple[int, int], method: str, levels: int
) -> None:
    """The deep levels merge the stage-1 blocks' partials: nothing is read twice, down to the
    deepest level the shape allows."""
    ds = on_disk(dem(*shape), tmp_path / "src.zarr", (64, 64))
    pyramid = create_pyramid(with_crs(ds), **{**CREATE, "levels": levels, "method": method})
    local, remote = tmp_path / "local.zarr", tmp_path / "cluster.zarr"
    pyramid.write(local, max_region_bytes=1)
    stats = pyramid.write(remote, client=client, max_region_bytes=1, stats=True)
    assert stats is not None
    assert_same_store(remote, local)
    assert sum(stats[level]["bytes_read"] for level in stats) == ds["elevation"].nbytes
    assert stats[str(levels - 1)]["writes"] > 0


def _streamed_shards(install: bool) -> list[str]:
    """In this process or a worker: record the keys of the shards published through chunk
    streams (``install``), or return them and put the original method back."""
    from topozarr_engine.chunk_streams import ChunkStreams

    spy: Any = ChunkStreams
    if not install:
        spy.store = spy.unspied_store
        return list(spy.streamed)
    spy.unspied_store, spy.streamed = ChunkStreams.store, []

    def store(self: Any, dst: Any, shard: Any, *args: Any, **kwargs: Any) -> bool:
        stored = bool(spy.unspied_store(self, dst, shard, *args, **kwargs))
        if stored:
            spy.streamed.append(self.key_of(list(shard)))
        return stored

    spy.store = store
    return []


def test_block_tasks_stream_the_shards_a_local_write_streams(tmp_path: Path, client: Any) -> None:
    """The shards of the block tasks' levels (0-2 here; 3-4 come from partials) that a local
    write streams to storage chunk by chunk are streamed on the workers too, not assembled
    whole (a block's destinations are windows of the store's arrays)."""
    from topozarr_plan.cluster import _describe, split_levels

    ds = on_disk(dem(), tmp_path / "src.zarr", (64, 64))
    pyramid = create_pyramid(with_crs(ds), **CREATE)
    threads = sum(client.nthreads().values())
    first, deep, _ = split_levels([_describe(pyramid, "elevation")], 5, threads)
    assert first == [0, 1, 2] and deep == [3, 4]  # both stages are exercised
    _streamed_shards(True)
    try:
        pyramid.write(tmp_path / "local.zarr", max_region_bytes=1)
    finally:
        local = _streamed_shards(False)
    client.run(_streamed_shards, True)
    try:
        pyramid.write(tmp_path / "cluster.zarr", client=client, max_region_bytes=1)
    finally:
        remote = list(itertools.chain(*client.run(_streamed_shards, False).values()))
    want = sorted(key for key in local if int(key.split("/")[0]) in first)
    assert want  # levels 1 and 2: their shards span several tiles
    assert sorted(remote) == want


class _Environ(distributed.WorkerPlugin):
    """Set environment variables in every worker process, also those started later."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def setup(self, worker: Any) -> None:
        os.environ.update(self.env)


@pytest.fixture
def s3_target(s3_server: Any, s3_prefix: str, client: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ``s3://`` URL of the test server, whose ``AWS_*`` variables are set here and on every
    worker (as on a real cluster, credentials come from each worker's environment)."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    client.register_plugin(_Environ(s3_server.env()), name="s3-env")
    return str(s3_server.url(f"{s3_prefix}/cluster.zarr"))


@pytest.mark.s3
@pytest.mark.parametrize(("io", "method"), [("python", "mean"), ("rust", "max")])
def test_s3_equals_local_write(
    tmp_path: Path, client: Any, s3_target: str, io: str, method: str
) -> None:
    ds = on_disk(dem(), tmp_path / "src.zarr", (64, 64))
    local, remote = write_both(ds, tmp_path, client, io=io, target=s3_target, method=method)
    assert_same_store(remote, local)


@pytest.mark.s3
def test_an_obstore_s3_store_travels_to_the_workers(
    tmp_path: Path, client: Any, s3_target: str, s3_server: Any, s3_prefix: str
) -> None:
    """``ObjectStore(S3Store(...))`` with explicit credentials: the pickled target keeps the
    bucket, prefix and endpoint, and the workers take the credentials from their environment
    (``s3_target`` sets it on them)."""
    from obstore.store import S3Store

    config = s3_server.store_config()
    store = zarr.storage.ObjectStore(
        S3Store(s3_server.bucket, prefix=f"{s3_prefix}/obstore.zarr", **config)
    )
    ds = on_disk(dem(), tmp_path / "src.zarr", (64, 64))
    pyramid = create_pyramid(with_crs(ds), **CREATE)
    pyramid.write(tmp_path / "local.zarr", max_region_bytes=1)
    pyramid.write(store, client=client, max_region_bytes=1)
    assert_same_store(store, tmp_path / "local.zarr")


def test_lazy_zarr_without_dask_equals_local_write(tmp_path: Path, client: Any) -> None:
    dem().to_zarr(tmp_path / "src.zarr", zarr_format=3, consolidated=False)
    ds = xr.open_zarr(tmp_path / "src.zarr", chunks=None, consolidated=False)
    local, remote = write_both(ds, tmp_path, client)
    assert_same_store(remote, local)


def test_numpy_source_is_refused(tmp_path: Path, client: Any) -> None:
    pyramid = create_pyramid(with_crs(dem()), **CREATE)
    with pytest.raises(PlanError, match="'elevation' is an in-memory numpy array"):
        pyramid.write(tmp_path / "out.zarr", client=client)
    assert not (tmp_path / "out.zarr").exists()


def test_memory_store_is_refused(tmp_path: Path, client: Any) -> None:
    pyramid = create_pyramid(with_crs(dem().chunk()), **CREATE)
    with pytest.raises(PlanError, match="MemoryStore; pass a path on a shared filesystem"):
        pyramid.write(zarr.storage.MemoryStore(), client=client)
