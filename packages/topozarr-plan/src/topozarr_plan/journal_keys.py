"""Raw key I/O for the write journal: through zarr's store API, or straight to a local disk.

A write records one small object per tile from the worker threads. Through zarr's store API
each record is a hop to zarr's event loop and another to a file thread; on a local disk the
journal writes the file itself (a temporary file renamed into place: a record is whole or
absent), which costs a fraction of that. Object stores and every other store go through zarr
(an S3 PUT is atomic).

On a local disk the tile records of a pass go further: they are lines appended to one log file
(:class:`LineLog`) instead of one new file each. Creating a file is the expensive part of a
small write (an inode, a directory entry, a rename); a line appended to an open file is one
system call.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["LineLog", "LocalKeys", "ZarrKeys", "complete_lines", "keys_for"]


def _sync(coro: Any) -> Any:
    from zarr.core.sync import sync

    return sync(coro)


class ZarrKeys:
    """Keys of any zarr-python store."""

    def __init__(self, zstore: Any) -> None:
        self.zstore = zstore

    def get(self, key: str) -> bytes | None:
        from zarr.core.buffer import default_buffer_prototype

        buf = _sync(self.zstore.get(key, prototype=default_buffer_prototype()))
        return None if buf is None else buf.to_bytes()

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        from zarr.core.buffer import default_buffer_prototype

        proto = default_buffer_prototype()

        async def fetch() -> list[Any]:
            return await asyncio.gather(*(self.zstore.get(k, prototype=proto) for k in keys))

        return [None if b is None else b.to_bytes() for b in (_sync(fetch()) if keys else [])]

    def put(self, key: str, data: bytes) -> None:
        _sync(self.zstore.set(key, _buffer(data)))

    def put_if_absent(self, key: str, data: bytes) -> None:
        """Create ``key`` unless it exists (conditional create); never overwrites."""
        _sync(self.zstore.set_if_not_exists(key, _buffer(data)))

    def list(self, prefix: str) -> list[str]:
        async def collect() -> list[str]:
            return [k async for k in self.zstore.list_prefix(prefix)]

        return list(_sync(collect()))

    def delete(self, keys: Sequence[str]) -> None:
        async def drop() -> None:
            await asyncio.gather(*(self.zstore.delete(k) for k in keys))

        if keys:
            _sync(drop())

    def line_log(self, key: str) -> None:
        """No append on object stores: each record is an object of its own."""
        return None

    def delete_prefix(self, prefix: str) -> None:
        """Delete every key under ``prefix``, leases last.

        One DELETE per key rather than ``delete_dir``: object stores send that as a bulk POST,
        which object_store does not retry after a dropped connection; a DELETE is idempotent
        and retried. The leases go last, so a journal cut short still holds its lease.
        """
        keys = self.list(prefix)
        self.delete([k for k in keys if "/lease." not in k])
        self.delete([k for k in keys if "/lease." in k])


def _buffer(data: bytes) -> Any:
    from zarr.core.buffer import default_buffer_prototype

    return default_buffer_prototype().buffer.from_bytes(data)


class LocalKeys:
    """Keys as files under a local directory (the root of a ``LocalStore``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [self.get(k) for k in keys]

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
        with os.fdopen(_open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def put_if_absent(self, key: str, data: bytes) -> None:
        try:
            fd = _open(self._path(key), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return [
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.endswith(".partial")
        ]

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def line_log(self, key: str) -> LineLog:
        """An append-only log of lines at ``key`` (created at its first line)."""
        return LineLog(self._path(key))


class LineLog:
    """Lines appended to one local file, each by a single ``write`` to an ``O_APPEND`` file.

    A line is written whole or, if the process is killed inside the call, cut short at the end
    of the file, where nothing follows it: a reader drops a last line without its newline. One
    writer process per file (the journal names each log after its write's token), so a resume
    never appends after a torn line; a lock keeps this process's threads' lines apart even if
    the kernel returns a short write.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def append(self, line: bytes) -> None:
        data = memoryview(line + b"\n")
        with self._lock:
            if self._fd is None:
                self._fd = _open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            while data:
                data = data[os.write(self._fd, data) :]

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _open(path: Path, flags: int) -> int:
    """``os.open``, making the directory only when it is missing: a write records every tile,
    and a mkdir of an existing directory costs two system calls and an exception each time."""
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags, 0o644)


def complete_lines(raw: bytes) -> list[bytes]:
    """The lines of a log that were written whole (ended by a newline)."""
    return raw.split(b"\n")[:-1]


def keys_for(zstore: Any) -> ZarrKeys | LocalKeys:
    """Direct file I/O for zarr's ``LocalStore``, zarr's store API for every other store."""
    from zarr.storage import LocalStore

    if isinstance(zstore, LocalStore) and not zstore.read_only:
        return LocalKeys(Path(zstore.root))
    return ZarrKeys(zstore)
