"""The one URL parser of topozarr: what a store string (``s3://``, ``file://``, a path) names.

Every place that asks "is this an S3 URL?" or "which directory is this?" asks here, so a new
scheme is taught in one place (see "Adding a storage backend" in docs/design.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["S3_SCHEMES", "StoreURL", "is_s3_url", "parse_url"]

#: URL schemes read as S3 (``s3a://`` is Hadoop's spelling of the same thing).
S3_SCHEMES = ("s3", "s3a")


@dataclass(frozen=True)
class StoreURL:
    """A parsed store string.

    Attributes
    ----------
    text
        The string as given.
    scheme
        ``"s3"`` (for ``s3://`` and ``s3a://``), ``"file"`` (a ``file://`` URL or a plain
        path) or the lower-cased scheme of any other URL (``"gs"``, ``"memory"``, ...).
    bucket
        The S3 bucket (``""`` if the URL names none); ``""`` for other schemes.
    path
        The S3 prefix without leading or trailing ``/``, the local path as given (without
        ``file://``), or what follows ``://`` for other schemes.
    """

    text: str
    scheme: str
    bucket: str
    path: str

    @property
    def is_s3(self) -> bool:
        return self.scheme == "s3"

    @property
    def is_object_store(self) -> bool:
        """A URL of an object store topozarr opens itself (through obstore)."""
        return self.is_s3

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    def local_path(self) -> Path:
        """The directory a ``file`` URL names, absolute (``ValueError`` for other schemes)."""
        if not self.is_local:
            raise ValueError(f"{self.text!r} is not a local path")
        return Path(self.path).absolute()


def parse_url(text: str) -> StoreURL:
    """Parse a store string; never fails (an unknown scheme is kept for zarr / fsspec)."""
    head, sep, rest = text.partition("://")
    if not sep:
        return StoreURL(text, "file", "", text)
    scheme = head.lower()
    if scheme in S3_SCHEMES:
        bucket, _, prefix = rest.partition("/")
        return StoreURL(text, "s3", bucket, prefix.strip("/"))
    if scheme == "file":
        return StoreURL(text, "file", "", rest)
    return StoreURL(text, scheme, "", rest)


def is_s3_url(target: object) -> bool:
    """True for an ``s3://`` (or ``s3a://``) URL string."""
    return isinstance(target, str) and parse_url(target).is_s3
