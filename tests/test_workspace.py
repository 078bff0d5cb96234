"""The workspace members install, import, and report the version of their installed distribution."""

import importlib
import importlib.metadata

import pytest

MEMBERS = ["topozarr", "topozarr-core", "topozarr-engine", "topozarr-metadata", "topozarr-plan"]


@pytest.mark.parametrize("dist", MEMBERS)
def test_member_version_matches_distribution(dist: str) -> None:
    module = importlib.import_module(dist.replace("-", "_"))
    assert module.__version__ == importlib.metadata.version(dist)


def test_facade_pins_each_member_exactly() -> None:
    requires = importlib.metadata.requires("topozarr") or []
    for member in MEMBERS[1:]:
        pin = f"{member}=={importlib.metadata.version(member)}"
        assert any(r.replace(" ", "").startswith(pin) for r in requires), (member, requires)
