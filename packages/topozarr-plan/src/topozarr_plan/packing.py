"""CF-packed integers (``scale_factor`` / ``add_offset``): kept packed in every level.

xarray decodes a packed variable (say int16 with ``scale_factor``, ``add_offset`` and
``_FillValue``) to floats and keeps the packing in ``var.encoding``. The pyramid stores it
packed the same way: the plan reduces the *packed* integers (the source variable wrapped so
that each region read is packed again, lazily), with ``_FillValue`` as the value skipped, and
every level array carries the same ``scale_factor`` / ``add_offset`` / ``_FillValue``, so
xarray decodes each level to the same floats as the source.

Unpacking is ``u = scale * p + offset``, an increasing map when ``scale > 0``: the max, min,
mode and nearest of the packed values are the packed max, min, mode and nearest of the
unpacked ones, and the integer mean (exact, rounded half to even) is the unpacked mean
repacked (``round((mean(u) - offset) / scale)``) without the float rounding of the unpacked
values. ``sum`` is not (the offset is counted once per cell, and the sum overflows the packed
dtype), nor are max/min with a negative scale: both are refused at plan time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from topozarr_plan.errors import PlanError

__all__ = ["Packing", "check_packed_methods", "packed_source", "packing_of"]

_PACKING_KEYS = ("scale_factor", "add_offset")
# Encoding keys that tell a reader (or our encoding heuristics) how the source is chunked.
_CHUNK_KEYS = ("chunks", "shards", "preferred_chunks")


def _scalar(value: Any) -> Any:
    return np.asarray(value).reshape(-1)[0]


@dataclass(frozen=True)
class Packing:
    """How a variable is packed: ``unpacked = scale_factor * packed + add_offset``.

    Attributes
    ----------
    dtype : numpy.dtype
        The packed integer dtype.
    scale_factor, add_offset : float or None
        As declared by the source (``None`` when the source does not declare it).
    fill_value : int or None
        The packed ``_FillValue`` (or ``missing_value``); ``None`` when none is declared.
    """

    dtype: np.dtype[Any]
    scale_factor: float | None
    add_offset: float | None
    fill_value: int | None

    @property
    def attrs(self) -> dict[str, float]:
        """The CF attributes a reader unpacks with."""
        pairs = (("scale_factor", self.scale_factor), ("add_offset", self.add_offset))
        return {k: v for k, v in pairs if v is not None}

    def pack(self, values: np.ndarray, *, name: str) -> np.ndarray:
        """Unpacked floats (NaN where missing) to packed integers (``fill_value`` there)."""
        scale = 1.0 if self.scale_factor is None else self.scale_factor
        offset = 0.0 if self.add_offset is None else self.add_offset
        with np.errstate(invalid="ignore"):
            packed = np.round((np.asarray(values, dtype=np.float64) - offset) / scale)
        missing = np.isnan(packed)
        if missing.any():
            if self.fill_value is None:
                raise PlanError(
                    f"variable {name!r} has missing values but its packing declares no "
                    f"_FillValue; set ds[{name!r}].encoding['_FillValue'] to an unused "
                    f"{self.dtype} value"
                )
            packed[missing] = self.fill_value
        return packed.astype(self.dtype)


def packing_of(var: xr.DataArray | xr.Variable) -> Packing | None:
    """The CF packing of a decoded variable, from its encoding; ``None`` when not packed.

    Only floats decoded from integers count: a float variable packed into floats is written
    as floats (its values are what they are).
    """
    enc = var.encoding
    if not any(enc.get(k) is not None for k in _PACKING_KEYS):
        return None
    dtype = np.dtype(enc.get("dtype", var.dtype))
    if dtype.kind not in "iu" or np.dtype(var.dtype).kind != "f":
        return None
    scale, offset = (None if enc.get(k) is None else float(_scalar(enc[k])) for k in _PACKING_KEYS)
    fill = next((enc[k] for k in ("_FillValue", "missing_value") if enc.get(k) is not None), None)
    return Packing(dtype, scale, offset, None if fill is None else int(_scalar(fill)))


class _PackedArray(BackendArray):
    """A source variable seen packed: each region read is packed when it is read."""

    def __init__(self, source: xr.Variable, packing: Packing, name: str) -> None:
        self.source = source
        self.packing = packing
        self.name = name
        self.shape = source.shape
        self.dtype = packing.dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read
        )

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        return self.packing.pack(np.asarray(self.source[key].values), name=self.name)


def _packed_variable(name: str, var: xr.Variable, packing: Packing) -> xr.Variable:
    attrs = {
        k: v
        for k, v in var.attrs.items()
        if k not in (*_PACKING_KEYS, "_FillValue", "missing_value")
    }
    attrs.update(packing.attrs)
    encoding: dict[str, Any] = {k: var.encoding[k] for k in _CHUNK_KEYS if k in var.encoding}
    if packing.fill_value is not None:
        encoding["_FillValue"] = packing.fill_value
    if var.chunks is not None:  # dask: stay lazy, keep the source's chunks
        data: Any = var.data.map_blocks(
            lambda block: packing.pack(block, name=name), dtype=packing.dtype
        )
    else:
        data = indexing.LazilyIndexedArray(_PackedArray(var, packing, name))
    return xr.Variable(var.dims, data, attrs, encoding)


def packed_source(ds: xr.Dataset, names: tuple[str, ...]) -> tuple[xr.Dataset, dict[str, Packing]]:
    """``ds`` with its packed variables among ``names`` replaced by their packed form."""
    packings = {name: p for name in names if (p := packing_of(ds[name])) is not None}
    if not packings:
        return ds, {}
    out = ds.copy(deep=False)
    for name, packing in packings.items():
        out[name] = _packed_variable(name, ds[name].variable, packing)
    return out, packings


def check_packed_methods(packings: Mapping[str, Packing], methods: Mapping[str, str]) -> None:
    """Refuse the methods that do not commute with packing (see module docstring)."""
    for name, packing in packings.items():
        method = methods[name]
        unpack = f"unpack it first with ds[{name!r}].encoding.clear() (written as floats)"
        if method == "sum":
            raise PlanError(
                f"method 'sum' cannot keep variable {name!r} packed as {packing.dtype} (the "
                f"sum of its unpacked values does not repack); {unpack}"
            )
        if method in ("max", "min") and (packing.scale_factor or 1.0) < 0:
            raise PlanError(
                f"method {method!r} on variable {name!r}, packed with a negative scale_factor "
                f"({packing.scale_factor}), would pick the opposite extreme; {unpack}"
            )
