"""Access to the installed kernel's capabilities through ``topozarr_engine.kernel``.

The plan never imports ``topozarr_core`` directly (it is the engine's dependency, not ours);
the engine re-exports the kernel entry point and its capability constants. Imported lazily so
that a broken kernel install surfaces as a clear error at ``create_pyramid`` time rather than
at ``import topozarr_plan``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["KernelCaps", "block_reduce_fn", "kernel_caps", "kernel_output_dtype"]


@dataclass(frozen=True)
class KernelCaps:
    """What the installed kernel can do."""

    methods: frozenset[str]
    dtypes: frozenset[np.dtype[Any]]
    max_ndim: int
    version: str


def _module() -> Any:
    try:
        from topozarr_engine import kernel
    except ImportError as exc:  # pragma: no cover - depends on the installed wheel
        raise ImportError(
            "topozarr_engine.kernel could not be imported; the topozarr-core kernel wheel is "
            "missing or broken. Reinstall topozarr (e.g. `pip install --force-reinstall "
            f"topozarr`). Original error: {exc}"
        ) from exc
    return kernel


def kernel_caps() -> KernelCaps:
    """Return the methods, dtypes and ndim limit the installed kernel supports."""
    k = _module()
    return KernelCaps(
        methods=frozenset(str(m) for m in k.METHODS),
        dtypes=frozenset(np.dtype(d) for d in k.DTYPES),
        max_ndim=int(k.MAX_NDIM),
        version=str(k.KERNEL_VERSION),
    )


def block_reduce_fn() -> Callable[..., np.ndarray]:
    """Return the kernel's ``block_reduce(a, stride, method, fill_value=None, skipna=True)``."""
    fn: Callable[..., np.ndarray] = _module().block_reduce
    return fn


def kernel_output_dtype(method: str, dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype the kernel returns for ``method`` over ``dtype`` (its method table)."""
    row = _module().method_row(method)
    return np.dtype(row["output_dtype"].get(dtype.name, dtype.name))
