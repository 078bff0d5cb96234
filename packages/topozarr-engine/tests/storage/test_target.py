"""resolve_target: what each store argument becomes, its capabilities and its pickling."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import zarr
from topozarr_engine.storage import StorageTarget, resolve_target
from zarr.storage import LocalStore, MemoryStore, ObjectStore

obstore = pytest.importorskip("obstore")
from obstore.store import LocalStore as ObLocalStore  # noqa: E402
from obstore.store import MemoryStore as ObMemoryStore  # noqa: E402
from obstore.store import S3Store  # noqa: E402

SECRET = "target-S3cr3t-never-pickled"


class FakeIcechunkStore:
    """Stands in for icechunk's session store: what the rules look at is the module."""

    __module__ = "icechunk.store"


def _capabilities(target: StorageTarget) -> tuple[bool, bool, bool, bool]:
    return (
        target.concurrent_safe,
        target.conditional_create,
        target.native_capable,
        target.portable,
    )


def test_capabilities_of_each_kind_of_store(tmp_path: Path, aws: pytest.MonkeyPatch) -> None:
    local = resolve_target(str(tmp_path / "a.zarr"))
    assert (local.kind, _capabilities(local)) == ("local", (True, True, True, True))
    assert local.description == str(tmp_path / "a.zarr")
    memory = resolve_target(MemoryStore())
    assert (memory.kind, _capabilities(memory)) == ("store", (True, True, False, False))
    assert memory.description == "MemoryStore"
    s3 = resolve_target("s3://bucket/p", check=False)
    assert (s3.kind, _capabilities(s3)) == ("s3", (True, True, True, True))
    oblocal = resolve_target(ObjectStore(ObLocalStore(tmp_path)))
    assert (oblocal.kind, _capabilities(oblocal)) == ("local", (True, True, True, True))
    obmemory = resolve_target(ObjectStore(ObMemoryStore()))
    assert _capabilities(obmemory) == (True, True, False, False)
    ice = resolve_target(FakeIcechunkStore())
    assert (ice.kind, _capabilities(ice)) == ("store", (False, False, False, False))
    url = resolve_target("memory://x")
    assert (url.kind, url.store, url.portable) == ("url", "memory://x", False)


def test_the_native_writer_of_an_unsupported_store_is_refused() -> None:
    with pytest.raises(ValueError, match=r"io='rust' cannot write to MemoryStore; it supports"):
        resolve_target(MemoryStore()).native_writer()


@pytest.mark.parametrize(
    "store",
    [MemoryStore(), ObjectStore(ObMemoryStore()), FakeIcechunkStore(), "memory://x"],
    ids=["memory", "obstore-memory", "icechunk", "other-url"],
)
def test_in_process_stores_refuse_pickling_and_name_the_fix(store: object) -> None:
    with pytest.raises(TypeError, match=r"only exists in this process .*; pass a local path"):
        pickle.dumps(resolve_target(store))


def test_local_targets_reopen_the_same_directory(tmp_path: Path) -> None:
    for value in (tmp_path / "a.zarr", str(tmp_path / "a.zarr"), LocalStore(tmp_path / "a.zarr")):
        target = resolve_target(value)
        zarr.create_array(
            target.store, name="v", shape=(3,), dtype="int8", fill_value=7, overwrite=True
        )
        copy = pickle.loads(pickle.dumps(target))
        assert copy.kind == "local" and copy.description == target.description
        assert Path(copy.store.root) == (tmp_path / "a.zarr").resolve()
        assert zarr.open_array(copy.store, path="v", mode="r")[...].tolist() == [7, 7, 7]
    oblocal = resolve_target(ObjectStore(ObLocalStore(tmp_path)))
    copy = pickle.loads(pickle.dumps(oblocal))
    assert isinstance(copy.store, ObjectStore) and isinstance(copy.store.store, ObLocalStore)
    assert Path(copy.store.store.prefix) == tmp_path.resolve()


def test_an_s3_url_pickles_without_secrets_and_reopens_from_the_environment(
    aws: pytest.MonkeyPatch,
) -> None:
    target = resolve_target("s3://bucket/some/prefix", check=False)
    payload = pickle.dumps(target)
    assert SECRET.encode() not in payload and b"AKIDTEST" not in payload
    aws.setenv("AWS_SECRET_ACCESS_KEY", "the-workers-own-secret")
    copy = pickle.loads(payload)
    inner = copy.store.store
    assert (inner.config["bucket"], inner.prefix) == ("bucket", "some/prefix")
    assert inner.config["secret_access_key"] == "the-workers-own-secret"
    assert copy.kind == "s3" and copy.description == "s3://bucket/some/prefix"


def test_explicit_credentials_of_an_s3_store_are_not_pickled(aws: pytest.MonkeyPatch) -> None:
    store = S3Store(
        "bucket",
        prefix="deep/prefix",
        endpoint="http://127.0.0.1:9000",
        region="us-east-1",
        access_key_id="AKEXPLICIT",
        secret_access_key=SECRET + "-explicit",
        client_options={"allow_http": True},
    )
    target = resolve_target(ObjectStore(store), check=False)
    payload = pickle.dumps(target)
    assert SECRET.encode() not in payload and b"AKEXPLICIT" not in payload
    copy = pickle.loads(payload)
    inner = copy.store.store
    assert isinstance(inner, S3Store) and inner.prefix == "deep/prefix"
    assert inner.config["endpoint"] == "http://127.0.0.1:9000"  # the rest of the config stays
    assert "secret_access_key" not in inner.config and "access_key_id" not in inner.config
    assert inner.client_options == {"allow_http": "true"}


def test_a_credential_provider_is_not_pickled(aws: pytest.MonkeyPatch) -> None:
    def provider() -> dict[str, str]:
        return {"access_key_id": "a", "secret_access_key": "b", "token": None, "expires_at": None}

    store = S3Store("bucket", credential_provider=provider)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="only exists in this process"):
        pickle.dumps(resolve_target(ObjectStore(store), check=False))
