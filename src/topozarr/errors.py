"""Exceptions of the topozarr facade and CLI."""

from __future__ import annotations

from topozarr_metadata.errors import TopozarrError

__all__ = ["TopozarrError", "UsageError", "WriteStopped"]


class UsageError(TopozarrError, ValueError):
    """Bad input from the user (a path, a flag, a variable name): printed as one line by the CLI."""


class WriteStopped(TopozarrError, RuntimeError):
    """A write that stopped after it began: the store is unpublished and resumable."""
