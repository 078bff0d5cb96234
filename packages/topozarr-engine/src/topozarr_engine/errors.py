"""Exceptions raised by topozarr-engine (one base class, so callers can catch them all)."""

from __future__ import annotations

from typing import Any

from topozarr_metadata.errors import TopozarrError

__all__ = ["KernelVersionError", "RegionError", "TopozarrEngineError"]


class TopozarrEngineError(TopozarrError):
    """Base class of every error raised by topozarr-engine itself."""


class KernelVersionError(TopozarrEngineError, ImportError):
    """The installed topozarr-core kernel is not the version this engine was released with."""


class RegionError(TopozarrEngineError):
    """A worker failed while reading, reducing or writing one region.

    The original exception is chained as ``__cause__``; the message names the region and,
    when the caller knows them, the variable and pyramid level.

    Parameters
    ----------
    region
        The region (level coordinates of the array being written) that failed.
    cause
        The exception raised by the worker.
    variable, level
        Optional context added by higher layers (see :meth:`with_context`).
    """

    def __init__(
        self,
        region: Any,
        cause: BaseException,
        *,
        variable: str | None = None,
        level: int | None = None,
        stage: str | None = None,
    ) -> None:
        self.region = region
        self.cause = cause
        self.variable = variable
        self.level = level
        self.stage = stage
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.variable is not None:
            where.append(f"variable {self.variable!r}")
        if self.level is not None:
            where.append(f"level {self.level}")
        where.append(f"region {self.region}")
        stage = f" ({self.stage})" if self.stage else ""
        return (
            f"failed writing {', '.join(where)}{stage}: {type(self.cause).__name__}: {self.cause}"
        )

    def with_context(self, *, variable: str | None = None, level: int | None = None) -> RegionError:
        """Return a copy that also names ``variable`` and ``level`` (existing values win)."""
        err = RegionError(
            self.region,
            self.cause,
            variable=self.variable if self.variable is not None else variable,
            level=self.level if self.level is not None else level,
            stage=self.stage,
        )
        err.__cause__ = self.cause
        return err
