"""Cross-field rules of the ``multiscales`` layout and flat stores: transforms, bboxes, shapes
and factors of every level, checked against each other and the root's ``spatial:`` values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .findings import REL, Finding, as_int, as_shape, as_vector, fmt_values, is_close
from .geometry import bbox_of

__all__ = ["bbox_finding", "flat_findings", "layout_findings", "transform_findings"]


def transform_findings(where: str, t: tuple[float, ...]) -> list[Finding]:
    out = []
    if t[0] == 0 or t[4] == 0:
        out.append(
            Finding(where, f"degenerate transform {fmt_values(t)}: a and e must be non-zero")
        )
    if t[1] != 0 or t[3] != 0:
        out.append(
            Finding(
                where,
                f"rotated transform {fmt_values(t)} (b={t[1]}, d={t[3]}): zarr-layer declines rotated "
                "grids; write an axis-aligned grid (b = d = 0)",
            )
        )
    return out


def bbox_finding(
    where: str,
    bbox_value: object,
    shape: tuple[int, int] | None,
    t: tuple[float, ...] | None,
    registration: object = "pixel",
) -> list[Finding]:
    bbox = as_vector(bbox_value, 4)
    if bbox is None:
        return []  # the schema reports malformed values
    out = []
    if not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
        out.append(
            Finding(
                where,
                f"bbox {fmt_values(bbox)} must satisfy xmin < xmax and ymin < ymax "
                "(zarr-layer ignores it otherwise)",
            )
        )
    if shape is not None and t is not None and t[1] == 0 and t[3] == 0:
        expected = bbox_of(shape, t, registration="node" if registration == "node" else "pixel")
        size = max(abs(t[0]), abs(t[4]))
        if not all(is_close(x, y, size) for x, y in zip(bbox, expected, strict=True)):
            out.append(
                Finding(
                    where,
                    f"bbox {fmt_values(bbox)} is not the extent of spatial:transform and "
                    f"spatial:shape {list(shape)}; expected {fmt_values(expected)}",
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


def layout_findings(attrs: Mapping[str, Any], layout: list[Any]) -> list[Finding]:
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
                as_shape(entry.get("spatial:shape")),
                as_vector(entry.get("spatial:transform"), 6),
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
    root_t = as_vector(attrs.get("spatial:transform"), 6)
    root_s = as_shape(attrs.get("spatial:shape"))
    if root_t is not None and base.transform is not None and root_t != base.transform:
        out.append(
            Finding(
                "#/spatial:transform",
                f"root spatial:transform {fmt_values(root_t)} differs from layout[0]'s "
                f"{fmt_values(base.transform)}; they must be equal",
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
            out.extend(transform_findings(f"{here}/spatial:transform", lvl.transform))

        rel = entry.get("transform")
        scale = translation = None
        if isinstance(rel, Mapping):
            scale, translation = rel.get("scale"), rel.get("translation")
        if translation is not None:
            if as_vector(translation, 2) != (0.0, 0.0):
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
            scale_v = as_vector(scale, 2)
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
                    f"base level scale {fmt_values(scale_v)} must be [1.0, 1.0]",
                )
            )

        src_t = None
        if src is not None:
            src_t = src.transform or (t0 if src is base else None)
        if scale_v is not None and t is not None and src_t is not None and src is not None:
            ratio = (t[4] / src_t[4], t[0] / src_t[0]) if src_t[0] and src_t[4] else None
            if ratio is not None and not all(
                is_close(s, r) for s, r in zip(scale_v, ratio, strict=True)
            ):
                out.append(
                    Finding(
                        f"{here}/transform/scale",
                        f"scale {fmt_values(scale_v)} is not the pixel-size ratio to "
                        f"{src.asset!r}: expected {fmt_values(ratio)} ([e/e_src, a/a_src])",
                    )
                )

        if t is not None and t0 is not None and lvl is not base:
            size = max(abs(t0[0]), abs(t0[4]))
            if not (is_close(t[2], t0[2], size) and is_close(t[5], t0[5], size)):
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
                ky, kx = as_int(fy), as_int(fx)
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
            sy, sx = as_int(scale_v[0]), as_int(scale_v[1])
            if sy is not None and sx is not None:
                expected = (src.shape[0] // sy, src.shape[1] // sx)
                if shape != expected:
                    out.append(
                        Finding(
                            f"{here}/spatial:shape",
                            f"spatial:shape {list(shape)} is inconsistent with scale "
                            f"{fmt_values(scale_v)} from {src.asset!r} {list(src.shape)}: "
                            f"expected {list(expected)}",
                        )
                    )
        if (
            t is not None
            and t0 is not None
            and lvl is not base
            and max(abs(t[0]), abs(t[4])) < max(abs(t0[0]), abs(t0[4])) * (1 - REL)
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
            bbox_finding(
                "#/spatial:bbox", attrs["spatial:bbox"], s0, t0, attrs.get("spatial:registration")
            )
        )
    return out


def flat_findings(
    attrs: Mapping[str, Any], node: str, *, registration: Any = None
) -> list[Finding]:
    """The node's own ``spatial:transform`` and ``spatial:bbox`` checks.

    ``registration`` overrides the node's ``spatial:registration`` (a level group inherits
    the root's).
    """
    out: list[Finding] = []
    t = as_vector(attrs.get("spatial:transform"), 6)
    if t is not None:
        out.extend(transform_findings(f"{node}#/spatial:transform", t))
    if "spatial:bbox" in attrs:
        out.extend(
            bbox_finding(
                f"{node}#/spatial:bbox",
                attrs["spatial:bbox"],
                as_shape(attrs.get("spatial:shape")),
                t,
                registration if registration is not None else attrs.get("spatial:registration"),
            )
        )
    return out
