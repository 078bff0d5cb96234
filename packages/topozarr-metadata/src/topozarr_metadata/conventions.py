"""The three Convention Metadata Objects (CMOs) topozarr emits, and how to recognise others.

Every node that uses a convention's keys lists that convention's CMO in its
``zarr_conventions`` attribute. The v0.1 schemas ``const``-check every CMO field, so
the objects below are emitted field for field. Draft URLs (``refs/tags/v1``,
``refs/tags/v0``, the ``zarr-experimental/geo-proj`` repository) were never
published; they are only *recognised* here so that legacy documents can be read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "CONVENTIONS",
    "MULTISCALES_CMO",
    "PROJ_CMO",
    "SPATIAL_CMO",
    "CmoStatus",
    "classify_cmo",
    "cmo",
]

MULTISCALES_CMO: Mapping[str, str] = MappingProxyType(
    {
        "schema_url": "https://raw.githubusercontent.com/zarr-conventions/multiscales/refs/tags/v0.1/schema.json",
        "spec_url": "https://github.com/zarr-conventions/multiscales/blob/v0.1/README.md",
        "uuid": "d35379db-88df-4056-af3a-620245f8e347",
        "name": "multiscales",
        "description": "Multiscale layout of zarr datasets",
    }
)
"""CMO of the multiscales convention, v0.1 (the only release)."""

PROJ_CMO: Mapping[str, str] = MappingProxyType(
    {
        "schema_url": "https://raw.githubusercontent.com/zarr-conventions/proj/refs/tags/v0.1/schema.json",
        "spec_url": "https://github.com/zarr-conventions/proj/blob/v0.1/README.md",
        "uuid": "f17cb550-5864-4468-aeb7-f3180cfb622f",
        "name": "proj",
        "description": "Coordinate reference system information for geospatial data",
    }
)
"""CMO of the proj convention, v0.1 (the only release)."""

SPATIAL_CMO: Mapping[str, str] = MappingProxyType(
    {
        "schema_url": "https://raw.githubusercontent.com/zarr-conventions/spatial/refs/tags/v0.1/schema.json",
        "spec_url": "https://github.com/zarr-conventions/spatial/blob/v0.1/README.md",
        "uuid": "689b58e2-cf7b-45e0-9fff-9cfc0883d6b4",
        "name": "spatial",
        "description": "Spatial coordinate information",
    }
)
"""CMO of the spatial convention, v0.1 (the only release)."""

CONVENTIONS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"multiscales": MULTISCALES_CMO, "proj": PROJ_CMO, "spatial": SPATIAL_CMO}
)
"""Read-only map from convention name to its v0.1 CMO."""

_BY_UUID = {c["uuid"]: name for name, c in CONVENTIONS.items()}
# Repository part of any schema/spec URL, released or draft, of the three conventions.
_URL_REPO = re.compile(
    r"^https://(?:raw\.githubusercontent\.com|github\.com)/"
    r"zarr-(?:conventions|experimental)/(multiscales|proj|geo-proj|spatial)/"
)
_CMO_FIELDS = ("schema_url", "spec_url", "uuid", "name", "description")


def cmo(name: str) -> dict[str, str]:
    """Return a fresh, mutable copy of a convention's v0.1 CMO.

    Parameters
    ----------
    name
        ``"multiscales"``, ``"proj"`` or ``"spatial"``.

    Returns
    -------
    dict
        The five CMO fields, ready to be placed in ``zarr_conventions``.
    """
    try:
        return dict(CONVENTIONS[name])
    except KeyError:
        known = ", ".join(repr(k) for k in CONVENTIONS)
        raise ValueError(f"unknown convention {name!r}; use one of {known}") from None


@dataclass(frozen=True)
class CmoStatus:
    """What one entry of ``zarr_conventions`` turned out to be.

    Attributes
    ----------
    convention
        ``"multiscales"``, ``"proj"``, ``"spatial"``, or ``None`` for a convention
        topozarr does not know (which is legal and ignored).
    legacy
        True when the object carries a draft URL or a draft name (``"proj:"``):
        readable, but never to be emitted.
    problems
        Human-readable differences from the v0.1 CMO (empty when it matches
        field for field).
    """

    convention: str | None
    legacy: bool
    problems: tuple[str, ...]


def _identify(obj: Mapping[str, Any]) -> str | None:
    """Convention name by identity precedence uuid > schema_url > spec_url (never name)."""
    uuid = obj.get("uuid")
    if isinstance(uuid, str) and uuid in _BY_UUID:
        return _BY_UUID[uuid]
    for key in ("schema_url", "spec_url"):
        url = obj.get(key)
        if isinstance(url, str) and (m := _URL_REPO.match(url)):
            return "proj" if m.group(1) == "geo-proj" else m.group(1)
    return None


def classify_cmo(obj: object) -> CmoStatus:
    """Identify a CMO and list how it differs from the v0.1 object.

    Parameters
    ----------
    obj
        One entry of a ``zarr_conventions`` list.

    Returns
    -------
    CmoStatus
        ``convention`` is ``None`` for unknown conventions (and for non-objects,
        which get a problem entry).
    """
    if not isinstance(obj, Mapping):
        return CmoStatus(None, False, (f"convention entry is {type(obj).__name__}, not an object",))
    name = _identify(obj)
    if name is None:
        return CmoStatus(None, False, ())
    expected = CONVENTIONS[name]
    problems: list[str] = []
    legacy = False
    for key in _CMO_FIELDS:
        if key not in obj:
            problems.append(f"{name} CMO lacks {key!r} (v0.1 value {expected[key]!r})")
        elif obj[key] != expected[key]:
            value = obj[key]
            if key in ("schema_url", "spec_url") and isinstance(value, str):
                legacy = True
                problems.append(
                    f"{name} CMO {key} {value!r} is a draft URL that was never published; "
                    f"use the v0.1 one {expected[key]!r}"
                )
            elif key == "name" and value == f"{name}:":
                legacy = True
                problems.append(f"{name} CMO name {value!r} is the draft name; v0.1 uses {name!r}")
            else:
                problems.append(f"{name} CMO {key} is {value!r}; v0.1 requires {expected[key]!r}")
    for key in obj:
        if key not in _CMO_FIELDS:
            problems.append(f"{name} CMO has field {key!r}, which CMOs must not carry")
    return CmoStatus(name, legacy, tuple(problems))
