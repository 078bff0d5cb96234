"""``PassLog`` with ``io="rust"``: a tile's record waits for the uploads its task issued, and a
task that issued none (shards streamed to a local directory) records at once."""

from __future__ import annotations

import json
import threading
from typing import Any

from topozarr_plan.journal import PassLog


class Keys:
    """Stands for the WriteJournal: the records put, by name."""

    token = "t"

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}

    def put(self, name: str, data: bytes) -> None:
        self.stored[name] = data

    def line_log(self, name: str) -> None:
        return None  # records as objects of their own, as on an object store


class Group:
    """An upload group whose uploads finish when ``done`` is set."""

    def __init__(self) -> None:
        self.done = threading.Event()

    def wait(self) -> None:
        assert self.done.wait(30)


class Native:
    """Stands for the NativeWriter: hands out the thread's upload group once."""

    def __init__(self, group: Any) -> None:
        self.group = group

    def take_group(self) -> Any:
        group, self.group = self.group, None
        return group


def test_a_task_without_uploads_records_at_once():
    keys = Keys()
    log = PassLog(keys, "tiles/p0/v0/", Native(None))  # type: ignore[arg-type]
    log.record((1, 2), [(1, (0, 1))], replayed=False)
    assert list(keys.stored) == ["tiles/p0/v0/1.2"]  # before close(): no committer between
    assert json.loads(keys.stored["tiles/p0/v0/1.2"]) == {"flushed": [[1, [0, 1]]]}
    log.close()


def test_a_task_with_uploads_records_once_they_are_stored():
    keys, group = Keys(), Group()
    log = PassLog(keys, "tiles/p0/v0/", Native(group))  # type: ignore[arg-type]
    log.record((0, 0), [], replayed=False)
    assert not keys.stored  # its uploads are still in flight
    group.done.set()
    log.close()
    assert list(keys.stored) == ["tiles/p0/v0/0.0"]
