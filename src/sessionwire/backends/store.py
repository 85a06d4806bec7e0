"""Open a store from a URL: the backend's parts together."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from .base import EventLog, Store
from .local import LocalCommandBus, LocalFeed, LocalMembership, OwnerIndex

__all__ = ["local_store", "open_log", "open_store"]


def local_store(log: EventLog, index: OwnerIndex | None = None) -> Store:
    """A store of one process around ``log``: no feed, leases in memory, no other process to command.

    Args:
        index: The owners' index that ``log`` writes (see :class:`~.local.OwnerIndex`).
    """
    return Store(log, LocalFeed(), LocalMembership(index or OwnerIndex()), LocalCommandBus())


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
        from .memory import MemoryLog

        index = OwnerIndex()
        return local_store(MemoryLog(retain=retain, index=index), index)
    if parts.scheme == "sqlite":
        from .sqlite import SQLiteLog

        # As in SQLAlchemy: sqlite:///rel/path.db is relative, sqlite:////abs/path.db absolute.
        if not url.startswith("sqlite:///"):
            raise ValueError(f"sqlite URL is sqlite:///relative.db or sqlite:////absolute.db, not {url!r}")
        path = url[len("sqlite:///") :].split("?", 1)[0]
        if not path:
            raise ValueError(f"sqlite URL needs a file path: {url!r}")
        mode = query.get("mode", "rw")
        if mode not in ("rw", "ro"):
            raise ValueError(f"sqlite mode is rw or ro, not {mode!r}")
        index = OwnerIndex()
        return local_store(SQLiteLog(path, retain=retain, read_only=mode == "ro", index=index), index)
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
