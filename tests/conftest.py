"""Root test fixtures: the SeaweedFS S3 server of ``s3server.py`` for the ``s3``-marked tests.

``s3_server`` (session scope) starts it once (a start failure is a test error, never a skip);
``s3_prefix`` gives each test a key prefix of its own.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests run with --import-mode=importlib: put this directory on sys.path for ``s3server``.
sys.path.insert(0, str(Path(__file__).parent))

from s3server import S3Server, start_s3_server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A running SeaweedFS S3 gateway with one bucket, for the whole test session."""
    server, cluster = start_s3_server(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        cluster.stop()


@pytest.fixture
def s3_prefix(s3_server: S3Server) -> str:
    """A key prefix no other test uses (no trailing slash)."""
    return f"t-{uuid.uuid4().hex[:12]}"
