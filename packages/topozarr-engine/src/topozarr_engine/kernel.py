"""The compiled kernel (topozarr-core), re-exported behind a version check.

Version skew between the kernel wheel and the Python layers is a known failure mode (a method
accepted by Python but rejected by an older kernel halfway through a write). The engine pins
``topozarr-core`` exactly; this module checks at import time that the installed kernel is that
version and otherwise fails with a message telling the user how to fix the environment, before
any byte is written.
"""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any

import topozarr_core
from topozarr_core import (
    DTYPES,
    MAX_NDIM,
    METHODS,
    NativeArray,
    NativeStore,
    ShardEncoder,
    UploadGroup,
    block_reduce,
    method_table,
    scrub_secrets,
)

from topozarr_engine.errors import KernelVersionError

__all__ = [
    "DTYPES",
    "KERNEL_VERSION",
    "MAX_NDIM",
    "METHODS",
    "METHOD_TABLE",
    "Accumulator",
    "ChunkFile",
    "NativeArray",
    "NativeStore",
    "ShardBuilder",
    "ShardEncoder",
    "SourceArray",
    "UploadGroup",
    "block_reduce",
    "check_features",
    "method_row",
    "pyramid_tile",
    "required_kernel_version",
    "scrub_secrets",
]

#: Version of the installed topozarr-core kernel.
KERNEL_VERSION: str = topozarr_core.__version__

#: The kernel's method table by name (see ``topozarr_core.method_table``): output dtype and
#: accumulator bytes per cell for each source dtype, empty-window value, decomposability.
METHOD_TABLE: dict[str, Any] = {row["name"]: row for row in method_table()}


def method_row(method: str) -> Any:
    """The kernel's table row of ``method``; ``ValueError`` naming the valid ones otherwise."""
    try:
        return METHOD_TABLE[method]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown method {method!r}; expected one of {', '.join(METHODS)}"
        ) from None


def required_kernel_version() -> str | None:
    """Return the exact topozarr-core version topozarr-engine was released with.

    Read from the installed distribution's metadata (``Requires-Dist: topozarr-core==X``), so it
    can never drift from ``pyproject.toml``. ``None`` when the metadata is unavailable (e.g. the
    sources are imported without being installed) or the pin is not exact.
    """
    try:
        requires = metadata.requires("topozarr-engine") or []
    except metadata.PackageNotFoundError:
        return None
    for req in requires:
        match = re.match(r"^\s*topozarr[-_.]core\s*==\s*([^\s;,]+)\s*(;.*)?$", req, re.IGNORECASE)
        if match:
            return match.group(1)
    return None


def _check_version() -> None:
    required = required_kernel_version()
    if required is not None and required != KERNEL_VERSION:
        raise KernelVersionError(
            f"topozarr-engine requires topozarr-core=={required}, but topozarr-core "
            f"{KERNEL_VERSION} is installed ({topozarr_core.__file__}). The kernel and the "
            "Python layers are released together and must match exactly. Reinstall them "
            f"together, e.g. `pip install --force-reinstall topozarr-core=={required}` or "
            "`pip install -U topozarr` (in a source checkout: `uv sync` or "
            "`maturin develop -m packages/topozarr-core/crates/bindings/Cargo.toml`)."
        )


#: Kernel classes (and methods, dotted) newer than some kernels that carry the same version.
_REQUIRED_FEATURES = (
    "ShardBuilder",
    "SourceArray",
    "Accumulator.export_states",
    "ChunkFile",
    "ShardBuilder.append_chunk",
)


def _has(core: Any, feature: str) -> bool:
    obj = core
    for part in feature.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return False
    return True


def check_features(core: Any = topozarr_core) -> None:
    """Fail with :class:`KernelVersionError` when kernel ``core`` lacks what this engine calls.

    A kernel built from older sources can carry the pinned version number (a source checkout
    whose extension was not rebuilt): it would otherwise fail with an ``AttributeError``
    halfway through a write.
    """
    missing = [name for name in _REQUIRED_FEATURES if not _has(core, name)]
    if missing:
        raise KernelVersionError(
            f"the installed topozarr-core {getattr(core, '__version__', '?')} "
            f"({getattr(core, '__file__', '?')}) has no {', '.join(missing)}: it is older than "
            "this topozarr-engine. Reinstall them together, e.g. `pip install -U topozarr` "
            "(in a source checkout: `uv sync` or "
            "`maturin develop -m packages/topozarr-core/crates/bindings/Cargo.toml`)."
        )


_check_version()
check_features()

# The pinned kernel always has the accumulating forms (the exact pin above guarantees it).
pyramid_tile = topozarr_core.pyramid_tile
Accumulator = topozarr_core.Accumulator
ShardBuilder = topozarr_core.ShardBuilder
ChunkFile = topozarr_core.ChunkFile
SourceArray = topozarr_core.SourceArray
