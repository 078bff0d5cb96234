"""Attributes as plain JSON values, the only kind a Zarr ``zarr.json`` can hold.

Sources read by xarray carry numpy values in their attributes (every CF NetCDF with
``valid_min`` / ``valid_range`` / ``flag_values``). zarr-python serialises attributes with
the standard ``json`` module, which rejects them, and would do so halfway through a write.
So the plan converts them as ``xarray.to_zarr`` does (numpy scalars become Python numbers,
arrays become lists), recursively through lists and dicts, and rejects up front whatever
has no JSON form. NaN and infinities stay floats: zarr-python writes them as ``NaN`` /
``Infinity``, as it does for xarray.
"""

from __future__ import annotations

import datetime
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from topozarr_metadata.errors import TopozarrError

from topozarr_plan.errors import PlanError

__all__ = ["UnserialisableAttr", "json_attrs", "json_value"]

_PLAIN = (str, bool, int, float, type(None))


class UnserialisableAttr(TopozarrError, TypeError):
    """A value (or a part of it) that JSON cannot hold; ``args[0]`` is the offending value."""


def json_value(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python numbers and lists.

    Raises
    ------
    UnserialisableAttr
        The value, or an item inside it, has no JSON form (datetime, set, bytes, complex,
        arbitrary objects, a dict with non-str keys).
    """
    if isinstance(value, np.ndarray | np.generic):
        if value.dtype.kind in "mMcSV":
            # datetime64 / timedelta64 .item() may give bare integers: reject, never guess;
            # complex, byte strings and structured values have no JSON form.
            raise UnserialisableAttr(value)
        value = value.tolist()
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise UnserialisableAttr(value)
        return {k: json_value(v) for k, v in value.items()}
    raise UnserialisableAttr(value)


def json_attrs(attrs: Mapping[Hashable, Any], *, owner: str | None) -> dict[str, Any]:
    """Every attribute of ``owner`` (a variable name; ``None`` for the dataset) as JSON values.

    Raises
    ------
    PlanError
        An attribute key that is not a str, or a value with no JSON form; the message names
        the variable, the key and the fix.
    """
    where = "ds.attrs" if owner is None else f"ds[{owner!r}].attrs"
    of = "the dataset" if owner is None else f"variable {owner!r}"
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if not isinstance(key, str):
            raise PlanError(
                f"attribute key {key!r} of {of} is a {type(key).__name__}; Zarr attribute keys "
                f"are strings: rename it in {where}"
            )
        try:
            out[key] = json_value(value)
        except UnserialisableAttr as err:
            bad = err.args[0]
            raise PlanError(
                f"attribute {key!r} of {of} holds {_short(bad)} of type {type(bad).__name__}, "
                f"which Zarr attributes (JSON) cannot hold; {_fix(bad, where, key)}"
            ) from None
    return out


def _fix(bad: Any, where: str, key: str) -> str:
    kind = getattr(getattr(bad, "dtype", None), "kind", "")
    if isinstance(bad, datetime.date | datetime.time | datetime.timedelta) or kind in ("m", "M"):
        return f"store it as an ISO 8601 string in {where}[{key!r}] (e.g. value.isoformat())"
    if isinstance(bad, bytes) or kind == "S":
        return f"decode it to a str in {where}[{key!r}]"
    if isinstance(bad, set | frozenset):
        return f"store a sorted list in {where}[{key!r}]"
    return f"convert it to a str, number or list, or drop it with {where}.pop({key!r})"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
