"""Durable, sequenced storage: the EventLog protocol and its backends."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from .base import EventLog, SessionMeta, Snapshot

__all__ = ["EventLog", "SessionMeta", "Snapshot", "open_log"]


def open_log(url: str) -> EventLog:
    """Open a log from a URL: ``memory://``, ``sqlite:///path.db`` (relative; ``sqlite:////abs.db`` absolute) or ``redis://host:port/db``.

    A ``?retain=N`` query keeps N records per session once a snapshot covers older ones;
    ``sqlite:///...?mode=ro`` opens a SQLite log read-only, also while a server has it open.
    """
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    retain = int(query["retain"]) if "retain" in query else None
    if retain is not None and retain < 0:
        raise ValueError(f"retain must be >= 0, not {retain}")
    if parts.scheme == "memory":
        from .memory import MemoryLog

        return MemoryLog(retain=retain)
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
        return SQLiteLog(path, retain=retain, read_only=mode == "ro")
    if parts.scheme in ("redis", "rediss"):
        from .redis import RedisLog  # type: ignore[import-not-found,unused-ignore]

        return RedisLog(url, retain=retain)  # type: ignore[no-any-return,unused-ignore]
    raise ValueError(
        f"unknown log URL scheme {parts.scheme!r} in {url!r}: use memory://, sqlite:///path.db or redis://"
    )
