"""Fixtures shared by the storage layer's tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> pytest.MonkeyPatch:
    """A clean AWS_* environment pointing at an https endpoint, whose secret key is the test
    module's ``SECRET`` (each module checks that its own secret never leaks)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", request.module.SECRET)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.example.invalid")
    return monkeypatch
