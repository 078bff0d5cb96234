"""The write journal: a lease, the plan, and a record per finished tile, inside the store.

Everything lives under the reserved prefix ``.topozarr-write/`` of the target store, which no
Zarr reader looks at (it holds no ``zarr.json``). Keys:

``lease.<n>``
    Who is writing (host, pid, start time). Taken by conditional create (exclusive create on
    a local disk, ``If-None-Match`` on S3), so two writers never both proceed. A resume takes
    over a stale lease by creating the next generation ``lease.<n+1>``: of two resumes only
    one can create it.
``plan.json``
    The plan description (:mod:`topozarr_plan.fingerprint`); a resume of another plan is
    refused, naming what differs.
``templates``
    The level groups and array metadata are written (a resume opens them instead of creating
    them again, which would delete the data).
``tiles/p<pass>/v<var>/<tile>``
    One object per finished level-0 tile task: the coarse shards that task stored. Written
    after the task's shards are stored (with ``io="rust"``, once its uploads have finished),
    so a record never claims data that is not there. A replayed tile that stored shards adds
    ``<tile>.r<token>``.
``tiles/p<pass>/v<var>/log.<token>``
    On a local disk, the same records as lines of one file per write (``{"tile": [...],
    "replayed": bool, "flushed": [...]}``), appended instead of created one file each; a line
    cut short by a kill has no newline and counts as missing.
``passes/<pass>``
    A pass over the source finished.
``levels/<level>``
    A level written completely by this plan (kept after an unpublished subset write, so a
    later subset write of the other levels can publish the whole pyramid).

Each object is put whole (a local write, or an S3 PUT); a record that does not parse (a write
cut short by a kill) counts as missing, which only means its tile is done again.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from topozarr_engine.tilelog import TileHistory

from topozarr_plan.errors import PlanError
from topozarr_plan.journal_keys import LineLog, complete_lines, keys_for

if TYPE_CHECKING:
    from topozarr_engine.storage import StorageTarget

__all__ = ["JOURNAL_PREFIX", "LeaseError", "NoJournal", "PassLog", "WriteJournal", "journal_for"]

JOURNAL_PREFIX = ".topozarr-write"

Index = tuple[int, ...]


class LeaseError(PlanError):
    """Another write holds the store (or held it and was interrupted)."""


def _json(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:  # cut short by a kill: as if never written
        return None


def _tile_name(tile: Index) -> str:
    return ".".join(str(i) for i in tile)


def _index(value: Any) -> Index | None:
    """A tile index from a log line (``None`` if it is not a list of integers)."""
    if isinstance(value, list) and all(isinstance(i, int) for i in value):
        return tuple(value)
    return None


def _parse_tile(name: str) -> Index | None:
    try:
        return tuple(int(p) for p in name.split("."))
    except ValueError:
        return None


class WriteJournal:
    """The journal of the writes of one plan into one store.

    Parameters
    ----------
    zstore
        The zarr store (any zarr-python ``Store``).
    plan
        The plan description (:func:`topozarr_plan.fingerprint.describe_plan` plus the levels,
        passes and tile budget of this write).
    base
        A digest of what identifies the output alone (not which levels this write does):
        level markers of writes with the same ``base`` add up to a complete pyramid.
    where
        How to name the store in messages (a path or URL, never a secret).
    """

    def __init__(self, zstore: Any, plan: dict[str, Any], base: str, where: str) -> None:
        self.zstore = zstore
        self.plan = plan
        self.base = base
        self.where = where
        self.token = uuid.uuid4().hex[:12]
        self.lease_key: str | None = None
        self.keys = keys_for(zstore)

    # ------------------------------------------------------------------ store access

    def _key(self, name: str) -> str:
        return f"{JOURNAL_PREFIX}/{name}"

    def get(self, name: str) -> bytes | None:
        return self.keys.get(self._key(name))

    def get_json(self, name: str) -> Any:
        return _json(self.get(name))

    def put(self, name: str, data: bytes) -> None:
        self.keys.put(self._key(name), data)

    def put_json(self, name: str, value: Any) -> None:
        self.put(name, json.dumps(value).encode())

    def names(self, prefix: str = "") -> list[str]:
        """Names under ``prefix`` (relative to the journal prefix)."""
        start = len(JOURNAL_PREFIX) + 1
        return [k[start:] for k in self.keys.list(self._key(prefix))]

    def get_many(self, names: Sequence[str]) -> list[Any]:
        """JSON values of ``names`` (``None`` where missing or unreadable), fetched together."""
        return [_json(raw) for raw in self.keys.get_many([self._key(n) for n in names])]

    def _delete(self, names: Sequence[str]) -> None:
        self.keys.delete([self._key(n) for n in names])

    def line_log(self, name: str) -> LineLog | None:
        """An append-only log at ``name`` where the store is a local directory, else None."""
        return self.keys.line_log(self._key(name))

    # ------------------------------------------------------------------ lease

    def _leases(self, names: Sequence[str] | None = None) -> list[tuple[int, str]]:
        """(generation, name) of every lease among ``names`` (default: listed now)."""
        out = []
        # Prefixes are listed by whole path segments (LocalStore, icechunk): filter here.
        for name in self.names() if names is None else names:
            gen = name.removeprefix("lease.")
            if name.startswith("lease.") and gen.isdigit():
                out.append((int(gen), name))
        return sorted(out)

    def _holder(self) -> dict[str, Any]:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "token": self.token,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def _describe(self, name: str) -> str:
        holder = self.get_json(name) or {}
        who = f"{holder.get('host', '?')} pid {holder.get('pid', '?')}"
        return f"{who} since {holder.get('started', '?')} ({JOURNAL_PREFIX}/{name})"

    def acquire(self, *, resume: bool) -> None:
        """Take the lease, or raise :class:`LeaseError` naming the holder and the way out."""
        leases = self._leases()
        if leases and not resume:
            raise LeaseError(
                f"{self.where} is being written by {self._describe(leases[-1][1])}. If that "
                "write was interrupted, continue it with resume=True (topozarr build --resume); "
                f"to abandon it, delete {self.where}/{JOURNAL_PREFIX}"
            )
        if leases and self._holder_alive(leases[-1][1]):
            raise LeaseError(
                f"{self.where} is still being written by {self._describe(leases[-1][1])}; "
                "wait for it to finish (or stop it) before resuming"
            )
        gen = leases[-1][0] + 1 if leases else 0
        name = f"lease.{gen}"
        self.keys.put_if_absent(self._key(name), json.dumps(self._holder()).encode())
        # A conditional create does not say who won: read back whose lease landed.
        if (self.get_json(name) or {}).get("token") != self.token:
            raise LeaseError(
                f"{self.where} was taken by another writer just now: {self._describe(name)}"
            )
        self.lease_key = name

    def _holder_alive(self, name: str) -> bool:
        """True when the lease holder is a live process on this host (not us)."""
        holder = self.get_json(name) or {}
        pid = holder.get("pid")
        if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
            return False  # another machine: a resume is the user's word that it is gone
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def release(self) -> None:
        """Drop every lease generation (the write is over; its records stay for a resume)."""
        self._delete([name for _, name in self._leases()])
        self.lease_key = None

    # ------------------------------------------------------------------ plan state

    def stored_plan(self) -> dict[str, Any] | None:
        return self.get_json("plan.json")

    def forget(self, *, keep_levels: bool) -> None:
        """Before a fresh write touches the store: drop earlier records (not the lease).

        ``plan.json`` goes first, so a journal cut short here is never taken for a resumable
        one. Level markers stay when the write keeps the store's other levels (``mode="a"``).
        """
        self._delete(["plan.json"])
        keep = ("lease.", "levels/") if keep_levels else ("lease.",)
        self._delete([n for n in self.names() if not n.startswith(keep)])

    def start(self) -> None:
        """Store the plan: from now on an interruption is resumable."""
        self.put_json("plan.json", self.plan)

    def mark(self, name: str) -> None:
        self.put_json(name, {"token": self.token})

    def marked(self, name: str) -> bool:
        return self.get_json(name) is not None

    def mark_level(self, level: int) -> None:
        self.put_json(f"levels/{level}", {"base": self.base})

    def complete_levels(self) -> set[int]:
        """Levels that writes of this output wrote completely (``levels/<n>`` markers)."""
        names = [n for n in self.names("levels/") if n.split("/")[1].isdigit()]
        return {
            int(n.split("/")[1])
            for n, marker in zip(names, self.get_many(names), strict=True)
            if isinstance(marker, dict) and marker.get("base") == self.base
        }

    def interrupted_before_start(self) -> bool:
        """Whether a write holds a lease without having finished: with no plan stored (see
        :meth:`start`), it was interrupted before changing the store, so nothing says the store
        holds that write's data even when it publishes a pyramid of the same layout."""
        return bool(self._leases()) and self.get_json("finished") is None

    def finish(self) -> None:
        """The pyramid is published: remove the journal, the plan first, then the records,
        the lease and last the ``finished`` marker."""
        try:
            # Before the plan goes: a write interrupted from here on is known to be finished
            # (see interrupted_before_start), as long as the marker outlives the lease.
            self.put_json("finished", {"token": self.token})
            self._delete(["plan.json"])  # what is left is no longer resumable
            names = self.names()
            leases = [name for _, name in self._leases(names)]
            self._delete([n for n in names if n not in leases and n != "finished"])
            self._delete(leases)
            self.keys.delete_prefix(JOURNAL_PREFIX + "/")  # the marker (and local directories)
        except Exception as exc:  # the pyramid is complete and published: do not fail it
            warnings.warn(
                f"{self.where} is complete and published, but its write journal could not be "
                f"removed ({type(exc).__name__}: {exc}); write again with resume=True to "
                "remove it",
                RuntimeWarning,
                stacklevel=2,
            )
        self.lease_key = None

    def pass_log(self, pass_index: int, var_index: int, native: Any = None) -> PassLog:
        return PassLog(self, f"tiles/p{pass_index}/v{var_index}/", native)


#: Records of finished tiles (``io="rust"``) waiting for their uploads at once. One keeps a
#: resume's re-reads lowest but made each task wait for the previous tile's uploads and record
#: (io="rust" 5-10% slower on a local DEM write); two let a task hand over while one commits.
_PENDING_RECORDS = 2


class PassLog:
    """The :class:`~topozarr_engine.tilelog.TileLog` of one variable in one pass.

    With ``native`` (``io="rust"``), a tile's record is written by a committer thread once the
    uploads its task issued (its thread's upload group) have finished; a task that issued none
    (its shards streamed to a local directory) writes its record at once, as with zarr-python.
    At most ``_PENDING_RECORDS`` records wait for their uploads at once (a task hands its record over
    only when there is room), so a kill loses at most the tasks in progress and those: a resume
    reads at most ``workers + 2`` tiles again, however far the uploads lag behind the tiles.
    """

    def __init__(self, journal: WriteJournal, prefix: str, native: Any = None) -> None:
        self.journal = journal
        self.prefix = prefix
        self.native = native
        # One log per write (its token): a resume never appends after a line cut short.
        self._lines = journal.line_log(f"{prefix}log.{journal.token}")
        self.read_again = 0
        self.ran = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Any, Callable[[], None]] | None] | None = None
        self._committer: threading.Thread | None = None
        self._error: BaseException | None = None
        # Held from a record's hand-over until it is stored (see the class docstring).
        self._slot = threading.Semaphore(_PENDING_RECORDS)

    def history(self) -> TileHistory:
        names = self.journal.names(self.prefix)
        logs = {n for n in names if n[len(self.prefix) :].startswith("log.")}
        files = [n for n in names if n not in logs]
        entries: list[tuple[Index | None, bool, Any]] = []
        for name, record in zip(files, self.journal.get_many(files), strict=True):
            base, _, extra = name[len(self.prefix) :].partition(".r")
            entries.append((_parse_tile(base), bool(extra), record))
        for name in sorted(logs):
            for line in complete_lines(self.journal.get(name) or b""):
                record = _json(line)
                if isinstance(record, dict):
                    tile = _index(record.get("tile"))
                    entries.append((tile, bool(record.get("replayed")), record))
        done: set[Index] = set()
        flushed: dict[int, set[Index]] = {}
        for tile, replayed, record in entries:
            if tile is None or not isinstance(record, dict):
                continue
            if not replayed:
                done.add(tile)
            for level, shard in record.get("flushed", []):
                flushed.setdefault(int(level), set()).add(tuple(int(i) for i in shard))
        return TileHistory(frozenset(done), {lv: frozenset(s) for lv, s in flushed.items()})

    def record(self, tile: Index, flushed: Sequence[tuple[int, Index]], *, replayed: bool) -> None:
        with self._lock:
            if replayed:
                self.read_again += 1
            else:
                self.ran += 1
        if replayed and not flushed:
            return  # nothing new to remember
        shards = [[lv, list(s)] for lv, s in flushed]
        if self._lines is not None:
            line = {"tile": list(tile), "replayed": replayed, "flushed": shards}
            store = functools.partial(self._lines.append, json.dumps(line).encode())
        else:
            name = self.prefix + _tile_name(tile)
            if replayed:
                name += f".r{uuid.uuid4().hex[:8]}"
            data = json.dumps({"flushed": shards}).encode()
            store = functools.partial(self.journal.put, name, data)
        group = None if self.native is None else self.native.take_group()
        if group is None:
            # The task's writes are done: zarr-python is synchronous, and so are streamed
            # shards (a local directory); no upload of this task's is still in flight.
            self._raise_commit_error()
            store()
            return
        self._commit_later(group, store)

    def _raise_commit_error(self) -> None:
        with self._lock:
            if self._error is not None:
                raise self._error

    def _commit_later(self, group: Any, store: Callable[[], None]) -> None:
        self._raise_commit_error()
        with self._lock:
            if self._queue is None:
                self._queue = queue.Queue()
                self._committer = threading.Thread(
                    target=self._commit, name="topozarr-journal", daemon=True
                )
                self._committer.start()
        assert self._queue is not None
        self._slot.acquire()
        self._queue.put((group, store))

    def _commit(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is None:
                return
            group, store = item
            try:
                if group is not None:
                    group.wait()
                store()
            except BaseException as exc:  # kept and raised by close()
                with self._lock:
                    self._error = self._error or exc
            finally:
                self._slot.release()

    def close(self) -> None:
        """Wait for the records still queued; raise the first failure of a commit."""
        if self._queue is not None and self._committer is not None:
            self._queue.put(None)
            self._committer.join()
            self._queue = None
        if self._lines is not None:
            self._lines.close()
        if self._error is not None:
            raise self._error


class NoJournal(WriteJournal):
    """For stores that hold Zarr keys only (icechunk sessions), which are transactional anyway.

    An icechunk write becomes visible on ``session.commit()``, all or nothing, and icechunk
    detects conflicting writers itself; there is nothing to resume (a failed session is
    discarded) and no place for a journal.
    """

    def acquire(self, *, resume: bool) -> None:
        if resume:
            raise PlanError(
                "resume=True needs a write journal, which an icechunk session cannot hold; an "
                "icechunk write is all or nothing: write again in a new session"
            )

    def stored_plan(self) -> dict[str, Any] | None:
        return None

    def interrupted_before_start(self) -> bool:
        return False

    def start(self) -> None:
        pass

    def forget(self, *, keep_levels: bool) -> None:
        pass

    def mark(self, name: str) -> None:
        pass

    def marked(self, name: str) -> bool:
        return False

    def mark_level(self, level: int) -> None:
        pass

    def complete_levels(self) -> set[int]:
        return set()

    def release(self) -> None:
        pass

    def finish(self) -> None:
        pass

    def pass_log(self, pass_index: int, var_index: int, native: Any = None) -> PassLog | None:  # type: ignore[override]
        return None


def journal_for(target: StorageTarget, plan: dict[str, Any], base: str) -> WriteJournal:
    """The journal of a write into ``target``: :class:`NoJournal` for stores without the
    conditional create a lease needs (icechunk sessions, transactional anyway)."""
    cls = WriteJournal if target.conditional_create else NoJournal
    return cls(target.store, plan, base, target.description)
