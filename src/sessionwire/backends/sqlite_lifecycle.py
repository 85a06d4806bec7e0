"""The SQLite log's lifecycle states (see :mod:`.lifecycle`): a table, and a cache in the writer thread.

The ``lifecycle`` table holds each subject's state; the writer thread, the file's one writer
(one process holds the file's lock), keeps what it read and committed of the recent sessions in
memory, so the check of an append in the common case reads no row. Only the writer thread
touches any of this.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import OrderedDict

from ..events import Record
from .lifecycle import Plan, from_snapshot, replay, settle

logger = logging.getLogger("sessionwire.backends.sqlite")

_SESSIONS = 4096  # sessions whose states stay cached (the least recently used go first)


class Lifecycle:
    """The states of the subjects of the sessions the writer thread appends to."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS lifecycle (
    session TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (session, subject)
) WITHOUT ROWID;
"""

    def __init__(self) -> None:
        self._cache: OrderedDict[str, dict[str, str | None]] = OrderedDict()

    @classmethod
    def create(cls, conn: sqlite3.Connection) -> None:
        """Create the table; in a file written before the lifecycle rules, fill it from the records."""
        existed = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lifecycle'").fetchone()
        conn.executescript(cls.SCHEMA)
        if existed is not None:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            sessions = conn.execute("SELECT id, first_seq, snapshot FROM sessions").fetchall()
            for session, first, snapshot in sessions:
                states = from_snapshot(snapshot) if first > 1 and snapshot else {}
                rows = conn.execute("SELECT data FROM records WHERE session = ? ORDER BY seq", (session,))
                replay(states, [Record.from_json(data).event for (data,) in rows])
                conn.executemany(
                    "INSERT INTO lifecycle (session, subject, state) VALUES (?, ?, ?)",
                    [(session, subject, state) for subject, state in states.items()],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if sessions:
            logger.warning("the lifecycle states of %d sessions were built from their records", len(sessions))

    def begin(self, conn: sqlite3.Connection) -> Transaction:
        """The states one transaction reads and changes; :meth:`Transaction.commit` it after COMMIT."""
        return Transaction(self, conn)

    def delete(self, conn: sqlite3.Connection, session: str) -> None:
        """Drop a deleted session's states, in its delete's transaction."""
        conn.execute("DELETE FROM lifecycle WHERE session = ?", (session,))
        self._cache.pop(session, None)

    def _session(self, session: str) -> dict[str, str | None]:
        states = self._cache.get(session)
        if states is None:
            states = self._cache[session] = {}
            if len(self._cache) > _SESSIONS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(session)
        return states


class Transaction:
    """What one transaction of appends reads and changes."""

    def __init__(self, lifecycle: Lifecycle, conn: sqlite3.Connection) -> None:
        self.lifecycle = lifecycle
        self.conn = conn
        self.changed: dict[tuple[str, str], str] = {}

    def settle(self, session: str, todo: Plan) -> None:
        """Check an append (raises LifecycleViolation) and note the states it changes."""
        known = self.lifecycle._session(session)
        changed = self.changed

        def state_of(subject: str) -> str | None:
            state = changed.get((session, subject))
            if state is not None:
                return state
            if subject not in known:  # committed states only: what is read is in the file
                row = self.conn.execute(
                    "SELECT state FROM lifecycle WHERE session = ? AND subject = ?", (session, subject)
                ).fetchone()
                known[subject] = None if row is None else row[0]
            return known[subject]

        for subject, state in settle(todo, state_of):
            changed[(session, subject)] = state

    def write(self) -> None:
        """Write the changed states, inside the transaction."""
        if self.changed:
            self.conn.executemany(
                "INSERT OR REPLACE INTO lifecycle (session, subject, state) VALUES (?, ?, ?)",
                [(session, subject, state) for (session, subject), state in self.changed.items()],
            )

    def commit(self) -> None:
        """The transaction committed: its changes are the states now."""
        for (session, subject), state in self.changed.items():
            self.lifecycle._session(session)[subject] = state
