"""The ``Pyramid`` write plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import xarray as xr
from topozarr_engine import DEFAULT_MAX_REGION_BYTES

from topozarr_plan.types import DEFAULT_METHOD, MethodSpec

__all__ = ["Pyramid"]


@dataclass(eq=False)
class Pyramid:
    """A write plan for a multiscale Zarr pyramid, returned by ``create_pyramid``.

    Attributes
    ----------
    source : xarray.Dataset
        The original (level 0) dataset, except that CF-packed integer variables are seen
        packed (read lazily as their integers, with ``scale_factor`` / ``add_offset`` in
        attrs), which is how the levels store them.
    level_templates : dict of int to xarray.Dataset
        Per-level datasets carrying real coordinates and attrs; spatial data variables are
        zero-cost placeholders with the correct shape/dtype (their data is computed during
        write). Template attrs are the source's (minus stale geo keys) plus the level's
        group attrs; spatial variables carry their ``_FillValue`` in ``encoding``.
    encoding : dict
        Nested dict ``{path: {var: {"chunks": ..., "shards": ..., "serializer": ...,
        "compressors": ...}}}`` with paths ``"/0"``, ``"/1"``, ...; shaped for
        ``DataTree.to_zarr(encoding=...)``, which then writes the same array metadata as
        :meth:`write` (which reads its codecs from here: edit them to change what it
        writes). No ``"shards"`` key when sharding is disabled. Variables with a fill value
        also carry ``"fill_value"`` (the Zarr array's fill) and ``"_FillValue"`` (xarray's CF
        mask), because an explicit ``to_zarr`` encoding replaces the variables' own.
    attrs : dict
        Root group metadata (multiscales / proj: / spatial: / zarr-layer).
    x_dim, y_dim : str
        Spatial dimension names.
    method : CoarseningMethod or dict of str to CoarseningMethod
        Aggregation method of the coarser levels: the string given to ``create_pyramid``
        (every spatial variable), or the ``{variable: method}`` dict given to it (spatial
        variables it does not name use ``"mean"``). :meth:`method_for` resolves one
        variable's method.
    factors : list of int
        Cumulative downsample factor of each level (``factors[0] == 1``).
    fill_values : dict
        Per spatial variable: the value skipped when reducing and written where a window
        has no valid cell (NaN for floats unless the source declares ``_FillValue`` /
        ``missing_value``; for integers the declared fill, or ``None`` when all cells are
        valid).
    group_attrs : dict of int to dict
        Attributes of each level group (proj:* and spatial:* of that level), from
        ``topozarr_metadata.level_group_attrs``. Added after the documented fields, with a
        default, so those keep their order and defaults.
    """

    source: xr.Dataset
    level_templates: dict[int, xr.Dataset]
    encoding: dict[str, Any]
    attrs: dict[str, Any]
    x_dim: str
    y_dim: str
    method: MethodSpec
    factors: list[int] = field(default_factory=list)
    fill_values: dict[str, float | int | None] = field(default_factory=dict)
    group_attrs: dict[int, dict[str, Any]] = field(default_factory=dict)

    def method_for(self, name: str) -> str:
        """The aggregation method of spatial variable ``name`` (``"mean"`` when a method dict
        does not name it)."""
        if isinstance(self.method, str):
            return self.method
        return str(self.method.get(name, DEFAULT_METHOD))

    def as_datatree(self) -> xr.DataTree:
        """Return a lazy DataTree with all pyramid levels, each reduced from the source.

        Each level is reduced from the source dataset by its cumulative factor with the
        topozarr kernel, block by block (``map_blocks``, not xarray's ``coarsen``): the same
        values, dtypes and fill handling as :meth:`write`. If the source is Dask-backed, the
        returned tree is fully lazy — suitable for writing on a Dask distributed cluster or
        with icechunk. Non-dask sources are wrapped in dask when
        it is installed (lazily, without reading), else the levels are computed eagerly.
        Use ``self.encoding`` (already shaped for ``DataTree.to_zarr``) to apply the
        recommended chunks and shards:

        .. code-block:: python

            dt = pyramid.as_datatree()
            dt.to_zarr(store, zarr_format=3, consolidated=False, encoding=pyramid.encoding)

        Returns
        -------
        xarray.DataTree
            Root attrs are :attr:`attrs`; one child per level named ``"0"``, ``"1"``, ...
            with the level group attrs.
        """
        from topozarr_plan.datatree import build_datatree

        return build_datatree(self)

    def write(  # noqa: PLR0913  (the documented API: each option is a keyword of its own)
        self,
        store: Any,
        *,
        mode: str = "w",
        max_workers: int | None = None,
        levels: list[int] | None = None,
        max_region_bytes: int = DEFAULT_MAX_REGION_BYTES,
        progress: bool = False,
        stats: bool = False,
        keep_levels_in_memory: bool | None = None,
        io: Literal["python", "rust"] = "python",
        resume: bool = False,
        append_dim: str | None = None,
        client: Any = None,
    ) -> dict[str, Any] | None:
        """Compute and write pyramid levels to a Zarr store.

        One pass over the source writes every level: level 0 is read once, in tiles aligned
        to its shards (widened to whole source chunks within ``max_region_bytes``) and
        visited in Z-order. Each tile is written to level 0 and reduced by the Rust kernel
        into every coarser level at once: a level whose windows fit in the tile gets its
        final values there, and deeper levels fold the tile into exact partial states (sum
        and count, running max/min, ...) kept across tiles. A coarse shard is encoded and
        stored as soon as its last tile is in, so memory holds a few tiles and about one
        shard per level, and written levels are never read back. Every level therefore
        equals the reduction of the native cells by its cumulative factor (as
        ``as_datatree`` and xarray ``coarsen(boundary="trim")`` compute it), never a mean of
        means. Variables run in parallel on one shared thread pool. Root attributes and
        consolidated metadata are written last, once every level is complete. For bounded
        memory on large sources, open the source lazily (e.g.
        ``xr.open_zarr(store, chunks=None)``).

        Parameters
        ----------
        store : Any
            Anything zarr-python accepts — a local path, ``ObjectStore``, or icechunk
            session store.
        mode : str, default "w"
            Zarr open mode for the root group. Use ``"a"`` when writing a subset of levels
            so the root group and any pre-existing levels are preserved.
        max_workers : int or None, default None
            Thread pool size for region processing. ``None`` derives a default from the CPU
            count and available memory (peak memory is roughly
            ``max_workers * 5 * region_bytes``).
        levels : list of int or None, default None
            Subset of levels to write (e.g. ``[1, 2]``). Defaults to all levels. A subset is
            still one pass over the source: each listed level is computed from level 0 by its
            cumulative factor (level 0 is read, and written only when listed), so the other
            levels need not exist.
        max_region_bytes : int, default DEFAULT_MAX_REGION_BYTES
            Memory budget per level-0 copy region. Regions are widened to cover whole source
            chunks when that fits the budget, so each source chunk is read once.
        progress : bool, default False
            Show a tqdm progress bar over written regions (requires ``tqdm``).
        stats : bool, default False
            Return per-level statistics: ``read_s``, ``reduce_s``, ``block_s`` (read +
            reduce) and ``write_s`` (seconds summed across threads), ``regions``,
            ``skipped``, ``writes``, ``bytes_read``, ``bytes_written``, ``region_shapes``,
            ``workers``, one shared ``wall_s``, ``path`` (``"single-pass"``,
            ``"level-by-level"`` or ``"append"``), ``complete`` and the tile counts
            ``tiles_run``, ``tiles_replayed``, ``passes_skipped``. Tile reads count for
            level 0 (or for the first level of the pass when level 0 is not written), the
            in-tile reduction for the first coarser level, each fold for its deep level.
        keep_levels_in_memory : bool or None, default None
            How many passes over the source. ``None`` (default) makes the single pass
            described above whenever its estimated memory (tiles in flight, one shard
            buffer per coarse level, the deep levels' accumulators) fits in half the
            available memory. ``True`` forces the single pass and raises ``MemoryError``
            when the estimate does not fit. ``False`` makes one pass over the source per
            coarse level (level 0 is written with the first), so only one coarse level is in
            memory at a time. Every choice writes the same values and reads the source, never
            a written level (only a resume reads level 0 again).
        io : {"python", "rust"}, default "python"
            Who stores the shards of the spatial variables. In both cases the engine writes
            whole shards, encoded by the kernel (the zarrs codecs, from the array's own
            ``zarr.json``) in the worker threads with the GIL released. ``"python"``
            (default) stores those bytes through the zarr-python store, so every store
            zarr-python accepts works; a codec chain the kernel does not know is encoded by
            zarr-python's pipeline instead. ``"rust"`` has the kernel store them too, through
            object_store, with uploads in flight in the background on one connection pool;
            a tile counts as finished once its own uploads have. It supports local paths,
            ``s3://`` URLs, ``LocalStore`` and obstore-backed ``ObjectStore`` targets; any
            other store raises ``PlanError`` before anything is written. Either way, array
            metadata, coordinates, non-spatial variables and attributes go through
            zarr-python. This is unrelated to the optional ``zarrs`` codec pipeline (a
            separate zarr-python codec backend).
        resume : bool, default False
            Continue an interrupted write of the same plan (same source, options and
            levels) from its journal in the store: finished tiles are not read from the
            source again (at most the tiles that were in flight are), and the root metadata
            is published once every level is complete. A different plan is refused, naming
            what differs. Without a journal in the store, a fresh write (an empty store) or
            a ``PlanError``.
        append_dim : str or None, default None
            Append this plan's slices along a non-spatial dim (e.g. ``"time"``) to the
            published pyramid in ``store``, at every level. Checked before any write: same
            variables, dtypes, grid, CRS, method and encoding, and a coordinate that keeps
            increasing. The new shards are written first; the arrays and coordinates grow
            only once they are all stored. Resumable with ``resume=True``.
        client : dask.distributed.Client or None, default None
            Run the write on this client's cluster: block tasks on the workers read their
            own level-0 tiles from the source and write the shards they finish; the client
            only lays out the store and publishes it. The store must be a path on storage
            every worker shares or an ``s3://`` URL (credentials from each worker's
            environment) and the source lazy (``xr.open_zarr`` on shared storage, or
            dask-backed); ``io="python"``, all levels, no ``resume`` / ``append_dim`` yet.
            Values and metadata are those of a local write; see docs/usage.md, "Clusters".

        The write keeps a journal in the store (``.topozarr-write/``): a lease taken by
        conditional create, so a second writer fails at once, naming the holder; the plan;
        and a record per finished tile naming the coarse shards it completed. A write that
        fails or is killed leaves the store unpublished (no root ``multiscales``) and
        resumable: ``resume=True`` runs the same plan, skips finished tiles and replays, from
        the stored level 0, those that still feed a coarse shard not yet stored. The root
        metadata is published when every level is complete and the journal is removed
        last; see docs/usage.md, "Failures and resume".

        Returns
        -------
        dict or None
            Per-level stats when ``stats=True``, else ``None``.

        Examples
        --------
        Write all levels to a local store:

        >>> pyramid.write("pyramid.zarr")  # doctest: +SKIP

        Rewrite the coarsened levels, preserving level 0:

        >>> pyramid.write("pyramid.zarr", mode="a", levels=[1, 2])  # doctest: +SKIP
        """
        from topozarr_plan.write_options import WriteOptions
        from topozarr_plan.writer import write_pyramid

        return write_pyramid(
            self,
            store,
            WriteOptions(
                mode=mode,
                max_workers=max_workers,
                levels=levels,
                max_region_bytes=max_region_bytes,
                progress=progress,
                stats=stats,
                keep_levels_in_memory=keep_levels_in_memory,
                io=io,
                resume=resume,
                append_dim=append_dim,
                client=client,
            ),
        )
