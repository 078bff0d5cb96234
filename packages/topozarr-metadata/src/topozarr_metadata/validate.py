"""Validation of GeoZarr attributes: official v0.1 schemas plus topozarr's cross-field rules.

``jsonschema`` is imported only when :func:`validate` runs (install the ``validate``
extra). The schemas are the package data in ``topozarr_metadata/schemas`` (see
``PROVENANCE.md`` there); nothing is fetched and no remote schema is registered:
``proj:projjson`` is checked to be an object but not against the remote PROJJSON
schema.

Finding paths are ``"<node>#<json-pointer>"``: ``<node>`` is the Zarr path of the
node relative to the store root (empty for the root itself, ``"1"`` for a level
group, ``"1/elevation"`` for an array) and the pointer addresses a value inside that
node's ``attributes`` (or ``dimension_names`` for arrays). Example:
``"#/multiscales/layout/1/transform/scale"``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from .conventions import classify_cmo
from .findings import Finding, as_shape, as_vector
from .hints import HINTS_KEY, parse_layer_hints
from .layout_rules import flat_findings, layout_findings
from .read import unwrap

__all__ = ["Finding", "validate"]

_SCHEMA_FILES = {
    "multiscales": "multiscales.schema.json",
    "proj": "proj.schema.json",
    "spatial": "spatial.schema.json",
    "zarr-conventions": "zarr-conventions.schema.json",
}
_MAX_MESSAGE = 300


# --- schema machinery (jsonschema imported lazily) ---------------------------------------------


def _load_schema(name: str) -> dict[str, Any]:
    text = (resources.files(__package__) / "schemas" / _SCHEMA_FILES[name]).read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@cache
def _validators() -> dict[str, Any]:
    try:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
        from referencing.exceptions import NoSuchResource
        from referencing.jsonschema import DRAFT202012
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "topozarr_metadata.validate needs jsonschema; install 'topozarr-metadata[validate]'"
        ) from exc

    def no_remote(uri: str) -> Any:
        raise NoSuchResource(ref=uri)  # type: ignore[call-arg]

    schemas = {name: _load_schema(name) for name in _SCHEMA_FILES}
    registry: Any = Registry(retrieve=no_remote).with_resources(  # type: ignore[call-arg]
        (s["$id"], Resource.from_contents(s, default_specification=DRAFT202012))
        for s in schemas.values()
    )
    return {
        name: Draft202012Validator(schema, registry=registry) for name, schema in schemas.items()
    }


def _pointer(parts: Iterable[object]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _schema_findings(
    name: str, node: str, node_type: str, attrs: Mapping[str, Any]
) -> list[Finding]:
    body = {k: v for k, v in attrs.items() if k != "proj:projjson"}
    doc = {"zarr_format": 3, "node_type": node_type, "attributes": body}
    out = []
    for err in sorted(_validators()[name].iter_errors(doc), key=lambda e: list(e.absolute_path)):
        parts = list(err.absolute_path)
        if parts[:1] == ["attributes"]:
            parts = parts[1:]
        if err.validator == "contains" and parts == ["zarr_conventions"]:
            message = (
                f"no entry is a valid {name} v0.1 convention object; "
                f"use topozarr_metadata.CONVENTIONS[{name!r}]"
            )
        else:
            message = err.message
        out.append(Finding(f"{node}#{_pointer(parts)}", f"[{name} schema] {_short(message)}"))
    if "proj:projjson" in attrs and not isinstance(attrs["proj:projjson"], Mapping):
        out.append(
            Finding(f"{node}#/proj:projjson", "[proj schema] proj:projjson must be an object")
        )
    return out


# --- convention declarations -----------------------------------------------------------------


def _uses(attrs: Mapping[str, Any]) -> set[str]:
    used = set()
    if "multiscales" in attrs:
        used.add("multiscales")
    if any(k.startswith("proj:") for k in attrs):
        used.add("proj")
    if any(k.startswith("spatial:") for k in attrs):
        used.add("spatial")
    ms = attrs.get("multiscales")
    layout = ms.get("layout") if isinstance(ms, Mapping) else None
    if isinstance(layout, list) and any(
        isinstance(e, Mapping) and any(str(k).startswith("spatial:") for k in e) for e in layout
    ):
        used.add("spatial")
    return used


def _convention_findings(node: str, attrs: Mapping[str, Any]) -> tuple[list[Finding], set[str]]:
    """CMO-by-CMO comparison with v0.1; return findings and the declared conventions."""
    out: list[Finding] = []
    declared: set[str] = set()
    conventions = attrs.get("zarr_conventions")
    if isinstance(conventions, list):
        for i, obj in enumerate(conventions):
            status = classify_cmo(obj)
            if status.convention is not None:
                declared.add(status.convention)
            out.extend(Finding(f"{node}#/zarr_conventions/{i}", p) for p in status.problems)
    for name in sorted(_uses(attrs) - declared):
        out.append(
            Finding(
                f"{node}#/zarr_conventions",
                f"{name} keys are used but the {name} convention is not declared; "
                f"add topozarr_metadata.CONVENTIONS[{name!r}] to zarr_conventions",
            )
        )
    return out, declared


# --- level groups and arrays -----------------------------------------------------------------


def _level_group_findings(
    root: Mapping[str, Any], key: str, raw: Mapping[str, Any], layout: list[Any] | None
) -> list[Finding]:
    node = key
    group = unwrap(raw)
    if not isinstance(group, Mapping):
        return [Finding(f"{node}#", "level group attributes must be an object")]
    out: list[Finding] = []
    entry = _layout_entry(key, layout, out)
    for name in ("proj", "spatial", "zarr-conventions"):
        out.extend(_schema_findings(name, node, "group", group))
    conv, declared = _convention_findings(node, group)
    out.extend(conv)
    for name in ("proj", "spatial"):
        if name not in declared:
            out.append(
                Finding(
                    f"{node}#/zarr_conventions", f"level groups must declare the {name} convention"
                )
            )
    if "multiscales" in group:
        out.append(
            Finding(
                f"{node}#/multiscales",
                "level group carries a stale 'multiscales' attribute; only the root has one",
            )
        )
    out.extend(_restates_root(root, group, node))
    out.extend(_geometry_vs_entry(group, entry, node))
    registration = group.get("spatial:registration", root.get("spatial:registration"))
    out.extend(flat_findings(group, node, registration=registration))
    return out


def _layout_entry(
    key: str, layout: list[Any] | None, out: list[Finding]
) -> Mapping[str, Any] | None:
    """The layout entry naming this group as its asset (a finding when none does)."""
    if layout is None:
        return None
    entries = [e for e in layout if isinstance(e, Mapping)]
    for entry in entries:
        if entry.get("asset") == key:
            return entry
    assets = [e.get("asset") for e in entries]
    out.append(
        Finding(
            f"{key}#",
            f"group {key!r} is not a layout asset {assets!r}; level group names "
            "must match the layout assets",
        )
    )
    return None


def _restates_root(root: Mapping[str, Any], group: Mapping[str, Any], node: str) -> list[Finding]:
    """A level group restates the root's CRS and spatial dims."""
    out = []
    for k in ("proj:code", "proj:wkt2", "proj:projjson"):
        if group.get(k) != root.get(k):
            if k in root and k not in group:
                msg = f"{k} missing; restate the root's proj on every level group"
            else:
                msg = f"{k} differs from the root's; every level uses the root CRS"
            out.append(Finding(f"{node}#/{k}", msg))
    if "spatial:dimensions" not in group:
        out.append(Finding(f"{node}#", "level group lacks spatial:dimensions"))
    elif "spatial:dimensions" in root and group["spatial:dimensions"] != root["spatial:dimensions"]:
        out.append(
            Finding(
                f"{node}#/spatial:dimensions",
                f"spatial:dimensions {group['spatial:dimensions']!r} differs from the root's "
                f"{root['spatial:dimensions']!r}",
            )
        )
    return out


def _geometry_vs_entry(
    group: Mapping[str, Any], entry: Mapping[str, Any] | None, node: str
) -> list[Finding]:
    """The group states its transform, shape and bbox; the first two equal its layout entry's."""
    out = [
        Finding(f"{node}#", f"level group lacks {k}")
        for k in ("spatial:transform", "spatial:shape", "spatial:bbox")
        if k not in group
    ]
    if entry is None:
        return out
    pairs = (
        (
            "spatial:transform",
            as_vector(group.get("spatial:transform"), 6),
            as_vector(entry.get("spatial:transform"), 6),
        ),
        (
            "spatial:shape",
            as_shape(group.get("spatial:shape")),
            as_shape(entry.get("spatial:shape")),
        ),
    )
    for k, mine, theirs in pairs:
        if mine is not None and theirs is not None and mine != theirs:
            out.append(
                Finding(
                    f"{node}#/{k}",
                    f"{k} {list(mine)} differs from its layout entry's {list(theirs)}",
                )
            )
    return out


def _dimension_findings(
    root: Mapping[str, Any],
    level_attrs: Mapping[str, Mapping[str, Any]],
    dimension_names: Mapping[str, Sequence[str]],
) -> list[Finding]:
    out: list[Finding] = []
    by_var: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    # A group whose rasters carry the spatial dims may also hold arrays over one of them (a
    # profile along x) or none (time bounds): only a group with no such raster is flagged,
    # which is the misnamed-dims case zarr-layer fails on.
    has_raster = {
        path.rpartition("/")[0]
        for path, names in dimension_names.items()
        if isinstance(names, Sequence)
        and not isinstance(names, str | bytes)
        and _has_all(names, _spatial_dims(root, level_attrs, path))
    }
    for path, names in dimension_names.items():
        where = f"{path}#/dimension_names"
        if (
            isinstance(names, str | bytes)
            or not isinstance(names, Sequence)
            or not all(isinstance(n, str) and n for n in names)
        ):
            out.append(
                Finding(where, f"dimension_names {names!r} must name every dimension (strings)")
            )
            continue
        group, _, var = path.rpartition("/")
        dims = _spatial_dims(root, level_attrs, path)
        if len(names) >= 2 and isinstance(dims, list | tuple) and group not in has_raster:
            missing = [d for d in dims if d not in names]
            if missing:
                out.append(
                    Finding(
                        where,
                        f"spatial:dimensions {list(dims)!r} not all in dimension_names "
                        f"{list(names)!r} (missing {missing!r}); zarr-layer fails to open "
                        "the layer",
                    )
                )
        by_var.setdefault(var, []).append((path, tuple(names)))
    for var, seen in by_var.items():
        first_path, first = seen[0]
        for path, names in seen[1:]:
            if names != first:
                out.append(
                    Finding(
                        f"{path}#/dimension_names",
                        f"{var!r} has dimension_names {list(names)!r} here but "
                        f"{list(first)!r} in {first_path!r}; use the same order in every level",
                    )
                )
    return out


def _spatial_dims(
    root: Mapping[str, Any], level_attrs: Mapping[str, Mapping[str, Any]], path: str
) -> Any:
    """The ``spatial:dimensions`` in effect for the array at ``path``."""
    group = path.rpartition("/")[0]
    group_attrs = unwrap(level_attrs.get(group, {})) if group else root
    return group_attrs.get("spatial:dimensions", root.get("spatial:dimensions"))


def _has_all(names: Sequence[Any], dims: Any) -> bool:
    return isinstance(dims, list | tuple) and all(d in names for d in dims)


def validate(
    attrs: Mapping[str, Any],
    *,
    level_attrs: Mapping[str, Mapping[str, Any]] | None = None,
    dimension_names: Mapping[str, Sequence[str]] | None = None,
) -> list[Finding]:
    """Check GeoZarr attributes against the v0.1 schemas and topozarr's rules.

    Parameters
    ----------
    attrs
        Root attributes of a pyramid (with ``multiscales``) or of a flat store, or
        the root ``zarr.json`` document.
    level_attrs
        Optional level group path -> that group's attributes (or node document).
        Each is checked against the proj/spatial schemas and against the root.
    dimension_names
        Optional array path (``"0/elevation"``, ``"elevation"`` for a flat store) ->
        the array's ``dimension_names``. Each group needs an array that contains the
        spatial dimensions in effect for it (its ``spatial:dimensions``, else the
        root's); when none does, every array of two or more dimensions there is
        flagged. A variable must use the same dimension order in every level.

    Returns
    -------
    list of Finding
        Empty when everything is valid. Schema findings carry the schema name in
        brackets, e.g. ``"[multiscales schema] ..."``.

    Raises
    ------
    ImportError
        If jsonschema is not installed (``pip install topozarr-metadata[validate]``).

    Notes
    -----
    Rules checked beyond the schemas: v0.1 CMOs field for field (draft URLs/names
    and missing fields reported); every used convention declared; per-step ``scale`` equals the pixel-size ratio to
    ``derived_from``; ``translation`` is ``[0.0, 0.0]``; all levels share the
    origin and pixel-size signs; shapes equal ``floor(H0 / F)``; root and level
    ``spatial:bbox`` equal the transform extent; root ``spatial:transform``/``shape``
    equal layout[0]'s; level groups restate proj, match their layout entry and carry
    no ``multiscales``; ``"zarr-layer"`` hints are well-formed; arrays' dimension_names
    contain the spatial dimensions and keep one order across levels. Tolerances are
    relative (1e-9, scaled by the pixel size for coordinates).
    """
    doc = unwrap(attrs)
    if not isinstance(doc, Mapping):
        return [Finding("#", f"attributes must be an object, got {type(doc).__name__}")]
    findings: list[Finding] = []
    add: Callable[[Iterable[Finding]], None] = findings.extend

    add(_schema_findings("zarr-conventions", "", "group", doc))
    used = _uses(doc)
    conv, declared = _convention_findings("", doc)
    for name in ("multiscales", "proj", "spatial"):
        if name in used or name in declared:
            add(_schema_findings(name, "", "group", doc))
    add(conv)

    layout: list[Any] | None = None
    ms = doc.get("multiscales")
    if isinstance(ms, Mapping) and isinstance(ms.get("layout"), list):
        layout = ms["layout"]
        add(layout_findings(doc, layout))
    elif "multiscales" not in doc:
        add(flat_findings(doc, ""))

    if HINTS_KEY in doc:
        try:
            parse_layer_hints(doc[HINTS_KEY])
        except ValueError as exc:
            add([Finding(f"#/{HINTS_KEY}", str(exc))])

    for key, group in (level_attrs or {}).items():
        add(_level_group_findings(doc, key, group, layout))
    if dimension_names:
        add(_dimension_findings(doc, level_attrs or {}, dimension_names))

    unique: dict[Finding, None] = dict.fromkeys(findings)
    return list(unique)
