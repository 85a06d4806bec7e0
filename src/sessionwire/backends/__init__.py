"""Backends: each provides the same few parts (see :mod:`.base`); :func:`open_store` opens one from a URL."""

from __future__ import annotations

from .base import (
    Command,
    CommandBus,
    CommandHandler,
    EventLog,
    FeedTarget,
    Fence,
    LiveFeed,
    Membership,
    Replies,
    Reply,
    SessionMeta,
    Snapshot,
    Store,
)
from .store import local_store, open_log, open_store

__all__ = [
    "Command",
    "CommandBus",
    "CommandHandler",
    "EventLog",
    "FeedTarget",
    "Fence",
    "LiveFeed",
    "Membership",
    "Replies",
    "Reply",
    "SessionMeta",
    "Snapshot",
    "Store",
    "local_store",
    "open_log",
    "open_store",
]
