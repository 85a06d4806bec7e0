"""The trivial parts of a store that serves one process (``memory://``, ``sqlite:///``).

Every record is appended in this process, so there is no feed to bring other
processes' records, and a command has no other process to go to. The owners'
index is kept in memory by the log as it appends, so it names only owners whose
work started in this process: they are all alive (a runtime, a producer
publishing records) until released. An owner is alive while it holds a lease or
is in the index; the owners of work a former process left open are neither, and
start-up recovery ends their work (see :mod:`sessionwire.runtime.recovery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from ..errors import Fenced
from ..events import Event, event_owner
from .base import Command, CommandHandler, FeedTarget, Fence, Reply, SessionMeta

__all__ = ["LocalCommandBus", "LocalFeed", "LocalMembership", "MemoryReplies", "OwnerIndex", "update_meta_here"]


async def update_meta_here(
    locks: weakref.WeakValueDictionary[str, asyncio.Lock],
    get: Callable[[str], Awaitable[SessionMeta | None]],
    replace: Callable[[SessionMeta], Awaitable[bool]],
    session: str,
    change: Callable[[SessionMeta], object],
) -> SessionMeta | None:
    """``update_meta`` of a log one process writes: one read-modify-write per session at a time.

    ``replace`` stores the metadata only if the session still has some (False if it was deleted
    meanwhile: a change never brings a deleted session back).
    """
    lock = locks.get(session)
    if lock is None:
        lock = locks[session] = asyncio.Lock()
    async with lock:
        meta = await get(session)
        if meta is None or change(meta) is False:
            return meta
        return meta if await replace(meta) else None


class OwnerIndex:
    """Which owners started work in which sessions, noted by a local log as it appends."""

    def __init__(self) -> None:
        self._owned: dict[str, set[str]] = {}
        self.generations: dict[str, int] = {}
        """Each owner's last lease generation."""
        self.fenced: dict[str, int] = {}
        """Each fenced owner's fenced generation: the log refuses its appends up to it."""

    def check(self, fence: Fence | None) -> None:
        """Raise Fenced if ``fence``'s owner was fenced at its generation (or a later one)."""
        if fence is not None and fence.generation > 0 and self.fenced.get(fence.owner, 0) >= fence.generation:
            raise Fenced(f"runtime {fence.owner} was taken over: its generation {fence.generation} may not append")

    def note(self, session: str, events: Sequence[Event]) -> None:
        """Index the owners that ``events`` name (cheap for events that name none)."""
        for event in events:
            owner = event_owner(event)
            if owner:
                self._owned.setdefault(owner, set()).add(session)

    def owners(self) -> list[str]:
        """Owners with indexed work, sorted."""
        return sorted(self._owned)

    def owned(self, owner: str) -> list[str]:
        """Sessions where ``owner`` started work, sorted."""
        return sorted(self._owned.get(owner, ()))

    def __contains__(self, owner: object) -> bool:
        return owner in self._owned

    def forget(self, owner: str, session: str | None = None) -> None:
        """Drop a session from ``owner``'s index, or the owner with its whole index."""
        if session is None:
            self._owned.pop(owner, None)
            return
        sessions = self._owned.get(owner)
        if sessions is not None:
            sessions.discard(session)

    def drop_session(self, session: str) -> None:
        """Take a deleted session out of every owner's index."""
        for sessions in self._owned.values():
            sessions.discard(session)


class LocalFeed:
    """No other process appends: the channels get every record from their own publishes."""

    lag = 0.0
    """Never behind."""

    def watch(self, target: FeedTarget) -> None:
        """Nothing to feed."""

    def unwatch(self, session: str) -> None:
        """Nothing to stop."""

    async def aclose(self) -> None:
        """Nothing to release."""


class LocalMembership:
    """Leases held in this process's memory: an owner is alive while this process holds its lease.

    Args:
        index: The local log's index of owners' work.
        lease: Seconds a lease lasts (local leases never lapse; kept for the interface).
    """

    def __init__(self, index: OwnerIndex, lease: float = 10.0) -> None:
        if lease <= 0:
            raise ValueError(f"lease must be > 0 seconds, not {lease}")
        self.lease = lease
        self._index = index
        self._leases: set[str] = set()
        self._claims: dict[str, str] = {}
        self._lines: dict[str, list[tuple[str, str]]] = {}

    async def renew(self, owner: str) -> int:
        """Take or extend ``owner``'s lease; its generation (a new one when it was not held)."""
        generations = self._index.generations
        if owner not in self._leases or owner not in generations:
            self._leases.add(owner)
            generations[owner] = generations.get(owner, 0) + 1
        return generations[owner]

    async def held(self, owner: str) -> bool:
        """Whether ``owner`` holds a lease, or started work in this process and was not released."""
        return owner in self._leases or owner in self._index

    async def owners(self) -> list[str]:
        """Owners with indexed work, sorted."""
        return self._index.owners()

    async def owned(self, owner: str) -> list[str]:
        """Sessions where ``owner`` started work, sorted."""
        return self._index.owned(owner)

    async def forget(self, owner: str, session: str | None = None) -> None:
        """Drop a session from ``owner``'s index, or the owner with its whole index."""
        self._index.forget(owner, session)

    async def claim(self, owner: str, by: str) -> bool:
        """Claim the clean-up of ``owner`` for ``by``; True if it is ``by``'s."""
        return self._claims.setdefault(owner, by) == by

    async def unclaim(self, owner: str) -> None:
        """Drop the claim on ``owner``'s clean-up."""
        self._claims.pop(owner, None)

    async def release(self, owner: str) -> None:
        """Drop ``owner``'s lease, its index and any claim on it."""
        self._leases.discard(owner)
        self._index.forget(owner)
        self._claims.pop(owner, None)

    async def restarted(self) -> bool:
        """Never: the leases live as long as this process."""
        return False

    async def fence(self, owner: str) -> bool:
        """Fence ``owner`` up to its last generation, unless it holds its lease."""
        if owner in self._leases:
            return False
        fenced = self._index.fenced
        fenced[owner] = max(fenced.get(owner, 0), self._index.generations.get(owner, 0))
        return True

    async def enter(self, session: str, turn: str, owner: str, alone: bool = False) -> list[tuple[str, str]] | None:
        """Put a turn at the end of its session's line; the entries ahead (``alone``: None if it entered)."""
        line = self._lines.setdefault(session, [])
        ahead = list(line)
        if alone and ahead:
            return ahead
        line.append((turn, owner))
        return None if alone else ahead

    async def line(self, session: str) -> list[tuple[str, str]]:
        """The session's turn line, the running turn first."""
        return list(self._lines.get(session, ()))

    async def leave(self, session: str, turn: str) -> None:
        """Take a turn out of its session's line."""
        line = [entry for entry in self._lines.get(session, ()) if entry[0] != turn]
        if line:
            self._lines[session] = line
        else:
            self._lines.pop(session, None)


class LocalCommandBus:
    """No other process runs work: every command is answered "nobody runs it" at once."""

    async def send(self, command: Command) -> bool:
        """False: no other process could carry it out."""
        return False

    @contextlib.asynccontextmanager
    async def serve(self, handler: CommandHandler) -> AsyncIterator[None]:
        """No command comes from elsewhere."""
        yield

    async def aclose(self) -> None:
        """Nothing to release."""


class MemoryReplies:
    """Replies kept in this process's memory (``memory://``): the newest ``capacity``, until they expire.

    Args:
        capacity: Keys kept at most (the oldest go first).
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[str, tuple[Reply, float]] = OrderedDict()

    async def claim(self, key: str, fingerprint: str, hold: float) -> Reply | None:
        """Claim ``key`` (None), or what it holds."""
        held = await self.get(key)
        if held is not None:
            return held
        self._put(key, Reply(fingerprint=fingerprint), hold)
        return None

    async def get(self, key: str) -> Reply | None:
        """What ``key`` holds, if it has not expired."""
        held = self._keys.get(key)
        if held is None:
            return None
        if held[1] <= time.monotonic():
            del self._keys[key]
            return None
        return held[0]

    async def finish(self, key: str, reply: Reply, ttl: float) -> None:
        """Keep the reply ``ttl`` seconds."""
        self._put(key, reply, ttl)

    async def drop(self, key: str) -> None:
        """Forget the key."""
        self._keys.pop(key, None)

    def _put(self, key: str, reply: Reply, ttl: float) -> None:
        self._keys[key] = (reply, time.monotonic() + ttl)
        self._keys.move_to_end(key)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)
