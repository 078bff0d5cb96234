"""Display hints for zarr-layer, stored under the root attribute ``"zarr-layer"``.

zarr-layer itself does not read this key (colormap and clim are constructor
options there); it records what the producer suggests, so that an application
building the layer can pass them on. Shape of the attribute::

    {"zarr-layer": {"elevation": {"clim": [0.0, 4000.0], "colormap": "viridis"}}}

Unset fields are omitted.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["HINTS_KEY", "ZarrLayerVarConfig", "layer_hints_attrs", "parse_layer_hints"]

HINTS_KEY = "zarr-layer"
"""Root attribute that carries the display hints."""


def _number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class ZarrLayerVarConfig:
    """Suggested zarr-layer display settings for one variable.

    Parameters
    ----------
    clim
        ``(low, high)`` colour limits with ``low < high``, or ``None``.
    colormap
        A colormap name understood by the viewer (e.g. ``"viridis"``), or ``None``.

    Raises
    ------
    ValueError
        If ``clim`` is not two finite numbers with ``low < high`` or ``colormap`` is
        not a non-empty string.
    """

    clim: tuple[float, float] | None = None
    colormap: str | None = None

    def __post_init__(self) -> None:
        clim: Any = self.clim
        if clim is not None:
            if isinstance(clim, str | bytes) or not hasattr(clim, "__len__") or len(clim) != 2:
                raise ValueError(f"clim must be a pair (low, high) or None, got {clim!r}")
            lo, hi = clim
            if not (_number(lo) and _number(hi)):
                raise ValueError(f"clim must hold two finite numbers (low, high), got {clim!r}")
            if not lo < hi:
                raise ValueError(
                    f"clim low must be below high, got {clim!r}; swap them or widen the range"
                )
            object.__setattr__(self, "clim", (float(lo), float(hi)))
        if self.colormap is not None and (not isinstance(self.colormap, str) or not self.colormap):
            raise ValueError(
                f"colormap must be a non-empty name such as 'viridis' or None, got {self.colormap!r}"
            )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict of the set fields (``clim`` as a list of floats)."""
        out: dict[str, Any] = {}
        if self.clim is not None:
            out["clim"] = [self.clim[0], self.clim[1]]
        if self.colormap is not None:
            out["colormap"] = self.colormap
        return out


def layer_hints_attrs(hints: Mapping[str, ZarrLayerVarConfig]) -> dict[str, Any]:
    """Build the ``{"zarr-layer": {...}}`` attribute from per-variable configs.

    Parameters
    ----------
    hints
        Variable name -> :class:`ZarrLayerVarConfig`.

    Returns
    -------
    dict
        ``{"zarr-layer": {name: {"clim": [lo, hi], "colormap": str}}}`` with unset
        fields omitted; merge it into the root attributes.

    Raises
    ------
    ValueError
        If a key is not a non-empty string or a value is not a ZarrLayerVarConfig.
    """
    if not isinstance(hints, Mapping):
        raise ValueError(
            f"layer hints must be a mapping of variable name -> ZarrLayerVarConfig, got {hints!r}"
        )
    body: dict[str, Any] = {}
    for name, config in hints.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"layer hint keys must be variable names (strings), got {name!r}")
        if not isinstance(config, ZarrLayerVarConfig):
            raise ValueError(
                f"layer hint for {name!r} must be a ZarrLayerVarConfig(clim=..., colormap=...), "
                f"got {config!r}"
            )
        body[name] = config.to_json()
    return {HINTS_KEY: body}


def parse_layer_hints(value: object) -> dict[str, ZarrLayerVarConfig]:
    """Parse the value of the ``"zarr-layer"`` attribute.

    Raises
    ------
    ValueError
        If the value is not ``{name: {"clim": [lo, hi], "colormap": str}}``-shaped.
    """
    if not isinstance(value, Mapping):
        raise ValueError(f"'{HINTS_KEY}' must be an object of per-variable hints, got {value!r}")
    out: dict[str, ZarrLayerVarConfig] = {}
    for name, entry in value.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"'{HINTS_KEY}'.{name} must be an object, got {entry!r}")
        clim = entry.get("clim")
        colormap = entry.get("colormap")
        if clim is not None:
            if not isinstance(clim, list | tuple):
                raise ValueError(f"'{HINTS_KEY}'.{name}.clim must be [low, high], got {clim!r}")
            clim = tuple(clim)
        out[str(name)] = ZarrLayerVarConfig(clim=clim, colormap=colormap)
    return out
