"""Tile records on a local disk: lines appended to one log per write, read back by a resume."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import zarr
from topozarr_plan.journal import JOURNAL_PREFIX, WriteJournal
from topozarr_plan.journal_keys import LineLog, complete_lines


def _journal(root: Path) -> WriteJournal:
    return WriteJournal(zarr.storage.LocalStore(root), {"plan": 1}, "base", str(root))


def test_records_are_lines_of_one_file_and_come_back_as_history(tmp_path: Path):
    log = _journal(tmp_path).pass_log(0, 1)
    log.record((0, 0), [(1, (0, 0))], replayed=False)
    log.record((0, 1), [], replayed=False)
    log.record((0, 0), [(2, (0, 0))], replayed=True)  # a replay adds shards, not a done tile
    log.record((1, 1), [], replayed=True)  # a replay that stored nothing is not recorded
    log.close()
    files = sorted(p for p in (tmp_path / JOURNAL_PREFIX).rglob("*") if p.is_file())
    assert [p.relative_to(tmp_path / JOURNAL_PREFIX).parent.as_posix() for p in files] == [
        "tiles/p0/v1"
    ]
    lines = [json.loads(line) for line in files[0].read_bytes().splitlines()]
    assert [line["tile"] for line in lines] == [[0, 0], [0, 1], [0, 0]]

    history = _journal(tmp_path).pass_log(0, 1).history()  # a resume: another token
    assert history.done == {(0, 0), (0, 1)}
    assert history.flushed == {1: {(0, 0)}, 2: {(0, 0)}}


def test_a_line_cut_short_counts_as_missing(tmp_path: Path):
    log = _journal(tmp_path).pass_log(0, 0)
    log.record((3, 4), [(1, (1, 2))], replayed=False)
    log.close()
    (path,) = (tmp_path / JOURNAL_PREFIX / "tiles/p0/v0").iterdir()
    whole = json.dumps({"tile": [5, 6], "replayed": False, "flushed": [[1, [2, 3]]]})
    with path.open("ab") as f:  # as a kill inside the write of the next line leaves it
        f.write(whole[: len(whole) // 2].encode())
    history = _journal(tmp_path).pass_log(0, 0).history()
    assert history.done == {(3, 4)}
    assert history.flushed == {1: {(1, 2)}}


def test_a_journal_of_record_files_and_a_log_adds_up(tmp_path: Path):
    # An interrupted write through an older writer kept one file per tile; its resume logs lines.
    journal = _journal(tmp_path)
    journal.put("tiles/p0/v0/0.0", json.dumps({"flushed": [[1, [0, 0]]]}).encode())
    journal.put("tiles/p0/v0/0.1.rdeadbeef", json.dumps({"flushed": [[2, [0, 0]]]}).encode())
    log = _journal(tmp_path).pass_log(0, 0)
    log.record((0, 2), [(1, (0, 1))], replayed=False)
    log.close()
    history = _journal(tmp_path).pass_log(0, 0).history()
    assert history.done == {(0, 0), (0, 2)}
    assert history.flushed == {1: {(0, 0), (0, 1)}, 2: {(0, 0)}}


def test_lines_of_many_threads_stay_whole(tmp_path: Path):
    lines = LineLog(tmp_path / "sub" / "log")  # the directory is made at the first line
    payload = [json.dumps({"thread": t, "i": i, "pad": "x" * (i * 37 % 3000)}) for t in range(4)
               for i in range(200)]  # fmt: skip

    def put(t: int) -> None:
        for text in payload[t * 200 : (t + 1) * 200]:
            lines.append(text.encode())

    threads = [threading.Thread(target=put, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines.close()
    got = complete_lines((tmp_path / "sub" / "log").read_bytes())
    assert sorted(line.decode() for line in got) == sorted(payload)


def test_remote_stores_keep_one_record_per_tile():
    # Object stores cannot append: the journal has no line log there.
    store = zarr.storage.MemoryStore()
    journal = WriteJournal(store, {"plan": 1}, "base", "memory")
    assert journal.line_log("tiles/p0/v0/log.x") is None
    log = journal.pass_log(0, 0)
    log.record((1, 2), [(1, (0, 0))], replayed=False)
    log.close()
    assert journal.names("tiles/") == ["tiles/p0/v0/1.2"]
    assert journal.pass_log(0, 0).history().done == {(1, 2)}
