"""The one URL parser: what each kind of store string names."""

from __future__ import annotations

from pathlib import Path

import pytest
from topozarr_engine.storage import is_s3_url, parse_url


@pytest.mark.parametrize(
    ("text", "bucket", "prefix"),
    [
        ("s3://bucket/a/b.zarr", "bucket", "a/b.zarr"),
        ("S3://Bucket/a/", "Bucket", "a"),
        ("s3a://bucket", "bucket", ""),
        ("s3://bucket//deep/", "bucket", "deep"),
    ],
)
def test_s3_urls(text: str, bucket: str, prefix: str) -> None:
    url = parse_url(text)
    assert (url.scheme, url.bucket, url.path) == ("s3", bucket, prefix)
    assert url.is_s3 and url.is_object_store and not url.is_local
    assert is_s3_url(text)
    # The reference: the bucket and key split as S3 tools split them.
    rest = text.split("://", 1)[1]
    assert url.bucket == rest.split("/", 1)[0]


def test_s3_url_without_a_bucket_is_parsed_with_an_empty_one() -> None:
    assert parse_url("s3://").bucket == ""


@pytest.mark.parametrize("text", ["out.zarr", "/abs/out.zarr", "file:///abs/out.zarr", "a b"])
def test_local_paths(text: str) -> None:
    url = parse_url(text)
    assert url.is_local and not url.is_s3 and not url.is_object_store
    assert url.local_path() == Path(text.removeprefix("file://")).absolute()
    assert not is_s3_url(text)


@pytest.mark.parametrize("text", ["memory://x", "gs://bucket/p", "HTTPS://host/p"])
def test_other_urls_keep_their_scheme(text: str) -> None:
    url = parse_url(text)
    assert url.scheme == text.split("://", 1)[0].lower()
    assert not url.is_local and not url.is_s3
    with pytest.raises(ValueError, match="not a local path"):
        url.local_path()


def test_only_strings_are_s3_urls() -> None:
    assert not is_s3_url(Path("s3://bucket/p"))
    assert not is_s3_url(None)
