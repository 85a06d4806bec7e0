"""Replies on Redis: one key per request key, ``<p>:reply:<key>``, with a TTL.

A claim is ``SET NX`` with the claim's time to live, so exactly one process runs a
request whatever process each retry reaches; the reply replaces it with its own TTL.
"""

from __future__ import annotations

import secrets

import msgspec

from ..base import Reply
from .log import RedisLog

__all__ = ["RedisReplies"]


class RedisReplies:
    """The first reply to each request key, on the store's Redis.

    Args:
        log: The store's log (its client, keys and retry window).
    """

    def __init__(self, log: RedisLog) -> None:
        self._log = log
        self._keys = log.keys

    async def claim(self, key: str, fingerprint: str, hold: float) -> Reply | None:
        """Claim ``key`` (None), or what it holds."""
        # A nonce: a retry whose first try was applied (its answer lost) finds its own claim.
        claim = msgspec.json.encode(Reply(fingerprint=fingerprint, claim=secrets.token_hex(8)))
        name, client, ms = self._keys.reply(key), self._log.client, int(hold * 1000)
        # SET NX GET: the claim, or what holds the key, in one command (Redis >= 7.0).
        held = await self._log.with_retry(lambda: client.set(name, claim, nx=True, get=True, px=ms))
        if held is None or held == claim:
            return None
        return msgspec.json.decode(held, type=Reply)

    async def get(self, key: str) -> Reply | None:
        """What ``key`` holds, if it has not expired."""
        held = await self._log.with_retry(lambda: self._log.client.get(self._keys.reply(key)))
        return None if held is None else msgspec.json.decode(held, type=Reply)

    async def finish(self, key: str, reply: Reply, ttl: float) -> None:
        """Keep the reply ``ttl`` seconds."""
        data = msgspec.json.encode(reply)
        await self._log.with_retry(lambda: self._log.client.set(self._keys.reply(key), data, px=int(ttl * 1000)))

    async def drop(self, key: str) -> None:
        """Forget the key."""
        await self._log.with_retry(lambda: self._log.client.delete(self._keys.reply(key)))
