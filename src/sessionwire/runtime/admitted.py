"""Durable marks of admitted turns that have not written anything yet, so a crash can't lose them.

A queued turn writes nothing until it starts: after a crash no record names it,
although ``dispatch`` already gave its id to a client. So the runtime marks it,
before ``dispatch`` returns, in the session's metadata (``SessionMeta.data``,
key :data:`KEY`: ``{turn id: owner}``), and unmarks it once it has ended.
Recovery writes ``turn.interrupted`` for a marked turn that has no record and
whose owner is not alive (the fold creates the turn with that status).

Each runtime writes only its own marks: :meth:`AdmittedMarks.sync` makes a
session's stored marks of this owner equal to what it holds in memory, keeping
the other owners' (several processes share a Redis log). Only queued turns are
marked, so ``dispatch`` stays a pure in-memory call when no turn runs.

The log stores metadata whole (``put_meta``), so a mark write is a read-modify-write:
this runtime's writes to a session are serialized, but a concurrent write of
another field by someone else (say, :meth:`Hub.rotate_token` between our read
and our write) can be lost. A per-session metadata lock in the hub would close that.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from ..log.base import EventLog, SessionMeta

KEY = "admitted_turns"
"""The key of ``SessionMeta.data`` that holds the marks: ``{turn id: owner}``."""


def marks_of(meta: SessionMeta | None) -> dict[str, str]:
    """The marks stored in a session's metadata."""
    if meta is None:
        return {}
    raw: Any = meta.data.get(KEY)
    if not isinstance(raw, dict):
        return {}
    return {str(turn): str(owner) for turn, owner in raw.items()}


async def drop_marks(log: EventLog, session_id: str, turns: set[str]) -> None:
    """Remove the marks of ``turns`` from a session's metadata (if it still has any)."""
    if not turns:
        return
    meta = await log.get_meta(session_id)
    marks = marks_of(meta)
    if meta is None or not turns & marks.keys():
        return
    _store(meta, {t: o for t, o in marks.items() if t not in turns})
    await log.put_meta(meta)


def _store(meta: SessionMeta, marks: dict[str, str]) -> None:
    if marks:
        meta.data[KEY] = marks
    else:
        meta.data.pop(KEY, None)


class AdmittedMarks:
    """This runtime's marks: the queued turns it has admitted, by session.

    Args:
        log: The log whose session metadata holds the marks.
        owner: This runtime's owner id.
    """

    def __init__(self, log: EventLog, owner: str) -> None:
        self.log = log
        self.owner = owner
        self._turns: dict[str, set[str]] = {}
        # A write of a session's marks is a read-modify-write of its metadata: one at a time per session.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def add(self, session_id: str, turn: str) -> None:
        """Hold a mark in memory; :meth:`sync` stores it."""
        self._turns.setdefault(session_id, set()).add(turn)

    def discard(self, session_id: str, turn: str) -> None:
        """Forget a mark in memory; :meth:`sync` removes it from the store."""
        turns = self._turns.get(session_id)
        if turns is not None:
            turns.discard(turn)
            if not turns:
                del self._turns[session_id]

    async def sync(self, session_id: str) -> None:
        """Store the session's marks of this owner as held in memory; a deleted session is left alone."""
        lock = self._locks.get(session_id)
        if lock is None:
            lock = self._locks[session_id] = asyncio.Lock()
        async with lock:
            meta = await self.log.get_meta(session_id)
            if meta is None:
                return
            stored = marks_of(meta)
            mine = self._turns.get(session_id, set())
            wanted = {t: o for t, o in stored.items() if o != self.owner} | dict.fromkeys(mine, self.owner)
            if wanted != stored:
                _store(meta, wanted)
                await self.log.put_meta(meta)
