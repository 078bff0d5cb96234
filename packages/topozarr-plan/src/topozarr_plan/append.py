"""Appending time steps (or any non-spatial dim) to a published pyramid.

The plan of an append is the plan of the new slices alone (``create_pyramid`` of them); the
write checks that it fits the store, then runs the single-pass writer over the *extended*
arrays, restricted to the new slices:

1. **Check, before any write**: same variables, dtypes, dims, spatial grid, CRS, method and
   encoding at every level, and an append coordinate that keeps increasing.
2. **Write the new shards**, every level at once, into in-memory views of the arrays with the
   extended shape (their ``zarr.json`` is not written yet, so readers still see the old
   length and ignore the new objects). Only the new steps are reduced; a shard the store has
   only partly filled along the dim is rewritten whole, its old steps read back (from the
   stored level 0 for a level-0 tile that spans them, else from that level's stored shard,
   whose values are final: a coarse cell of one step depends on that step alone).
3. **Extend**: only when every new shard is stored, each level's spatial arrays grow to the
   new length and its coordinate (and non-spatial variables along the dim) are appended by
   xarray, then the consolidated metadata is rewritten. Each step is idempotent, so a resume
   that finds some levels extended completes the others.

Readers that open the store through its consolidated metadata (xarray) switch from the old to
the new length at once, when it is rewritten; a reader of the separate ``zarr.json`` documents
may, in the short window of step 3, find one array extended before another, but never a slice
that is not complete.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
import zarr
from topozarr_engine import Region

from topozarr_plan.errors import PlanError

if TYPE_CHECKING:
    from topozarr_plan.pyramid import Pyramid

__all__ = ["AppendPlan", "extend_store", "plan_append"]


@dataclass(frozen=True)
class AppendPlan:
    """Where the new slices go.

    Attributes
    ----------
    dim
        The dim appended along.
    old
        Its length in the store before the append.
    new
        Slices appended.
    arrays
        Every level's spatial arrays (``"<level>/<name>"``), opened writable by the checks, so
        the write and the extension do not read their ``zarr.json`` again.
    coordinate
        The stored coordinate along the dim (decoded, with its encoding), if there is one.
    """

    dim: str
    old: int
    new: int
    arrays: Mapping[str, zarr.Array] = field(default_factory=dict, compare=False, repr=False)
    coordinate: xr.Variable | None = field(default=None, compare=False, repr=False)
    root: zarr.Group | None = field(default=None, compare=False, repr=False)

    @property
    def total(self) -> int:
        return self.old + self.new


def _dims(arr: zarr.Array) -> tuple[str, ...]:
    """The array's dimension names (Zarr v3 metadata; none for v2)."""
    return tuple(str(d) for d in getattr(arr.metadata, "dimension_names", None) or ())


def _fail(store: str, what: str) -> PlanError:
    return PlanError(f"cannot append to {store}: {what}")


def plan_append(
    pyramid: Pyramid, zstore: Any, dim: str, where: str, *, old: int | None = None
) -> AppendPlan:
    """Check that the new slices fit the store; where they go. Reads only metadata.

    ``old`` (a resume) is the length the interrupted append started from; by default the
    stored length.
    """
    check = _Checks(pyramid, dim, where)
    root = check.root(zstore)
    arrays = {}
    for level in range(len(pyramid.factors)):
        arrays.update(check.level(root, level))
    lengths = {int(arr.shape[_dims(arr).index(dim)]) for arr in arrays.values()}
    if old is None:
        if len(lengths) != 1:
            raise _fail(where, f"its levels disagree on the length of {dim!r}: {sorted(lengths)}")
        old = lengths.pop()
    coordinate = _check_coordinate(pyramid, root, dim, old, where)
    new = int(pyramid.source.sizes[dim])
    return AppendPlan(dim=dim, old=old, new=new, arrays=arrays, coordinate=coordinate, root=root)


@dataclass(frozen=True)
class _Checks:
    """The checks of an append of ``pyramid`` along ``dim`` to the store at ``where``."""

    pyramid: Pyramid
    dim: str
    where: str

    def root(self, zstore: Any) -> zarr.Group:
        """The store's root group: a published pyramid of the same grid, CRS and levels."""
        pyramid, dim, where = self.pyramid, self.dim, self.where
        if dim in (pyramid.x_dim, pyramid.y_dim):
            raise _fail(where, f"append_dim={dim!r} is a spatial dim; append along time or band")
        if dim not in pyramid.source.dims:
            raise _fail(
                where, f"the new data has no dim {dim!r} (dims: {list(pyramid.source.dims)})"
            )
        try:
            # r+ only so that the arrays opened here can be written later; nothing is written now.
            root = zarr.open_group(zstore, mode="r+", zarr_format=3, use_consolidated=False)
        except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError) as exc:
            raise _fail(where, "it holds no pyramid; write the first slices with mode='w'") from exc
        if root.attrs.get("multiscales") is None:
            raise _fail(
                where,
                "it is not a complete, published pyramid (its root has no multiscales); finish "
                "it first (resume=True)",
            )
        for key, value in pyramid.attrs.items():
            if (
                key.startswith(("proj:", "spatial:", "multiscales"))
                and root.attrs.get(key) != value
            ):
                what = "grid or levels" if key.startswith(("spatial:", "multiscales")) else "CRS"
                raise _fail(where, f"another {what}: its {key!r} differs from the new data's")
        return root

    def level(self, root: zarr.Group, level: int) -> dict[str, zarr.Array]:
        """The level's spatial arrays (``"<level>/<name>"``): the same variables as the plan's."""
        pyramid = self.pyramid
        spatial = list(pyramid.encoding[f"/{level}"])
        group = root[str(level)]
        assert isinstance(group, zarr.Group)
        stored = {
            name
            for name, arr in group.arrays()
            if {pyramid.x_dim, pyramid.y_dim} <= set(_dims(arr))
        }
        if stored != set(spatial):
            missing = sorted(stored - set(spatial)) or sorted(set(spatial) - stored)
            raise _fail(
                self.where,
                f"level {level} has variables {sorted(stored)} but the new data has "
                f"{sorted(spatial)} (differs in {missing})",
            )
        arrays = {}
        for name in spatial:
            arr = group[name]
            assert isinstance(arr, zarr.Array)
            self.array(arr, level, name)
            arrays[f"{level}/{name}"] = arr
        return arrays

    def array(self, arr: zarr.Array, level: int, name: str) -> None:
        """The stored array matches the plan's template but for its length along the dim."""
        pyramid, where = self.pyramid, self.where
        template = pyramid.level_templates[level][name]
        dims = tuple(str(d) for d in template.dims)
        if _dims(arr) != dims:
            raise _fail(where, f"{level}/{name} has dims {_dims(arr)}, the new data {dims}")
        if np.dtype(arr.dtype) != np.dtype(template.dtype):
            raise _fail(where, f"{level}/{name} is {arr.dtype}, the new data {template.dtype}")
        axis = dims.index(self.dim)
        shape = tuple(int(n) for n in arr.shape)
        want = template.shape
        if shape[:axis] + shape[axis + 1 :] != want[:axis] + want[axis + 1 :]:
            raise _fail(
                where, f"{level}/{name} has shape {shape}, the new data {want} (another grid)"
            )
        enc = pyramid.encoding[f"/{level}"][name]
        if tuple(arr.chunks) != tuple(enc["chunks"]) or (arr.shards or None) != (
            tuple(enc["shards"]) if enc.get("shards") else None
        ):
            raise _fail(
                where,
                f"{level}/{name} has chunks {arr.chunks} and shards {arr.shards}, the new data's "
                f"plan {enc['chunks']} and {enc.get('shards')}; create the pyramid with the same "
                "target_chunk_bytes and chunks_per_shard",
            )


def _check_coordinate(
    pyramid: Pyramid, root: zarr.Group, dim: str, old: int, where: str
) -> xr.Variable | None:
    """Check that the new coordinate values follow the stored ones; the stored coordinate."""
    new = np.asarray(pyramid.source[dim].values) if dim in pyramid.source.coords else None
    if new is None:
        return None
    if new.size > 1 and not bool(np.all(new[1:] > new[:-1])):
        raise _fail(where, f"the new {dim!r} values do not increase")
    try:
        stored = stored_variable(root, f"0/{dim}")
    except KeyError:
        raise _fail(where, f"level 0 has no {dim!r} coordinate to append to") from None
    last = stored[old - 1].values if old else None
    if last is not None and new.size and not bool(new[0] > last):
        raise _fail(
            where, f"the new {dim!r} starts at {new[0]}, not after the stored last value {last}"
        )
    return stored


def stored_variable(root: zarr.Group, path: str) -> xr.Variable:
    """A stored 1-d array decoded as xarray decodes it (CF times), with its encoding.

    Reads the one array, where ``xr.open_zarr`` would read the metadata of the whole group.
    """
    arr = root[path]
    if not isinstance(arr, zarr.Array):
        raise KeyError(path)
    from xarray.backends.zarr import FillValueCoder

    # As xarray's Zarr v3 backend: the array's fill_value is no mask (it stays in the
    # encoding); a CF ``_FillValue`` attribute is.
    attrs = dict(arr.attrs)
    if "_FillValue" in attrs:
        attrs["_FillValue"] = FillValueCoder.decode(attrs["_FillValue"], arr.dtype)  # type: ignore[arg-type]
    encoding = {"dtype": np.dtype(arr.dtype), "fill_value": arr.fill_value}
    raw = xr.Variable(_dims(arr), arr[...], attrs, encoding=encoding)
    return xr.conventions.decode_cf_variable(path.rsplit("/", 1)[-1], raw)


class AppendSource:
    """Level-0 values of the extended array: stored steps before ``old``, new ones after.

    Indexed by a tuple of slices, as the single-pass writer reads tiles.
    """

    def __init__(self, stored: zarr.Array, new: xr.Variable, axis: int, plan: AppendPlan):
        self.stored = stored
        self.new = new
        self.axis = axis
        self.plan = plan
        shape = list(stored.shape)
        shape[axis] = plan.total
        self.shape = tuple(shape)
        self.dtype = np.dtype(new.dtype)
        self.ndim = len(shape)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        a, b, _ = key[self.axis].indices(self.shape[self.axis])
        parts = []
        if a < self.plan.old:
            parts.append(np.asarray(self.stored[self._along(key, a, min(b, self.plan.old))]))
        if b > self.plan.old:
            lo, hi = max(a, self.plan.old) - self.plan.old, b - self.plan.old
            parts.append(np.asarray(self.new[self._along(key, lo, hi)].values))
        if len(parts) == 1:
            return parts[0].astype(self.dtype, copy=False)
        return np.concatenate(parts, axis=self.axis).astype(self.dtype, copy=False)

    def _along(self, key: tuple[slice, ...], a: int, b: int) -> tuple[slice, ...]:
        return (*key[: self.axis], slice(a, b), *key[self.axis + 1 :])


def extended(arr: zarr.Array, axis: int, length: int) -> zarr.Array:
    """A view of ``arr`` with ``length`` along ``axis``, without writing its ``zarr.json``.

    Writes through it land in the store under the array's keys; readers ignore the ones past
    the stored shape until the array is resized.
    """
    from zarr.core.array import Array, AsyncArray

    shape = list(arr.shape)
    shape[axis] = length
    inner = arr.async_array
    return Array(
        AsyncArray(
            metadata=inner.metadata.update_shape(tuple(shape)),
            store_path=inner.store_path,
            config=inner.config,
        )
    )


def append_arrays(
    pyramid: Pyramid, plan: AppendPlan, spatial: list[str]
) -> tuple[dict[str, zarr.Array], dict[str, AppendSource], dict[str, Region]]:
    """Extended views of every level's arrays, the level-0 sources and the regions to write."""
    arrays: dict[str, zarr.Array] = {}
    sources: dict[str, AppendSource] = {}
    within: dict[str, Region] = {}
    for level in range(len(pyramid.factors)):
        for name in spatial:
            stored = plan.arrays[f"{level}/{name}"]
            axis = _dims(stored).index(plan.dim)
            arrays[f"{level}/{name}"] = extended(stored, axis, plan.total)
            if level == 0:
                sources[name] = AppendSource(stored, pyramid.source[name].variable, axis, plan)
                start = [0] * stored.ndim
                stop = list(sources[name].shape)
                start[axis] = plan.old
                within[name] = Region.from_bounds(start, stop)
    return arrays, sources, within


def extend_store(pyramid: Pyramid, zstore: Any, plan: AppendPlan, spatial: list[str]) -> None:
    """Make the new slices visible, level by level (idempotent: a resume completes it).

    The non-spatial variables along the dim (its coordinate, per-step values) are encoded once,
    as ``to_zarr(append_dim=...)`` would encode them (with the stored units and dtype), and the
    same values are appended at every level.
    """
    root = plan.root or zarr.open_group(zstore, mode="r+", zarr_format=3, use_consolidated=False)
    encoded: dict[Hashable, np.ndarray] = {}
    for level in range(len(pyramid.factors)):
        for name in spatial:
            _grow(plan.arrays[f"{level}/{name}"], plan)
        for along in _non_spatial_along(pyramid, plan, level, spatial):
            if along not in encoded:
                encoded[along] = _encode_new(pyramid, root, plan, along)
            target = root[f"{level}/{along}"]
            assert isinstance(target, zarr.Array)
            _append_values(target, plan, encoded[along], level)


def _axis_shape(arr: zarr.Array, plan: AppendPlan) -> tuple[int, tuple[int, ...]]:
    """The dim's axis in ``arr`` and the array's shape once extended."""
    axis = _dims(arr).index(plan.dim)
    shape = list(arr.shape)
    shape[axis] = plan.total
    return axis, tuple(shape)


def _grow(arr: zarr.Array, plan: AppendPlan) -> None:
    axis, shape = _axis_shape(arr, plan)
    if arr.shape[axis] == plan.old:
        arr.resize(shape)


def _non_spatial_along(
    pyramid: Pyramid, plan: AppendPlan, level: int, spatial: list[str]
) -> list[Hashable]:
    template = pyramid.level_templates[level].drop_vars(spatial)
    return [v for v in template.variables if plan.dim in template[v].dims]


def _encode_new(pyramid: Pyramid, root: zarr.Group, plan: AppendPlan, name: Hashable) -> np.ndarray:
    """The new values of a non-spatial variable, encoded with the stored variable's encoding."""
    from xarray.backends.zarr import encode_zarr_variable

    stored = plan.coordinate if name == plan.dim else None
    if stored is None:
        stored = stored_variable(root, f"0/{name}")
    new = pyramid.level_templates[0][name].variable.copy(deep=False)
    new.encoding = dict(stored.encoding)
    return np.asarray(encode_zarr_variable(new, name=name, zarr_format=3).values)


def _append_values(arr: zarr.Array, plan: AppendPlan, values: np.ndarray, level: int) -> None:
    """Write the new values past the stored length, then grow the array to show them."""
    axis, shape = _axis_shape(arr, plan)
    have = int(arr.shape[axis])
    if have == plan.total:
        return  # done by an earlier run
    if have != plan.old:
        raise PlanError(
            f"level {level}'s {arr.basename!r} has {have} values along {plan.dim!r}, expected "
            f"{plan.old} or {plan.total}: the store changed during the append"
        )
    new = tuple(slice(plan.old, plan.total) if i == axis else slice(None) for i in range(arr.ndim))
    # Through an extended view: the values land before the array's zarr.json shows them.
    extended(arr, axis, plan.total)[new] = values.astype(arr.dtype, copy=False)
    arr.resize(shape)
