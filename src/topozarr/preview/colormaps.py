"""Named colormaps for the preview, as 256 ``#rrggbb`` steps (what zarr-layer takes).

Each map is a few anchor colours interpolated linearly in sRGB; a ``_r`` suffix reverses it.
The anchors sample the published matplotlib / ColorBrewer maps of the same names.
"""

from __future__ import annotations

import numpy as np

DEFAULT_COLORMAP = "viridis"
STEPS = 256

_ANCHORS: dict[str, tuple[str, ...]] = {
    "viridis": (
        "#440154", "#482878", "#3e4989", "#31688e", "#26828e",
        "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725",
    ),
    "magma": (
        "#000004", "#1c1044", "#4f127b", "#812581", "#b5367a",
        "#e55964", "#fb8761", "#fec287", "#fcfdbf",
    ),
    "plasma": (
        "#0d0887", "#5302a3", "#8b0aa5", "#b83289", "#db5c68",
        "#f48849", "#febc2a", "#f0f921",
    ),
    "gray": ("#000000", "#ffffff"),
    "greys": ("#ffffff", "#000000"),
    "rdbu": (
        "#67001f", "#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#f7f7f7",
        "#d1e5f0", "#92c5de", "#4393c3", "#2166ac", "#053061",
    ),
    "terrain": ("#333399", "#0294fa", "#01cc66", "#ffff99", "#805c54", "#ffffff"),
}  # fmt: skip


def colormap_names() -> list[str]:
    """The names :func:`colormap` accepts (each also with ``_r``)."""
    return sorted(_ANCHORS)


def known_colormap(name: str) -> bool:
    """True when :func:`colormap` can build ``name``."""
    return name.lower().removesuffix("_r") in _ANCHORS


def colormap(name: str) -> list[str]:
    """The 256 ``#rrggbb`` colours of colormap ``name`` (case-insensitive, ``_r`` reverses).

    Raises
    ------
    ValueError
        If the name is unknown; the message lists the known ones.
    """
    base = name.lower().removesuffix("_r")
    if base not in _ANCHORS:
        raise ValueError(f"unknown colormap {name!r}; use one of {', '.join(colormap_names())}")
    rgb = colormap_rgb(base)
    if name.lower().endswith("_r"):
        rgb = rgb[::-1]
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb.tolist()]


def colormap_rgb(name: str) -> np.ndarray:
    """``(256, 3)`` uint8 RGB steps of the (non-reversed) map ``name``."""
    anchors = np.array(
        [[int(h[i : i + 2], 16) for i in (1, 3, 5)] for h in _ANCHORS[name]], dtype=np.float64
    )
    where = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, STEPS)
    channels = [np.interp(t, where, anchors[:, c]) for c in range(3)]
    return np.rint(np.stack(channels, axis=1)).astype(np.uint8)
