"""A fingerprint of a write plan, so that ``resume=True`` never mixes two different plans.

It covers what decides the bytes of the store: the source's variables (names, dims, shape,
dtype, attrs, chunking), its coordinates' values, the grid (factors), the method and fill value
of every variable, the encoding of every level, the published attributes, and what decides the
tile grid of the write (the levels written, ``max_region_bytes``, the passes, and the version
of the engine's tiling rules, ``TILE_PLAN_VERSION``). It does not read
the source's data (that would cost a full read); a file-backed source is also identified by the
path xarray recorded (``ds.encoding["source"]``).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import numpy as np
from topozarr_engine.tiles import TILE_PLAN_VERSION

if TYPE_CHECKING:
    from topozarr_plan.pyramid import Pyramid

__all__ = ["describe_plan", "differences", "digest_of"]


def _digest(values: Any) -> str:
    arr = np.asarray(values)
    h = hashlib.sha256(str((arr.dtype.str, arr.shape)).encode())
    if arr.dtype.kind == "O":
        h.update(repr(arr.tolist()).encode())
    else:
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def _stable(value: Any) -> str:
    """A canonical text of a JSON-like value (numpy scalars and arrays included)."""
    return json.dumps(value, sort_keys=True, default=_plain)


def _plain(value: Any) -> Any:
    """JSON form of what json does not know: a zarr codec's own dict, numpy values' lists."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return repr(np.asarray(value).tolist())


def describe_plan(pyramid: Pyramid, spatial: list[str]) -> dict[str, str]:
    """What identifies the plan's output, one entry per concern (compared entry by entry)."""
    src = pyramid.source
    variables = {
        name: {
            "dims": [str(d) for d in src[name].dims],
            "shape": list(src[name].shape),
            "dtype": str(src[name].dtype),
            "attrs": _stable(dict(src[name].attrs)),
            "method": pyramid.method_for(name),
            "fill": repr(pyramid.fill_values.get(name)),
        }
        for name in spatial
    }
    coords = {str(name): _digest(src[name].values) for name in src.coords if src[name].ndim <= 1}
    return {
        "source": str(src.encoding.get("source", "")),
        "variables": _stable(variables),
        "coordinates": _stable(coords),
        "factors": _stable(list(pyramid.factors)),
        "encoding": _stable(pyramid.encoding),
        "attributes": _stable(pyramid.attrs),
        # A journal's tile indices mean nothing under other tiling rules.
        "tiles": str(TILE_PLAN_VERSION),
    }


def differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The entries in which two plan descriptions differ."""
    keys = sorted(set(stored) | set(current))
    return [k for k in keys if stored.get(k) != current.get(k)]


def digest_of(description: dict[str, Any]) -> str:
    """A short digest of a plan description."""
    return hashlib.sha256(_stable(description).encode()).hexdigest()[:24]
