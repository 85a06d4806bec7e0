"""Open a Redis store: the log, the live feed, the leases and the command bus on one server."""

from __future__ import annotations

from ..base import Store
from .commands import RedisCommandBus
from .feed import RedisFeed
from .log import RedisLog
from .membership import RedisMembership
from .replies import RedisReplies

__all__ = ["open_redis_store"]


def open_redis_store(url: str, retain: int | None = None) -> Store:
    """A :class:`Store` on ``redis://host:port/db`` (query parameters: see :mod:`.log`)."""
    log = RedisLog(url, retain=retain)
    return Store(
        log,
        RedisFeed(log),
        RedisMembership(log, log.lease),
        RedisCommandBus(log, log.command_timeout),
        RedisReplies(log),
    )
