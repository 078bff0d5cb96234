"""Exception and warning classes of topozarr-metadata."""

from __future__ import annotations

__all__ = ["LegacyConventionWarning", "MetadataReadError", "TopozarrError"]


class TopozarrError(Exception):
    """The root of every exception topozarr raises itself, in all of its packages.

    ``except topozarr.TopozarrError`` catches them all. It lives here, in the one member with no
    dependencies, so that every other member can derive from it. Each subclass also keeps the
    built-in base its callers expect (``ValueError`` for bad input, ``OSError`` for storage).
    """


class LegacyConventionWarning(UserWarning):
    """A document was read that uses pre-release (draft) convention metadata.

    Raised through :func:`warnings.warn` by the readers when a ``zarr_conventions``
    entry carries a draft URL (``refs/tags/v1``, ``refs/tags/v0``, the
    ``zarr-experimental/geo-proj`` repository) or a draft name such as ``"proj:"``,
    or when a layout entry uses the obsolete ``group`` key instead of ``asset``.
    The document is still read; rewrite it with the builders to get v0.1 metadata.
    """


class MetadataReadError(TopozarrError, ValueError):
    """Attributes cannot be read as GeoZarr metadata (e.g. no ``multiscales.layout``)."""
