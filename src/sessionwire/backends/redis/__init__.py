"""``redis://host:port/db``: several processes share sessions, on Redis Streams.

One module per part: :mod:`.log` (the event log, seqs from a Lua script), :mod:`.feed`
(one XREAD reader per process feeding its channels), :mod:`.membership` (leases and
the owners' index), :mod:`.commands` (commands routed over pub/sub); :mod:`.keys`
names every key. Nothing outside this package imports ``redis``.
"""

from __future__ import annotations

from .commands import RedisCommandBus
from .feed import RedisFeed
from .log import RedisLog
from .membership import RedisMembership
from .store import open_redis_store

__all__ = ["RedisCommandBus", "RedisFeed", "RedisLog", "RedisMembership", "open_redis_store"]
