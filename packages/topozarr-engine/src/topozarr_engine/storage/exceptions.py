"""The storage layer's exception classes (the translator that raises them is ``errors.py``)."""

from __future__ import annotations

from topozarr_metadata.errors import TopozarrError

from topozarr_engine.errors import TopozarrEngineError

__all__ = ["StorageConfigError", "StoreError"]


class StoreError(TopozarrError, OSError):
    """A store target that cannot be reached or used: an unreachable endpoint, rejected
    credentials, a missing bucket, a denied request.

    The message names the location (``s3://bucket/key``), the request and the fix; it never
    holds a secret (secret values are masked and obstore's raw exception is not chained).
    """


class StorageConfigError(TopozarrEngineError, ValueError):
    """A storage setting that cannot be used (e.g. a retry budget that is not a number)."""
