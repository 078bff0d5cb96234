"""Exceptions raised by the pyramid plan."""

from __future__ import annotations

from topozarr_metadata.errors import TopozarrError

__all__ = ["PlanError"]


class PlanError(TopozarrError, ValueError):
    """A dataset or option that a pyramid write would trip on.

    Subclasses :class:`ValueError` (the documented exception of ``create_pyramid``) so
    callers can catch either. Every message names the offending value and how to fix it.
    """
