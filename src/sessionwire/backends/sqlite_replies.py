"""Idempotency-Key replies in a SQLite log's file (table ``replies``): they survive restarts."""

from __future__ import annotations

import sqlite3
import time

import msgspec

from .base import Reply
from .sqlite import SQLiteLog

__all__ = ["SQLiteReplies"]


class SQLiteReplies:
    """Replies in the log's file (table ``replies``), written by its writer thread: they survive restarts.

    Expiry is wall-clock time (ms since the epoch), so it holds across restarts too.
    """

    def __init__(self, log: SQLiteLog) -> None:
        self._log = log
        self._claims = 0

    async def claim(self, key: str, fingerprint: str, hold: float) -> Reply | None:
        """Claim ``key`` (None), or what it holds; in one transaction of the writer thread."""
        claim = msgspec.json.encode(Reply(fingerprint=fingerprint))
        self._claims += 1
        sweep = self._claims % 1000 == 0  # now and then, expired keys go

        def write(conn: sqlite3.Connection) -> bytes | None:
            now = time.time_ns() // 1_000_000
            conn.execute("BEGIN IMMEDIATE")
            try:
                if sweep:
                    conn.execute("DELETE FROM replies WHERE expires <= ?", (now,))
                row = conn.execute("SELECT reply FROM replies WHERE key = ? AND expires > ?", (key, now)).fetchone()
                if row is None:
                    conn.execute(
                        "INSERT OR REPLACE INTO replies (key, reply, expires) VALUES (?, ?, ?)",
                        (key, claim, now + int(hold * 1000)),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return None if row is None else bytes(row[0])

        held = await self._log.run_write(write)
        return None if held is None else msgspec.json.decode(held, type=Reply)

    async def get(self, key: str) -> Reply | None:
        """What ``key`` holds, if it has not expired."""

        def read(conn: sqlite3.Connection) -> bytes | None:
            now = time.time_ns() // 1_000_000
            row = conn.execute("SELECT reply FROM replies WHERE key = ? AND expires > ?", (key, now)).fetchone()
            return None if row is None else bytes(row[0])

        held = await self._log.run_read(read)
        return None if held is None else msgspec.json.decode(held, type=Reply)

    async def finish(self, key: str, reply: Reply, ttl: float) -> None:
        """Keep the reply ``ttl`` seconds."""
        data = msgspec.json.encode(reply)

        def write(conn: sqlite3.Connection) -> None:
            expires = time.time_ns() // 1_000_000 + int(ttl * 1000)
            conn.execute("INSERT OR REPLACE INTO replies (key, reply, expires) VALUES (?, ?, ?)", (key, data, expires))

        await self._log.run_write(write)

    async def drop(self, key: str) -> None:
        """Forget the key."""
        await self._log.run_write(lambda conn: conn.execute("DELETE FROM replies WHERE key = ?", (key,)))
