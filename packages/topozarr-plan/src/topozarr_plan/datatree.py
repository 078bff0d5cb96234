"""``Pyramid.as_datatree``: every level reduced straight from the source, lazily.

Each spatial variable of level ``k`` is the kernel's ``block_reduce`` of the *source* by the
cumulative factor ``F_k`` (not of level ``k-1``), so values are exact (integer means round
the exact window mean half to even once) and equal what ``Pyramid.write`` stores.

With dask installed the tree is lazy: the source's spatial axes are trimmed to a multiple of
``F_k`` and rechunked to multiples of ``F_k`` near the source chunk edge, every block is
reduced with the kernel (``map_blocks``), and the result is rechunked to whole zarr shards
(chunks when unsharded) of ``Pyramid.encoding`` so ``DataTree.to_zarr`` never has two tasks
writing one shard. Non-dask sources (numpy or lazily indexed backend arrays) are first
wrapped with ``Variable.chunk`` along the level-0 shard grid. Without dask the levels are
computed eagerly with numpy.

Limitation: one task reduces at least ``F_k x F_k`` source cells, so a level whose factor is
far beyond the source chunk edge (e.g. ``F = 16384``) makes very large tasks. ``Pyramid.write``
(the streaming engine) has no such limit.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from topozarr_plan._kernel import block_reduce_fn

if TYPE_CHECKING:
    from topozarr_plan.pyramid import Pyramid

__all__ = ["build_datatree", "reduce_variable"]


def _kernel_fill(fill_value: float | int | None) -> float | int | None:
    # The kernel treats NaN as missing for floats anyway; None selects its NaN default.
    if fill_value is None or (isinstance(fill_value, float) and math.isnan(fill_value)):
        return None
    return fill_value


def _reduce_block(
    block: np.ndarray, *, stride: tuple[int, ...], method: str, fill_value: Any
) -> np.ndarray:
    block_reduce = block_reduce_fn()
    return np.asarray(block_reduce(block, stride, method, fill_value=fill_value, skipna=True))


def _have_dask() -> bool:
    try:
        import dask.array  # noqa: F401
    except ImportError:
        return False
    return True


def _aligned(chunks: tuple[int, ...], unit: int) -> bool:
    return all(c % unit == 0 for c in chunks[:-1])


def _target(first: int, unit: int) -> int:
    """A multiple of ``unit`` near ``first`` (at least one unit)."""
    return unit * max(1, round(first / unit))


@dataclass(frozen=True)
class Reduction:
    """How one variable is reduced for one level.

    Attributes
    ----------
    stride
        Cumulative factor per axis (1 on non-spatial axes).
    method, fill_value
        Kernel method and fill (``None`` / NaN: NaN default, integer: skipped value).
    out_dtype
        Result dtype (for the lazy graph's metadata).
    """

    stride: tuple[int, ...]
    method: str
    fill_value: float | int | None
    out_dtype: np.dtype[Any]


def reduce_variable(
    var: xr.Variable,
    reduction: Reduction,
    *,
    out_units: tuple[int, ...],
    base_chunks: tuple[int, ...],
) -> xr.Variable:
    """Block-reduce ``var`` (``xarray.coarsen(boundary="trim")`` shape).

    Parameters
    ----------
    var : xarray.Variable
        Source variable (dask, numpy or lazily indexed).
    reduction : Reduction
        Stride, method, fill and output dtype.
    out_units : tuple of int
        Zarr shard (or chunk) shape of the output; result blocks are whole multiples.
    base_chunks : tuple of int
        Chunking used to wrap non-dask sources.
    """
    stride, method, out_dtype = reduction.stride, reduction.method, reduction.out_dtype
    fill_value = reduction.fill_value
    trimmed = var[tuple(slice(0, (n // s) * s) for n, s in zip(var.shape, stride, strict=True))]
    fill = _kernel_fill(fill_value)
    if not _have_dask():
        if all(s == 1 for s in stride):
            return trimmed.load()
        out = _reduce_block(
            np.asarray(trimmed.values), stride=stride, method=method, fill_value=fill
        )
        return xr.Variable(var.dims, out)

    import dask.array as da

    if trimmed.chunks is None:
        trimmed = trimmed.chunk(dict(zip(var.dims, base_chunks, strict=True)))
    arr = trimmed.data
    assert isinstance(arr, da.Array)
    if any(s > 1 for s in stride):
        in_chunks = {
            axis: _target(max(c), s)
            for axis, (c, s) in enumerate(zip(arr.chunks, stride, strict=True))
            if not _aligned(c, s)
        }
        if in_chunks:
            arr = arr.rechunk(in_chunks)
        arr = arr.map_blocks(
            _reduce_block,
            stride=stride,
            method=method,
            fill_value=fill,
            dtype=out_dtype,
            chunks=tuple(
                tuple(c // s for c in cs) for cs, s in zip(arr.chunks, stride, strict=True)
            ),
            meta=np.empty((0,) * arr.ndim, dtype=out_dtype),
        )
    out_chunks = {
        axis: _target(max(c), u)
        for axis, (c, u) in enumerate(zip(arr.chunks, out_units, strict=True))
        if not _aligned(c, u)
    }
    if out_chunks:
        arr = arr.rechunk(out_chunks)
    return xr.Variable(var.dims, arr)


def build_datatree(pyramid: Pyramid) -> xr.DataTree:
    """Assemble the lazy tree (see module docstring).

    Level 0 of each spatial variable is the source rechunked to whole level-0 shards; the
    coarser levels reduce that same (unreduced) array, so a fine-grained source is regrouped
    once instead of once per level, and every level still comes straight from source values.
    """
    src = pyramid.source
    levels: dict[str, xr.Dataset] = {}
    base_enc = pyramid.encoding["/0"]
    base_vars: dict[str, xr.Variable] = {}
    for level, factor in enumerate(pyramid.factors):
        tpl = pyramid.level_templates[level]
        path = f"/{level}"
        ds = tpl.copy(deep=False)
        for name, enc in pyramid.encoding[path].items():
            source_var = base_vars.get(name, src[name].variable)
            dims: tuple[Hashable, ...] = source_var.dims
            stride = tuple(factor if d in (pyramid.x_dim, pyramid.y_dim) else 1 for d in dims)
            units: tuple[int, ...] = tuple(enc.get("shards", enc["chunks"]))
            base = tuple(base_enc[name].get("shards", base_enc[name]["chunks"]))
            reduction = Reduction(
                stride=stride,
                method=pyramid.method_for(name),
                fill_value=pyramid.fill_values.get(name),
                out_dtype=tpl[name].dtype,
            )
            reduced = reduce_variable(source_var, reduction, out_units=units, base_chunks=base)
            if level == 0:
                base_vars[name] = reduced
                reduced = reduced.copy(deep=False)
            template_var = tpl[name].variable
            reduced.attrs = dict(template_var.attrs)
            reduced.encoding = dict(template_var.encoding)
            ds[name] = reduced
        levels[str(level)] = ds
    root = xr.Dataset(attrs=dict(pyramid.attrs))
    tree: Mapping[str, xr.Dataset] = {"/": root, **levels}
    return xr.DataTree.from_dict(dict(tree))
