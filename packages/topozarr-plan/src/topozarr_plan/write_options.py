"""The options of ``Pyramid.write``, as one checked value the write passes around."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from topozarr_engine import DEFAULT_MAX_REGION_BYTES
from topozarr_engine.storage import StorageTarget

from topozarr_plan.errors import PlanError

__all__ = ["MODES", "WriteOptions"]

MODES = ("w", "w-", "a", "r+")


@dataclass(frozen=True)
class WriteOptions:
    """Every option of :meth:`~topozarr_plan.pyramid.Pyramid.write` (documented there)."""

    mode: str = "w"
    max_workers: int | None = None
    levels: list[int] | None = None
    max_region_bytes: int = DEFAULT_MAX_REGION_BYTES
    progress: bool = False
    stats: bool = False
    keep_levels_in_memory: bool | None = None
    io: str = "python"
    resume: bool = False
    append_dim: str | None = None
    client: Any = None

    def check(self) -> None:
        """Refuse a bad value or combination, naming it, before anything is opened."""
        if self.io not in ("python", "rust"):
            raise PlanError(f"io must be 'python' or 'rust', got {self.io!r}")
        if self.mode not in MODES:
            raise PlanError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.resume and self.mode not in ("w", "a"):
            raise PlanError(
                f"resume=True continues a write and cannot be combined with mode={self.mode!r}"
            )
        if self.max_workers is not None and self.max_workers < 1:
            raise PlanError(f"max_workers must be >= 1, got {self.max_workers}")
        if self.max_region_bytes < 1:
            raise PlanError(f"max_region_bytes must be positive, got {self.max_region_bytes}")
        if self.append_dim is not None and (self.levels is not None or self.mode not in ("w", "a")):
            raise PlanError(
                "append_dim writes the new slices of every level into an existing pyramid: it "
                f"cannot be combined with levels={self.levels} or mode={self.mode!r}"
            )


@dataclass
class WriteRun:
    """One write in progress: the plan, the store, and what its options resolved to.

    Attributes
    ----------
    target
        The resolved store (:func:`topozarr_engine.storage.resolve_target`).
    run
        Runs one pass: :func:`topozarr_plan.passes.run_pass`, or the cluster's stand-in.
    workers
        Threads (or, on a cluster, the cluster's threads) doing the work.
    """

    pyramid: Any
    target: StorageTarget
    options: WriteOptions
    spatial: list[str]
    requested: list[int]
    native: Any
    make_bar: Any
    run: Any
    workers: int = 1

    @property
    def zstore(self) -> Any:
        """The zarr store written to (``target.store``)."""
        return self.target.store

    @property
    def where(self) -> str:
        """The target as a path or URL for messages (never a secret)."""
        return self.target.description
