"""Leases on Redis: an owner is alive while its key ``<p>:lease:<owner>`` (with a TTL) exists.

The owners' index (``<p>:owners``, ``<p>:owned:<owner>``) is written by the log's append
script with the records that start work, so a process that dies right after
starting work still has it found. The claim on a dead owner's clean-up is a key
set with ``NX`` and a TTL of four leases, renewed while the clean-up goes on.
"""

from __future__ import annotations

import logging
from typing import Any

from ...errors import LogUnavailable
from .log import TRANSIENT, RedisLog

__all__ = ["RedisMembership"]

logger = logging.getLogger("sessionwire.backends.redis")

_FENCE_MS = 7 * 86400 * 1000  # a fenced runtime that stalls longer than a week may append again


# KEYS: the line. ARGV: the entry, 1 for "only into an empty line". Returns {entered, ahead...}.
_ENTER = """
local ahead = redis.call('LRANGE', KEYS[1], 0, -1)
if ARGV[2] == '1' and #ahead > 0 then
  table.insert(ahead, 1, 0)
  return ahead
end
redis.call('RPUSH', KEYS[1], ARGV[1])
table.insert(ahead, 1, 1)
return ahead
"""


# KEYS: lease, generation, fenced. ARGV: ttl ms. Fences the last generation unless the lease is held.
_FENCE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local g = tonumber(redis.call('GET', KEYS[2]) or '0')
local f = tonumber(redis.call('GET', KEYS[3]) or '0')
redis.call('SET', KEYS[3], string.format('%.0f', math.max(g, f)), 'PX', ARGV[1])
return 1
"""

# KEYS: lease, generation. ARGV: lease ms, generation ttl ms. Extends the lease, or takes it with
# a new generation; returns the generation.
_RENEW = """
local g = tonumber(redis.call('GET', KEYS[2]) or '0')
if g == 0 or not redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'XX') then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
  g = redis.call('INCR', KEYS[2])
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return g
"""


class RedisMembership:
    """Leases and the owners' index of one Redis store.

    Args:
        log: The store's log (its client and keys).
        lease: Seconds a lease lasts without being renewed.
    """

    def __init__(self, log: RedisLog, lease: float = 10.0) -> None:
        if lease <= 0:
            raise ValueError(f"lease must be > 0 seconds, not {lease}")
        self.lease = lease
        self._log = log
        self._keys = log.keys
        self._enter = log.client.register_script(_ENTER)
        self._fence = log.client.register_script(_FENCE)
        self._renew = log.client.register_script(_RENEW)

    async def renew(self, owner: str) -> int:
        """Extend ``owner``'s lease, or take it with a new generation if it was not held; the generation."""
        keys = [self._keys.lease(owner), self._keys.generation(owner)]
        return int(await self._renew(keys=keys, args=[int(self.lease * 1000), _FENCE_MS]))

    async def held(self, owner: str) -> bool:
        """Whether ``owner``'s lease key exists; LogUnavailable if Redis does not answer (no retry)."""
        try:
            return bool(await self._log.client.exists(self._keys.lease(owner)))
        except TRANSIENT as exc:
            raise LogUnavailable(f"redis at {self._log.url} is unreachable: {exc}") from exc

    async def release(self, owner: str) -> None:
        """Drop the lease, the index and the owner's place among the owners, in one transaction."""
        try:
            async with self._log.client.pipeline(transaction=True) as pipe:
                pipe.delete(self._keys.lease(owner), self._keys.owned(owner))
                pipe.srem(self._keys.owners, owner)
                await pipe.execute()
        except TRANSIENT as exc:
            # Its lease lapses by itself; a survivor then finds nothing left open in its index.
            logger.warning("runtime %s could not release its lease: %s", owner, exc)

    async def owners(self) -> list[str]:
        """Owners with indexed work, sorted."""
        return sorted(_text(o) for o in await self._log.client.smembers(self._keys.owners))

    async def owned(self, owner: str) -> list[str]:
        """Sessions where ``owner`` started work, sorted."""
        return sorted(_text(s) for s in await self._log.client.smembers(self._keys.owned(owner)))

    async def forget(self, owner: str, session: str | None = None) -> None:
        """Drop a session from ``owner``'s index, or the owner with its whole index."""
        client = self._log.client
        if session is not None:
            await client.srem(self._keys.owned(owner), session)
            return
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.owned(owner))
            pipe.srem(self._keys.owners, owner)
            await pipe.execute()

    async def claim(self, owner: str, by: str) -> bool:
        """Claim the clean-up of ``owner`` for ``by`` (or extend ``by``'s claim); True if it is ``by``'s."""
        key, ms = self._keys.reaping(owner), int(self.lease * 4000)
        held = await self._log.client.set(key, by, nx=True, get=True, px=ms)
        if held is None:
            return True
        if not isinstance(held, (bytes, str)) or _text(held) != by:
            return False
        # A long clean-up keeps its claim: were it to lapse, another member would start over.
        await self._log.client.pexpire(key, ms)
        return True

    async def unclaim(self, owner: str) -> None:
        """Drop the claim on ``owner``'s clean-up."""
        await self._log.client.delete(self._keys.reaping(owner))

    async def restarted(self) -> bool:
        """Whether Redis has been up for less than half a lease (live owners renew every third of one)."""
        info = await self._log.client.info("server")
        return float(info.get("uptime_in_seconds", self.lease)) < self.lease / 2

    async def fence(self, owner: str) -> bool:
        """Fence ``owner``'s generations so far, atomically, unless its lease is held (kept a week)."""
        keys = [self._keys.lease(owner), self._keys.generation(owner), self._keys.fenced(owner)]
        return bool(await self._log.with_retry(lambda: self._fence(keys=keys, args=[_FENCE_MS])))

    async def enter(self, session: str, turn: str, owner: str, alone: bool = False) -> list[tuple[str, str]] | None:
        """Put a turn at the end of its session's line, atomically; the entries ahead (see the protocol)."""
        entry, keys = f"{turn}\t{owner}", [self._keys.line(session)]
        tries = 0

        async def call() -> list[Any]:
            nonlocal tries
            tries += 1
            if tries > 1:
                line = [_text(e) for e in await self._log.client.lrange(keys[0], 0, -1)]
                if entry in line:  # the first try went in (its answer was lost): not twice
                    return [1, *line[: line.index(entry)]]
            return list(await self._enter(keys=keys, args=[entry, int(alone)]))

        reply = await self._log.with_retry(call)
        ahead = [_entry(e) for e in reply[1:] if _text(e) != entry]
        if alone:
            return None if int(reply[0]) else ahead
        return ahead

    async def line(self, session: str) -> list[tuple[str, str]]:
        """The session's turn line, the running turn first."""
        return [
            _entry(e)
            for e in await self._log.with_retry(lambda: self._log.client.lrange(self._keys.line(session), 0, -1))
        ]

    async def leave(self, session: str, turn: str) -> None:
        """Take a turn out of its session's line."""
        key = self._keys.line(session)
        for entry in await self._log.with_retry(lambda: self._log.client.lrange(key, 0, -1)):
            if _entry(entry)[0] == turn:
                await self._log.with_retry(lambda e=entry: self._log.client.lrem(key, 0, e))


def _entry(value: bytes | str) -> tuple[str, str]:
    turn, _, owner = _text(value).partition("\t")
    return turn, owner


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
