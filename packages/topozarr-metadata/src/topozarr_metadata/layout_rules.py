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


@dataclass
class _Layout:
    """What every level is checked against: the base level and the root's own values."""

    base: _Level
    by_asset: dict[str, _Level]
    t0: tuple[float, ...] | None  # the base level's transform (layout[0]'s, else the root's)
    s0: tuple[int, int] | None  # the base level's shape (likewise)
    root_t: tuple[float, ...] | None
    root_s: tuple[int, int] | None

    def transform_of(self, lvl: _Level) -> tuple[float, ...] | None:
        return lvl.transform or (self.t0 if lvl is self.base else None)

    def shape_of(self, lvl: _Level) -> tuple[int, int] | None:
        return lvl.shape or (self.s0 if lvl is self.base else None)


def _levels(layout: list[Any]) -> list[_Level]:
    levels = []
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
    return levels


def _assets(levels: list[_Level], out: list[Finding]) -> dict[str, _Level]:
    """Levels by asset name (the first of each); a repeated name is a finding."""
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
    return by_asset


def _root_findings(ctx: _Layout) -> list[Finding]:
    """The root's spatial:transform/shape equal layout[0]'s, which derives from nothing."""
    out = []
    base, root_t, root_s = ctx.base, ctx.root_t, ctx.root_s
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
    if base.derived_from is not None:
        out.append(
            Finding(
                "#/multiscales/layout/0/derived_from",
                "layout[0] is the base level (zarr-layer sizes everything from it) and "
                "must not be derived from another level; list the finest level first",
            )
        )
    return out


def layout_findings(attrs: Mapping[str, Any], layout: list[Any]) -> list[Finding]:
    out: list[Finding] = []
    levels = _levels(layout)
    if not levels or levels[0].index != 0:
        return out  # the schema reports a non-object layout[0]
    by_asset = _assets(levels, out)
    root_t = as_vector(attrs.get("spatial:transform"), 6)
    root_s = as_shape(attrs.get("spatial:shape"))
    base = levels[0]
    ctx = _Layout(
        base=base,
        by_asset=by_asset,
        t0=base.transform or root_t,
        s0=base.shape or root_s,
        root_t=root_t,
        root_s=root_s,
    )
    out.extend(_root_findings(ctx))
    for lvl in levels:
        out.extend(_level_findings(lvl, ctx))
    if "spatial:bbox" in attrs:
        out.extend(
            bbox_finding(
                "#/spatial:bbox",
                attrs["spatial:bbox"],
                ctx.s0,
                ctx.t0,
                attrs.get("spatial:registration"),
            )
        )
    return out


def _level_findings(lvl: _Level, ctx: _Layout) -> list[Finding]:
    here = f"#/multiscales/layout/{lvl.index}"
    out = _own_keys(lvl, ctx, here)
    scale, found = _relative_transform(lvl, here)
    out.extend(found)
    src = ctx.by_asset.get(lvl.derived_from) if lvl.derived_from is not None else None
    out.extend(_derivation(lvl, ctx, src, scale, here))
    if src is not None and scale is not None:
        out.extend(_scale_ratio(lvl, ctx, src, scale, here))
    if lvl is ctx.base:
        return out
    t, t0 = ctx.transform_of(lvl), ctx.t0
    if t is not None and t0 is not None:
        out.extend(_against_base(t, ctx.shape_of(lvl), t0, ctx.s0, here))
    elif scale is not None and src is not None:
        out.extend(_against_source_shape(ctx.shape_of(lvl), src, scale, here))
    if t is not None and t0 is not None and _pixel(t) < _pixel(t0) * (1 - REL):
        out.append(
            Finding(
                here,
                "level is finer than layout[0]; zarr-layer treats layout[0] as the "
                "finest (base) level, so list levels finest first",
            )
        )
    return out


def _pixel(t: tuple[float, ...]) -> float:
    return max(abs(t[0]), abs(t[4]))


def _own_keys(lvl: _Level, ctx: _Layout, here: str) -> list[Finding]:
    """Every level states its own shape and transform (the base may leave them to the root)."""
    out = []
    for key, at_root in (("spatial:shape", ctx.root_s), ("spatial:transform", ctx.root_t)):
        if key not in lvl.entry and not (lvl is ctx.base and at_root is not None):
            out.append(Finding(here, f"layout entry lacks {key}; every level must state its own"))
    if lvl.transform is not None:
        out.extend(transform_findings(f"{here}/spatial:transform", lvl.transform))
    return out


def _relative_transform(lvl: _Level, here: str) -> tuple[tuple[float, ...] | None, list[Finding]]:
    """The entry's relative ``transform`` (scale [y, x], zero translation): its scale."""
    out = []
    rel = lvl.entry.get("transform")
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
        out.append(Finding(f"{here}/transform", "transform lacks translation; write [0.0, 0.0]"))
    scale_v = None
    if scale is not None:
        scale_v = as_vector(scale, 2)
        if scale_v is None:
            out.append(
                Finding(
                    f"{here}/transform/scale", f"scale {scale!r} must be 2 numbers ordered [y, x]"
                )
            )
    elif lvl.derived_from is not None:
        out.append(Finding(f"{here}/transform", "transform lacks scale; write [s, s] (per step)"))
    return scale_v, out


def _derivation(
    lvl: _Level, ctx: _Layout, src: _Level | None, scale: tuple[float, ...] | None, here: str
) -> list[Finding]:
    """``derived_from`` names an earlier asset; only the base has none (and scale 1)."""
    out = []
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
    if lvl.derived_from is None and lvl is not ctx.base:
        out.append(Finding(here, "level has no derived_from; each coarser level names its source"))
    if lvl is ctx.base and scale is not None and scale != (1.0, 1.0):
        out.append(
            Finding(
                f"{here}/transform/scale",
                f"base level scale {fmt_values(scale)} must be [1.0, 1.0]",
            )
        )
    return out


def _scale_ratio(
    lvl: _Level, ctx: _Layout, src: _Level, scale: tuple[float, ...], here: str
) -> list[Finding]:
    """The relative scale is the pixel-size ratio to the source level."""
    t, src_t = ctx.transform_of(lvl), ctx.transform_of(src)
    if t is None or src_t is None or not (src_t[0] and src_t[4]):
        return []
    ratio = (t[4] / src_t[4], t[0] / src_t[0])
    if all(is_close(s, r) for s, r in zip(scale, ratio, strict=True)):
        return []
    return [
        Finding(
            f"{here}/transform/scale",
            f"scale {fmt_values(scale)} is not the pixel-size ratio to "
            f"{src.asset!r}: expected {fmt_values(ratio)} ([e/e_src, a/a_src])",
        )
    ]


def _against_base(
    t: tuple[float, ...],
    shape: tuple[int, int] | None,
    t0: tuple[float, ...],
    s0: tuple[int, int] | None,
    here: str,
) -> list[Finding]:
    """Same origin and pixel-size sign as the base; a whole cumulative factor; its shape."""
    out = []
    size = _pixel(t0)
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
                "pixel size sign differs from the base level's (zarr-layer ignores such a level)",
            )
        )
    if not (t0[0] and t0[4]):
        return out
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
    elif shape is not None and s0 is not None and shape != (s0[0] // ky, s0[1] // kx):
        out.append(
            Finding(
                f"{here}/spatial:shape",
                f"spatial:shape {list(shape)} is inconsistent with the "
                f"cumulative factor ({ky}, {kx}) and base shape {list(s0)}: "
                f"expected {[s0[0] // ky, s0[1] // kx]} (floor division)",
            )
        )
    return out


def _against_source_shape(
    shape: tuple[int, int] | None, src: _Level, scale: tuple[float, ...], here: str
) -> list[Finding]:
    """Without transforms to compare, the shape follows the source's shape and the scale."""
    sy, sx = as_int(scale[0]), as_int(scale[1])
    if shape is None or src.shape is None or sy is None or sx is None:
        return []
    expected = (src.shape[0] // sy, src.shape[1] // sx)
    if shape == expected:
        return []
    return [
        Finding(
            f"{here}/spatial:shape",
            f"spatial:shape {list(shape)} is inconsistent with scale "
            f"{fmt_values(scale)} from {src.asset!r} {list(src.shape)}: "
            f"expected {list(expected)}",
        )
    ]


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
