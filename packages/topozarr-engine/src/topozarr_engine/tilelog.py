"""What the single-pass writer needs from a write journal: the history, and a record per tile.

A journal makes a write resumable. The single-pass writer asks it once for the history of
earlier runs of the same plan (which level-0 tiles finished, which coarse shards were stored)
and tells it, after each tile task, which coarse shards that task stored. A resumed run then:

- skips a finished tile whose coarse shards are all stored;
- *replays* a finished tile that still contributes to a coarse shard not stored yet: its
  level-0 values are read back (from ``replay_from``, the level-0 array this plan wrote,
  not from the source), reduced again and folded into the open shards; level 0 is not
  written again;
- runs every other tile as usual.

Every coarse value is still reduced from native cells, so a resumed store equals a clean one.
The persistence (keys, atomicity, batching behind uploads) is the journal's business; this
module only fixes the interface, with an in-memory implementation for tests and callers that
want the bookkeeping without a store.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["MemoryTileLog", "TileHistory", "TileLog"]

Index = tuple[int, ...]


@dataclass(frozen=True)
class TileHistory:
    """What earlier runs of the same plan finished.

    Attributes
    ----------
    done
        Level-0 tile grid indices whose task finished (its level-0 region is stored).
    flushed
        Per level (the index into the writer's ``dsts``), the shard grid indices already
        stored (or skipped as all fill) by a finished task.
    """

    done: frozenset[Index] = frozenset()
    flushed: Mapping[int, frozenset[Index]] = field(default_factory=dict)


class TileLog(Protocol):
    """The journal interface of :func:`topozarr_engine.write_pyramid_arrays`."""

    def history(self) -> TileHistory:
        """Tiles and shards finished by earlier runs (empty for a fresh write)."""
        ...

    def record(self, tile: Index, flushed: Sequence[tuple[int, Index]], *, replayed: bool) -> None:
        """Called in the worker thread after tile ``tile``'s writes have been issued.

        ``flushed`` lists the ``(level, shard)`` pairs the task stored (level 0 excluded: a
        finished tile's level-0 region is always stored). ``replayed`` is true for a tile that
        had finished before and was only read back to complete open shards.
        """
        ...


class MemoryTileLog:
    """A :class:`TileLog` kept in memory: the history of a run, reusable as the next's."""

    def __init__(self, history: TileHistory | None = None) -> None:
        self._history = history or TileHistory()
        self._lock = threading.Lock()
        self.done: set[Index] = set(self._history.done)
        self.flushed: dict[int, set[Index]] = {
            lv: set(s) for lv, s in self._history.flushed.items()
        }
        self.replayed: list[Index] = []
        self.ran: list[Index] = []

    def history(self) -> TileHistory:
        return self._history

    def record(self, tile: Index, flushed: Sequence[tuple[int, Index]], *, replayed: bool) -> None:
        with self._lock:
            (self.replayed if replayed else self.ran).append(tile)
            self.done.add(tile)
            for level, shard in flushed:
                self.flushed.setdefault(level, set()).add(shard)

    def snapshot(self) -> TileHistory:
        """Everything recorded so far, as the history of a later run."""
        with self._lock:
            return TileHistory(
                frozenset(self.done), {lv: frozenset(s) for lv, s in self.flushed.items()}
            )
