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
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .conventions import classify_cmo
from .geometry import bbox_of
from .hints import HINTS_KEY, parse_layer_hints
from .read import unwrap

__all__ = ["Finding", "validate"]

_SCHEMA_FILES = {
    "multiscales": "multiscales.schema.json",
    "proj": "proj.schema.json",
    "spatial": "spatial.schema.json",
    "zarr-conventions": "zarr-conventions.schema.json",
}
_REL = 1e-9
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class Finding:
    """One problem found by :func:`validate`.

    Attributes
    ----------
    path
        ``"<node>#<json-pointer>"``, e.g. ``"#/spatial:bbox"`` (root) or
        ``"1#/spatial:shape"`` (level group ``1``).
    message
        What is wrong and, where possible, what the value should be.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


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


# --- small helpers -------------------------------------------------------------------------------


def _real(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _vec(value: object, n: int) -> tuple[float, ...] | None:
    if isinstance(value, list | tuple) and len(value) == n and all(_real(v) for v in value):
        return tuple(float(v) for v in value)
    return None


def _shape(value: object) -> tuple[int, int] | None:
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        return (value[0], value[1])
    return None


def _close(x: float, y: float, scale: float = 0.0) -> bool:
    return abs(x - y) <= _REL * max(abs(x), abs(y), abs(scale))


def _as_int(x: float) -> int | None:
    r = round(x)
    return int(r) if r >= 1 and abs(x - r) <= _REL * abs(x) else None


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(repr(v) for v in values) + "]"


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


# --- geometry rules --------------------------------------------------------------------------


def _transform_findings(where: str, t: tuple[float, ...]) -> list[Finding]:
    out = []
    if t[0] == 0 or t[4] == 0:
        out.append(Finding(where, f"degenerate transform {_fmt(t)}: a and e must be non-zero"))
    if t[1] != 0 or t[3] != 0:
        out.append(
            Finding(
                where,
                f"rotated transform {_fmt(t)} (b={t[1]}, d={t[3]}): zarr-layer declines rotated "
                "grids; write an axis-aligned grid (b = d = 0)",
            )
        )
    return out


def _bbox_finding(
    where: str,
    bbox_value: object,
    shape: tuple[int, int] | None,
    t: tuple[float, ...] | None,
    registration: object = "pixel",
) -> list[Finding]:
    bbox = _vec(bbox_value, 4)
    if bbox is None:
        return []  # the schema reports malformed values
    out = []
    if not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
        out.append(
            Finding(
                where,
                f"bbox {_fmt(bbox)} must satisfy xmin < xmax and ymin < ymax "
                "(zarr-layer ignores it otherwise)",
            )
        )
    if shape is not None and t is not None and t[1] == 0 and t[3] == 0:
        expected = bbox_of(shape, t, registration="node" if registration == "node" else "pixel")
        size = max(abs(t[0]), abs(t[4]))
        if not all(_close(x, y, size) for x, y in zip(bbox, expected, strict=True)):
            out.append(
                Finding(
                    where,
                    f"bbox {_fmt(bbox)} is not the extent of spatial:transform and "
                    f"spatial:shape {list(shape)}; expected {_fmt(expected)}",
                )
            )
    return out


@dataclass
class _Level:
    index: int
    asset: str | None
    derived_from: str | None
    entry: Mapping[str, Any]
    shape: tuple[int, int] | None
    transform: tuple[float, ...] | None


def _layout_findings(attrs: Mapping[str, Any], layout: list[Any]) -> list[Finding]:
    out: list[Finding] = []
    levels: list[_Level] = []
    for i, entry in enumerate(layout):
        if not isinstance(entry, Mapping):
            continue  # schema finding
        asset = entry.get("asset") if isinstance(entry.get("asset"), str) else None
        derived = entry.get("derived_from")
        levels.append(
            _Level(
                i,
                asset,
                derived if isinstance(derived, str) else None,
                entry,
                _shape(entry.get("spatial:shape")),
                _vec(entry.get("spatial:transform"), 6),
            )
        )
    if not levels or levels[0].index != 0:
        return out  # the schema reports a non-object layout[0]
    by_asset: dict[str, _Level] = {}
    for lvl in levels:
        if lvl.asset is None:
            continue
        if lvl.asset in by_asset:
            out.append(
                Finding(
                    f"#/multiscales/layout/{lvl.index}/asset",
                    f"asset {lvl.asset!r} appears twice in the layout; assets must be unique",
                )
            )
        by_asset.setdefault(lvl.asset, lvl)

    base = levels[0]
    root_t = _vec(attrs.get("spatial:transform"), 6)
    root_s = _shape(attrs.get("spatial:shape"))
    if root_t is not None and base.transform is not None and root_t != base.transform:
        out.append(
            Finding(
                "#/spatial:transform",
                f"root spatial:transform {_fmt(root_t)} differs from layout[0]'s "
                f"{_fmt(base.transform)}; they must be equal",
            )
        )
    if root_s is not None and base.shape is not None and root_s != base.shape:
        out.append(
            Finding(
                "#/spatial:shape",
                f"root spatial:shape {list(root_s)} differs from layout[0]'s {list(base.shape)}",
            )
        )
    t0 = base.transform or root_t
    s0 = base.shape or root_s
    if base.derived_from is not None:
        out.append(
            Finding(
                "#/multiscales/layout/0/derived_from",
                "layout[0] is the base level (zarr-layer sizes everything from it) and "
                "must not be derived from another level; list the finest level first",
            )
        )

    for lvl in levels:
        here = f"#/multiscales/layout/{lvl.index}"
        entry = lvl.entry
        for key, at_root in (("spatial:shape", root_s), ("spatial:transform", root_t)):
            if key not in entry and not (lvl is base and at_root is not None):
                out.append(
                    Finding(here, f"layout entry lacks {key}; every level must state its own")
                )
        t = lvl.transform or (t0 if lvl is base else None)
        shape = lvl.shape or (s0 if lvl is base else None)
        if lvl.transform is not None:
            out.extend(_transform_findings(f"{here}/spatial:transform", lvl.transform))

        rel = entry.get("transform")
        scale = translation = None
        if isinstance(rel, Mapping):
            scale, translation = rel.get("scale"), rel.get("translation")
        if translation is not None:
            if _vec(translation, 2) != (0.0, 0.0):
                out.append(
                    Finding(
                        f"{here}/transform/translation",
                        f"translation {translation!r} must be [0.0, 0.0] "
                        "(pixel registration, shared origin)",
                    )
                )
        elif lvl.derived_from is not None:
            out.append(
                Finding(f"{here}/transform", "transform lacks translation; write [0.0, 0.0]")
            )
        scale_v = None
        if scale is not None:
            scale_v = _vec(scale, 2)
            if scale_v is None:
                out.append(
                    Finding(
                        f"{here}/transform/scale",
                        f"scale {scale!r} must be 2 numbers ordered [y, x]",
                    )
                )
        elif lvl.derived_from is not None:
            out.append(
                Finding(f"{here}/transform", "transform lacks scale; write [s, s] (per step)")
            )

        src = by_asset.get(lvl.derived_from) if lvl.derived_from is not None else None
        if lvl.derived_from is not None and src is None:
            out.append(
                Finding(
                    f"{here}/derived_from",
                    f"derived_from {lvl.derived_from!r} is not an asset of this layout",
                )
            )
        if lvl.derived_from is not None and src is not None and src.index >= lvl.index:
            out.append(
                Finding(
                    f"{here}/derived_from",
                    f"derived_from {lvl.derived_from!r} must be listed before {lvl.asset!r} "
                    "(finest first; no cycles)",
                )
            )
        if lvl.derived_from is None and lvl is not base:
            out.append(
                Finding(here, "level has no derived_from; each coarser level names its source")
            )
        if lvl is base and scale_v is not None and scale_v != (1.0, 1.0):
            out.append(
                Finding(
                    f"{here}/transform/scale",
                    f"base level scale {_fmt(scale_v)} must be [1.0, 1.0]",
                )
            )

        src_t = None
        if src is not None:
            src_t = src.transform or (t0 if src is base else None)
        if scale_v is not None and t is not None and src_t is not None and src is not None:
            ratio = (t[4] / src_t[4], t[0] / src_t[0]) if src_t[0] and src_t[4] else None
            if ratio is not None and not all(
                _close(s, r) for s, r in zip(scale_v, ratio, strict=True)
            ):
                out.append(
                    Finding(
                        f"{here}/transform/scale",
                        f"scale {_fmt(scale_v)} is not the pixel-size ratio to "
                        f"{src.asset!r}: expected {_fmt(ratio)} ([e/e_src, a/a_src])",
                    )
                )

        if t is not None and t0 is not None and lvl is not base:
            size = max(abs(t0[0]), abs(t0[4]))
            if not (_close(t[2], t0[2], size) and _close(t[5], t0[5], size)):
                out.append(
                    Finding(
                        f"{here}/spatial:transform",
                        f"origin (c, f) = ({t[2]!r}, {t[5]!r}) differs from the base level's "
                        f"({t0[2]!r}, {t0[5]!r}); all levels share the origin",
                    )
                )
            if t[4] * t0[4] < 0 or t[0] * t0[0] < 0:
                out.append(
                    Finding(
                        f"{here}/spatial:transform",
                        "pixel size sign differs from the base level's "
                        "(zarr-layer ignores such a level)",
                    )
                )
            if t0[0] and t0[4]:
                fy, fx = t[4] / t0[4], t[0] / t0[0]
                ky, kx = _as_int(fy), _as_int(fx)
                if ky is None or kx is None:
                    out.append(
                        Finding(
                            f"{here}/spatial:transform",
                            f"cumulative factor vs the base level ({fy!r}, {fx!r}) is not a "
                            "whole number >= 1; levels are integer coarsenings of level 0",
                        )
                    )
                elif shape is not None and s0 is not None:
                    expected = (s0[0] // ky, s0[1] // kx)
                    if shape != expected:
                        out.append(
                            Finding(
                                f"{here}/spatial:shape",
                                f"spatial:shape {list(shape)} is inconsistent with the "
                                f"cumulative factor ({ky}, {kx}) and base shape {list(s0)}: "
                                f"expected {list(expected)} (floor division)",
                            )
                        )
        elif (
            lvl is not base
            and scale_v is not None
            and shape is not None
            and src is not None
            and src.shape is not None
        ):
            sy, sx = _as_int(scale_v[0]), _as_int(scale_v[1])
            if sy is not None and sx is not None:
                expected = (src.shape[0] // sy, src.shape[1] // sx)
                if shape != expected:
                    out.append(
                        Finding(
                            f"{here}/spatial:shape",
                            f"spatial:shape {list(shape)} is inconsistent with scale "
                            f"{_fmt(scale_v)} from {src.asset!r} {list(src.shape)}: "
                            f"expected {list(expected)}",
                        )
                    )
        if (
            t is not None
            and t0 is not None
            and lvl is not base
            and max(abs(t[0]), abs(t[4])) < max(abs(t0[0]), abs(t0[4])) * (1 - _REL)
        ):
            out.append(
                Finding(
                    here,
                    "level is finer than layout[0]; zarr-layer treats layout[0] as the "
                    "finest (base) level, so list levels finest first",
                )
            )

    if "spatial:bbox" in attrs:
        out.extend(
            _bbox_finding(
                "#/spatial:bbox", attrs["spatial:bbox"], s0, t0, attrs.get("spatial:registration")
            )
        )
    return out


def _flat_findings(attrs: Mapping[str, Any], node: str) -> list[Finding]:
    out: list[Finding] = []
    t = _vec(attrs.get("spatial:transform"), 6)
    if t is not None:
        out.extend(_transform_findings(f"{node}#/spatial:transform", t))
    if "spatial:bbox" in attrs:
        out.extend(
            _bbox_finding(
                f"{node}#/spatial:bbox",
                attrs["spatial:bbox"],
                _shape(attrs.get("spatial:shape")),
                t,
                attrs.get("spatial:registration"),
            )
        )
    return out


# --- level groups and arrays -----------------------------------------------------------------


def _level_group_findings(
    root: Mapping[str, Any], key: str, raw: Mapping[str, Any], layout: list[Any] | None
) -> list[Finding]:
    node = key
    group = unwrap(raw)
    if not isinstance(group, Mapping):
        return [Finding(f"{node}#", "level group attributes must be an object")]
    out: list[Finding] = []
    entry: Mapping[str, Any] | None = None
    assets = [e.get("asset") for e in layout or [] if isinstance(e, Mapping)]
    if layout is not None:
        if key not in assets:
            out.append(
                Finding(
                    f"{node}#",
                    f"group {key!r} is not a layout asset {assets!r}; level group names "
                    "must match the layout assets",
                )
            )
        else:
            entry = next(e for e in layout if isinstance(e, Mapping) and e.get("asset") == key)
    for name in ("proj", "spatial", "zarr-conventions"):
        out.extend(_schema_findings(name, node, "group", group))
    conv, declared = _convention_findings(node, group)
    out.extend(conv)
    for name in ("proj", "spatial"):
        if name not in declared:
            out.append(
                Finding(
                    f"{node}#/zarr_conventions",
                    f"level groups must declare the {name} convention",
                )
            )
    if "multiscales" in group:
        out.append(
            Finding(
                f"{node}#/multiscales",
                "level group carries a stale 'multiscales' attribute; only the root has one",
            )
        )
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
    t, shape = _vec(group.get("spatial:transform"), 6), _shape(group.get("spatial:shape"))
    for k in ("spatial:transform", "spatial:shape", "spatial:bbox"):
        if k not in group:
            out.append(Finding(f"{node}#", f"level group lacks {k}"))
    if entry is not None:
        for k, mine in (("spatial:transform", t), ("spatial:shape", shape)):
            theirs = _vec(entry.get(k), 6) if k == "spatial:transform" else _shape(entry.get(k))
            if mine is not None and theirs is not None and mine != theirs:
                out.append(
                    Finding(
                        f"{node}#/{k}",
                        f"{k} {list(mine)} differs from its layout entry's {list(theirs)}",
                    )
                )
    if t is not None:
        out.extend(_transform_findings(f"{node}#/spatial:transform", t))
    if "spatial:bbox" in group:
        out.extend(
            _bbox_finding(
                f"{node}#/spatial:bbox",
                group["spatial:bbox"],
                shape,
                t,
                group.get("spatial:registration", root.get("spatial:registration")),
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
        group_attrs = unwrap(level_attrs.get(group, {})) if group else root
        dims = group_attrs.get("spatial:dimensions", root.get("spatial:dimensions"))
        if len(names) >= 2 and isinstance(dims, list | tuple):
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
        the array's ``dimension_names``. Arrays with two or more dimensions must
        contain the spatial dimensions in effect for them (their group's
        ``spatial:dimensions``, else the root's); a variable must use the same
        dimension order in every level.

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
        add(_layout_findings(doc, layout))
    elif "multiscales" not in doc:
        add(_flat_findings(doc, ""))

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
