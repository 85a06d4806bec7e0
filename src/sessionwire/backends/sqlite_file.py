"""The SQLite log's file: its connections (WAL, synchronous=NORMAL) and the lock that makes one process its writer."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import urllib.parse

from ..errors import StoreLocked


def connect(path: str, read_only: bool = False) -> sqlite3.Connection:
    """A connection to the file: the writer's (WAL, synchronous=NORMAL), or a reader's (``mode=ro``)."""
    if read_only:
        uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        return conn
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def lock(path: str) -> int | None:
    """Take the exclusive lock of a database file (None for an in-memory database)."""
    if path == ":memory:" or path.startswith("file:"):
        return None
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLocked(path) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the last descriptor of the file releases its flock
