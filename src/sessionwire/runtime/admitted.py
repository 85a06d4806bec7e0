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
it goes through :meth:`Hub.update_meta`, which serializes every such write of a
session in this process (token rotation included), so none is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..backends import SessionMeta

if TYPE_CHECKING:
    from ..hub import Hub

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


async def drop_marks(hub: Hub, session_id: str, turns: set[str]) -> None:
    """Remove the marks of ``turns`` from a session's metadata (if it still has any)."""
    if not turns:
        return

    def drop(meta: SessionMeta) -> bool:
        marks = marks_of(meta)
        if not turns & marks.keys():
            return False
        _store(meta, {t: o for t, o in marks.items() if t not in turns})
        return True

    await hub.update_meta(session_id, drop)


def _store(meta: SessionMeta, marks: dict[str, str]) -> None:
    if marks:
        meta.data[KEY] = marks
    else:
        meta.data.pop(KEY, None)


class AdmittedMarks:
    """This runtime's marks: the queued turns it has admitted, by session.

    Args:
        hub: The hub whose sessions' metadata holds the marks.
        owner: This runtime's owner id.
    """

    def __init__(self, hub: Hub, owner: str) -> None:
        self.hub = hub
        self.owner = owner
        self._turns: dict[str, set[str]] = {}

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

        def sync(meta: SessionMeta) -> bool:
            mine = self._turns.get(session_id, set())  # read under the lock: the latest marks
            stored = marks_of(meta)
            wanted = {t: o for t, o in stored.items() if o != self.owner} | dict.fromkeys(mine, self.owner)
            if wanted == stored:
                return False
            _store(meta, wanted)
            return True

        await self.hub.update_meta(session_id, sync)
