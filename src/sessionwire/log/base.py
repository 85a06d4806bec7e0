"""The EventLog protocol: durable, sequenced storage of every session's records.

The log is the single sequencer of a session: ``append`` assigns seq 1, 2, 3, ...
with no gap, also when several producers append to one session at once (a
backend assigns seqs atomically where the data lives: a SQLite transaction, a
Redis script). Every backend passes the same contract suite
(``tests/test_log_contract.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from ..events import Event, Record


class SessionMeta(msgspec.Struct, kw_only=True):
    """A session's small metadata record, kept beside its records."""

    id: str
    created_at: int
    title: str | None = None
    token_hash: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class Snapshot(msgspec.Struct, frozen=True):
    """A session's folded state (JSON) as it stood at seq ``at``."""

    at: int
    state: bytes


class EventLog(Protocol):
    """Durable per-session storage of records, with seqs assigned at append."""

    commits: int
    """How many commits (transactions, round trips) the log has made: appends are grouped."""

    records_read: int
    """How many records ``read`` has returned (reopening a session reads only its tail)."""

    async def append(self, session: str, events: Sequence[Event]) -> list[Record]:
        """Append events to a session, atomically and in order; return their records (seqs assigned here)."""
        ...

    async def read(self, session: str, after: int = 0, limit: int | None = None) -> list[Record]:
        """Records with seq > ``after``, in order; raises CursorExpired if some were dropped."""
        ...

    async def bounds(self, session: str) -> tuple[int, int]:
        """(first retained seq, last seq); (0, 0) for a session with no record."""
        ...

    async def save_snapshot(self, session: str, snapshot: Snapshot) -> None:
        """Store a snapshot unless a newer one is stored; drop records it covers beyond ``retain``."""
        ...

    async def load_snapshot(self, session: str) -> Snapshot | None:
        """The session's latest snapshot, if any."""
        ...

    async def sessions(self) -> list[SessionMeta]:
        """Every session that has metadata, sorted by id."""
        ...

    async def get_meta(self, session: str) -> SessionMeta | None:
        """A session's metadata, or None."""
        ...

    async def put_meta(self, meta: SessionMeta) -> None:
        """Create or replace a session's metadata."""
        ...

    async def delete(self, session: str) -> None:
        """Remove a session: its records, snapshot and metadata."""
        ...

    async def aclose(self) -> None:
        """Flush and close; every call after this raises LogClosed."""
        ...
