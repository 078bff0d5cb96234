"""Publication: the root attributes and consolidated metadata that make a pyramid visible.

A pyramid is published only when every level is complete (see :mod:`topozarr_plan.writer`);
a rewrite withdraws what it is about to change first, so no reader ever finds root metadata
pointing at levels that are being rewritten.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import zarr

if TYPE_CHECKING:
    from topozarr_plan.pyramid import Pyramid

__all__ = ["consolidate", "is_published", "publish", "withdraw"]


def is_published(group: zarr.Group | None, pyramid: Pyramid) -> bool:
    """True when the store holds this plan's pyramid, published (so every level is complete)."""
    if group is None:
        return False
    return bool(group.attrs.get("multiscales") == pyramid.attrs.get("multiscales"))


def withdraw(zstore: Any, pyramid: Pyramid) -> None:
    """Remove what this pyramid publishes (root attrs, consolidated metadata) before writing."""
    root = zarr.open_group(zstore, mode="r+", zarr_format=3, use_consolidated=False)
    published = set(pyramid.attrs)
    attrs = root.attrs.asdict()
    if published & set(attrs) or root.metadata.consolidated_metadata is not None:
        root.attrs.put({k: v for k, v in attrs.items() if k not in published})


def publish(zstore: Any, pyramid: Pyramid) -> None:
    """Write the plan's root attributes, then the consolidated metadata."""
    current = zarr.open_group(zstore, mode="r+", zarr_format=3, use_consolidated=False)
    current.attrs.put({**current.attrs.asdict(), **pyramid.attrs})
    consolidate(zstore)


def consolidate(zstore: Any) -> None:
    """Rewrite the root's consolidated metadata (when the store supports it)."""
    current = zarr.open_group(zstore, mode="r", zarr_format=3, use_consolidated=False)
    if getattr(current.store, "supports_consolidated_metadata", False):
        with warnings.catch_warnings():
            # zarr warns that consolidated metadata is not in the v3 spec: we know, and
            # publish it anyway because xarray and zarr-python readers use it.
            warnings.simplefilter("ignore", category=UserWarning)
            zarr.consolidate_metadata(zstore, zarr_format=3)
