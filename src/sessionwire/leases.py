"""Several processes on one Redis: runtime leases, dead owners' work, commands routed to owners.

Each process's runtime is a :class:`Cluster` member with an owner id. It holds a
lease, a Redis key with a TTL that it renews every third of the lease time, and
is the ``Ownership`` the runtime asks at start-up: an owner is alive while its
lease exists, so a starting process never interrupts work of a live one.

Every member also watches the others: the Redis log indexes, with the records
that start them, which owners started work in which sessions. A member that finds
an owner's lease gone claims the clean-up (one claim per dead owner, also against
a member's start-up recovery, so one member writes the terminals), brings each
of that owner's sessions up to date from the log and appends the terminals
recovery computes (``turn.interrupted``, ``job.interrupted``,
expired approvals). Subscribers on every process then see the work end, at most
about 1.25 lease times after the owner died. Keys expire at absolute times, so
leases can lapse in a Redis outage (or restart): a member that saw Redis fail
waits a lease time before it ends anyone's work, and live owners take their
leases again meanwhile.

A member also ends its own work that could not write its end: when Redis stays
unreachable longer than the log's ``retry_for``, appends fail with ``LogUnavailable``
and the work stops, its terminal unwritten; once Redis is back, the member writes
``turn.failed``/``job.failed`` (code ``log_unavailable``) for it.

Commands (cancel a turn or job, resolve an approval) reach the process that runs
the work, whichever process got the HTTP call (see :mod:`sessionwire.commands`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import events as ev
from .commands import Commands, RoutedRuntime
from .errors import Conflict, CursorExpired, LogClosed
from .runtime.recovery import close_left_open
from .state import SessionState

if TYPE_CHECKING:
    from .hub import Hub
    from .log.redis import RedisLog
    from .runtime import Runtime

__all__ = ["Cluster", "RoutedRuntime"]

logger = logging.getLogger("sessionwire.leases")

_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)


class Cluster:
    """This process's membership: its lease, the watch over the others', its command inbox.

    Get one with :meth:`open`; don't build it yourself.

    Args:
        hub: The hub over a Redis log.
        lease: Seconds an owner stays alive without renewing its lease.
        owner: This process's runtime owner id (default: random).
        command_timeout: Seconds to wait for another process to answer a command.
    """

    def __init__(self, hub: Hub, log: RedisLog, lease: float, owner: str | None, command_timeout: float) -> None:
        if lease <= 0:
            raise ValueError(f"the lease is > 0 seconds, not {lease}")
        self.hub = hub
        self.log = log
        self.lease = lease
        self.owner = owner or "rt_" + secrets.token_hex(6)
        self.command_timeout = command_timeout
        self.reaped: dict[str, list[str]] = {}
        self.commands = Commands(log, self.owner, command_timeout)
        self._renewed = False
        self._former = False  # ending the work a former process with this owner id left open
        self._trouble = -float("inf")  # when this member last saw Redis fail

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        hub: Hub,
        lease: float = 10.0,
        owner: str | None = None,
        command_timeout: float = 30.0,
    ) -> AsyncIterator[Cluster]:
        """Take the lease, start renewing it, watching the others and listening for commands."""
        from .log.redis import RedisLog

        if not isinstance(hub.log, RedisLog):
            raise TypeError(f"a cluster needs a Redis log, not {type(hub.log).__name__}")
        member = cls(hub, hub.log, lease, owner, command_timeout)
        await member._take_over()
        await member._renew()
        pubsub = member.log.client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(*member.commands.channels)
        loops = [
            asyncio.create_task(member._keep_lease(), name=f"sessionwire lease {member.owner}"),
            asyncio.create_task(member._watch(), name="sessionwire lease watch"),
            asyncio.create_task(member.commands.listen(pubsub), name="sessionwire commands"),
        ]
        try:
            yield member
        finally:
            for task in loops + list(member.commands.tasks):
                task.cancel()
            await asyncio.gather(*loops, *member.commands.tasks, return_exceptions=True)
            with contextlib.suppress(*_TRANSIENT):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            await member._release()

    def route(self, runtime: Runtime) -> RoutedRuntime:
        """``runtime`` with its commands routed to whichever process runs the work."""
        self.commands.runtime = runtime
        return RoutedRuntime(runtime, self.commands)

    # ------------------------------------------------------------------ leases

    def _lease_key(self, owner: str) -> str:
        return f"{self.log.prefix}:lease:{owner}"

    async def is_owner_alive(self, owner: str) -> bool:
        """Whether ``owner``'s work must be left alone: it is alive, or another member ends it.

        An owner is alive while it holds its lease. The work of a dead one is ended by
        the member that claims its clean-up, once: for the others it counts as alive.
        """
        if owner == self.owner:
            return not self._former
        if await self.log.client.exists(self._lease_key(owner)):
            return True
        if await self._in_grace():
            return True  # its lease may have lapsed in an outage: it gets a lease time to take it again
        return not await self._claim(owner)

    async def _in_grace(self) -> bool:
        """Whether leases may be missing for a lost while rather than a dead owner.

        Within a lease time of an outage this member saw, or half of one of a Redis (re)start: keys
        expire at absolute times, so an outage longer than a lease drops the leases of
        live owners too, and a member that starts just after it saw nothing fail.
        """
        if asyncio.get_running_loop().time() - self._trouble < self.lease:
            return True
        # Live owners renew every third of a lease: half a lease after a restart they have.
        info = await self.log.client.info("server")
        return float(info.get("uptime_in_seconds", self.lease)) < self.lease / 2

    async def _claim(self, owner: str) -> bool:
        """Claim the clean-up of dead ``owner``: True if it is (or already was) this member's."""
        held = await self.log.client.set(
            f"{self.log.prefix}:reaping:{owner}", self.owner, nx=True, get=True, px=int(self.lease * 4000)
        )
        return held is None or (isinstance(held, (bytes, str)) and _text(held) == self.owner)

    async def _take_over(self) -> None:
        """Before taking the lease: end the work a former process with this owner id left open.

        A process restarted with a fixed owner id would otherwise count its predecessor's
        work as its own, alive, and so would every other member: it would never end.

        Raises:
            Conflict: another live process renews this owner id's lease.
        """
        client, loop = self.log.client, asyncio.get_running_loop()
        deadline = loop.time() + self.lease * 1.5
        while await client.exists(self._lease_key(self.owner)):
            if loop.time() > deadline:
                raise Conflict(f"runtime owner {self.owner!r} is in use: another process renews its lease")
            await asyncio.sleep(min(self.lease / 10, 0.05))  # a killed process's lease lapses within a lease
        if not await client.sismember(self.log.owners_key, self.owner):
            return
        self._former = True
        try:
            await self._reap(self.owner)
            # Another member may have claimed it first: its clean-up must see the lease gone.
            while await client.sismember(self.log.owners_key, self.owner):
                if loop.time() > deadline + self.lease * 4:
                    break
                await asyncio.sleep(min(self.lease / 10, 0.05))
        finally:
            self._former = False
        await client.delete(f"{self.log.prefix}:reaping:{self.owner}")

    async def _renew(self) -> None:
        if not await self.log.client.set(self._lease_key(self.owner), "1", px=int(self.lease * 1000), xx=True):
            # First time, or it lapsed (a stall or an outage longer than the lease): take it again.
            await self.log.client.set(self._lease_key(self.owner), "1", px=int(self.lease * 1000))
            if self._renewed:
                self._trouble = asyncio.get_running_loop().time()
        self._renewed = True

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self._renew()
            except _TRANSIENT as exc:
                self._trouble = asyncio.get_running_loop().time()
                logger.warning("runtime %s could not renew its lease: %s", self.owner, exc)

    async def _release(self) -> None:
        # Our work is ended (the runtime closed first): nothing is left to recover.
        with contextlib.suppress(*_TRANSIENT):
            async with self.log.client.pipeline(transaction=True) as pipe:
                pipe.delete(self._lease_key(self.owner), self.log.owned_key(self.owner))
                pipe.srem(self.log.owners_key, self.owner)
                await pipe.execute()

    # ------------------------------------------------------------------ the watch over the others

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4)
            try:
                await self.check()
                await self.close_unwritten()
            except (*_TRANSIENT, LogClosed) as exc:
                self._trouble = asyncio.get_running_loop().time()
                logger.warning("runtime %s could not check the runtimes' work: %s", self.owner, exc)
            except Exception:
                logger.exception("runtime %s failed to end a dead runtime's work", self.owner)

    async def close_unwritten(self) -> None:
        """Fail this runtime's work whose own terminal could not be written (the log was unreachable).

        Work that ended while Redis was down (longer than the log's ``retry_for``) could not
        append its terminal; once Redis is back, this writes ``turn.failed``/``job.failed``
        for it, so no subscriber is left with work that never ends.
        """
        runtime = self.commands.runtime
        if runtime is None:
            return
        for session_id in list(self.log.unwritten):
            session = await self.hub.session(session_id)
            with contextlib.suppress(CursorExpired):
                session.deliver(await self.log.read(session_id, session.last_seq))
            state = await session.state()
            mine = [t.id for t in state.turns.values() if t.status == "running" and t.owner == self.owner]
            mine += [j.id for j in state.jobs.values() if j.status == "running" and j.owner == self.owner]
            lost = {w for w in mine if not runtime.runs(session_id, w)}
            if lost:
                await session.publish_many(_failing(state, lost))
            if len(lost) == len(mine):
                # Else some work still runs: it may yet fail to write its end; look again later.
                self.log.unwritten.discard(session_id)

    async def check(self) -> list[str]:
        """End the work of every owner whose lease is gone; the owners this member cleaned up.

        Not within a lease time of an outage this member saw, nor just after a Redis restart: the
        other owners' leases may have lapsed in it, and they get that long to take them again.
        """
        if await self._in_grace():
            return []
        client = self.log.client
        owners = sorted(_text(o) for o in await client.smembers(self.log.owners_key))
        others = [o for o in owners if o != self.owner]
        if not others:
            return []
        async with client.pipeline(transaction=False) as pipe:
            for owner in others:
                pipe.exists(self._lease_key(owner))
            alive = await pipe.execute()
        reaped = []
        for owner, live in zip(others, alive):
            if live:
                continue
            if not await self._claim(owner):
                continue  # another member cleans it up
            await self._reap(owner)
            reaped.append(owner)
        return reaped

    async def _reap(self, owner: str) -> None:
        client = self.log.client
        for raw in await client.smembers(self.log.owned_key(owner)):
            session_id = _text(raw)
            # A long clean-up keeps its claim: were it to lapse, a second member would
            # start on the same sessions and write their terminals again.
            if not await self._claim(owner):
                return
            await client.pexpire(f"{self.log.prefix}:reaping:{owner}", int(self.lease * 4000))
            was_open = self.hub.open_session(session_id) is not None
            session = await self.hub.session(session_id)
            # Everything the dead owner appended, even what the bridge has not brought yet.
            with contextlib.suppress(CursorExpired):
                session.deliver(await self.log.read(session_id, session.last_seq))
            # Also the turns it had admitted (queued) but not started: its marks name them.
            if await close_left_open(self.hub, session, self):
                self.reaped.setdefault(owner, []).append(session_id)
            await client.srem(self.log.owned_key(owner), session_id)
            if not was_open and session.idle:
                await self.hub.evict(session_id)
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(self.log.owned_key(owner))
            pipe.srem(self.log.owners_key, owner)
            await pipe.execute()
        logger.warning("runtime %s ended the open work of runtime %s, whose lease expired", self.owner, owner)

    # ------------------------------------------------------------------ commands


UNWRITTEN = "the event log (Redis) was unreachable, so this work could not go on"


def _failing(state: SessionState, lost: set[str]) -> list[ev.Event]:
    """``*.failed`` for the lost turns and jobs, after expiring the approvals they waited on."""
    out: list[ev.Event] = [
        ev.ApprovalResolved(approval=a.id, decision="expired", turn=a.turn, job=a.job)
        for a in state.approvals.values()
        if a.status == "pending" and (a.turn in lost or a.job in lost)
    ]
    out += [ev.TurnFailed(turn=t, error=UNWRITTEN, code="log_unavailable") for t in lost if t in state.turns]
    out += [ev.JobFailed(job=j, error=UNWRITTEN, code="log_unavailable") for j in lost if j in state.jobs]
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
