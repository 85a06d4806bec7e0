"""Open a store from a URL: the backend's parts together."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from .base import EventLog, Store
from .local import LocalCommandBus, LocalFeed, LocalMembership, MemoryReplies
from .memory import MemoryLog
from .sqlite import SQLiteLog
from .sqlite_replies import SQLiteReplies

__all__ = ["local_store", "open_log", "open_store"]


def local_store(log: MemoryLog | SQLiteLog) -> Store:
    """A store of one process around a local log: no feed, leases in memory, no other process to command.

    Raises:
        TypeError: ``log`` is not a local log (a Redis log's parts come with :func:`open_store`).
    """
    if not isinstance(log, (MemoryLog, SQLiteLog)):
        raise TypeError(
            f"a {type(log).__name__} is not a log of one process: open its store with open_store(url) "
            "and pass the store (or the URL) instead"
        )
    replies = SQLiteReplies(log) if isinstance(log, SQLiteLog) else MemoryReplies()
    return Store(log, LocalFeed(), LocalMembership(log.index), LocalCommandBus(), replies)


def open_store(url: str) -> Store:
    """Open a store from a URL: ``memory://``, ``sqlite:///path.db`` (relative; ``sqlite:////abs.db`` absolute) or ``redis://host:port/db``.

    A ``?retain=N`` query keeps N records per session once a snapshot covers older ones;
    ``sqlite:///...?mode=ro`` opens a SQLite log read-only, also while a server has it open.
    Redis takes more parameters (see :mod:`sessionwire.backends.redis`).
    """
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    retain = int(query["retain"]) if "retain" in query else None
    if retain is not None and retain < 0:
        raise ValueError(f"retain must be >= 0, not {retain}")
    if parts.scheme == "memory":
        return local_store(MemoryLog(retain=retain))
    if parts.scheme == "sqlite":
        # As in SQLAlchemy: sqlite:///rel/path.db is relative, sqlite:////abs/path.db absolute.
        if not url.startswith("sqlite:///"):
            raise ValueError(f"sqlite URL is sqlite:///relative.db or sqlite:////absolute.db, not {url!r}")
        path = url[len("sqlite:///") :].split("?", 1)[0]
        if not path:
            raise ValueError(f"sqlite URL needs a file path: {url!r}")
        mode = query.get("mode", "rw")
        if mode not in ("rw", "ro"):
            raise ValueError(f"sqlite mode is rw or ro, not {mode!r}")
        return local_store(SQLiteLog(path, retain=retain, read_only=mode == "ro"))
    if parts.scheme in ("redis", "rediss"):
        # The driver is an optional extra: imported only when a Redis URL is opened.
        from .redis.store import open_redis_store

        return open_redis_store(url, retain=retain)
    raise ValueError(
        f"unknown store URL scheme {parts.scheme!r} in {url!r}: use memory://, sqlite:///path.db or redis://"
    )


def open_log(url: str) -> EventLog:
    """Only the log of :func:`open_store` (for tools that read or write records and nothing else)."""
    return open_store(url).log
