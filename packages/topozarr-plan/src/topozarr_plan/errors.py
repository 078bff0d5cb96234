"""Exceptions raised by the pyramid plan."""

from __future__ import annotations

from topozarr_metadata.errors import TopozarrError

__all__ = ["PlanError", "StoreError"]


class PlanError(TopozarrError, ValueError):
    """A dataset or option that a pyramid write would trip on.

    Subclasses :class:`ValueError` (the documented exception of ``create_pyramid``) so
    callers can catch either. Every message names the offending value and how to fix it.
    """


class StoreError(TopozarrError, OSError):
    """A store target that cannot be reached or used: an unreachable endpoint, rejected
    credentials, a missing bucket, a denied request.

    The message names the location (``s3://bucket/key``), the request and the fix; it never
    holds a secret (secret values are masked and obstore's raw exception is not chained).
    """
