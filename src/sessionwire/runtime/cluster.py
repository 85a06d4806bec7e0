"""A runtime among the processes sharing a store: its lease, and the end of dead owners' work.

Each process's runtime is a :class:`Cluster` member with an owner id. It holds a
lease in the store's :class:`~sessionwire.backends.Membership`, renewed every third
of the lease time, and is the ``Ownership`` the runtime asks at start-up: an owner
is alive while its lease is held, so a starting process never interrupts work of a
live one.

Every member also watches the others: the log indexes, with the records that
start them, which owners started work in which sessions. A member that finds an
owner's lease gone claims the clean-up (one claim per dead owner, also against a
member's start-up recovery, so one member writes the terminals), brings each of
that owner's sessions up to date from the log and appends the terminals recovery
computes (``turn.interrupted``, ``job.interrupted``, expired approvals).
Subscribers on every process then see the work end, at most about 1.25 lease
times after the owner died. Leases can lapse in an outage of the store (or its
restart): a member that saw the store fail waits a lease time before it ends
anyone's work, and live owners take their leases again meanwhile.

A member also ends its own work that could not write its end: when the store
stays unreachable longer than its retry window, appends fail with
``LogUnavailable`` and the work stops, its terminal unwritten; once the store is
back, the member writes ``turn.failed``/``job.failed`` (code ``log_unavailable``).

With a store of one process (``memory://``, ``sqlite:///``) the same code runs on
the local membership: every other owner is dead, as start-up recovery assumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from .. import events as ev
from ..backends import Fence
from ..errors import Conflict, CursorExpired, LifecycleViolation
from ..hub import Hub
from ..state import SessionState
from .api import AgentRuntime
from .recovery import close_left_open
from .routed import RoutedRuntime

__all__ = ["Cluster"]

logger = logging.getLogger("sessionwire.runtime.cluster")


class Cluster:
    """This process's membership: its lease and the watch over the others'.

    Get one with :meth:`open`; don't build it yourself.

    Args:
        hub: The hub over the shared store.
        owner: This process's runtime owner id (default: random).
    """

    def __init__(self, hub: Hub, owner: str | None = None) -> None:
        self.hub = hub
        self.membership = hub.store.membership
        self.lease = self.membership.lease
        self.owner = owner or "rt_" + secrets.token_hex(6)
        self.reaped: dict[str, list[str]] = {}
        """The sessions this member cleaned up, by dead owner."""
        self.runtime: AgentRuntime | None = None
        """The runtime whose work this member ends when its end could not be written (see :meth:`route`)."""
        self._renewed = False
        self.generation = 0
        """The generation of this member's lease: its work appends with it (see :meth:`fence`)."""
        self._former = False  # ending the work a former process with this owner id left open
        self._trouble = -float("inf")  # when this member last saw the store fail
        self._checking = asyncio.Lock()  # one check at a time: its own claims would let a second reap too

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, hub: Hub, owner: str | None = None) -> AsyncIterator[Cluster]:
        """Take the lease, then keep renewing it and watching the others until the context ends."""
        member = cls(hub, owner)
        await member._take_over()
        await member._renew()
        loops = [
            asyncio.create_task(member._keep_lease(), name=f"sessionwire lease {member.owner}"),
            asyncio.create_task(member._watch(), name="sessionwire lease watch"),
        ]
        try:
            yield member
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            # Our work is ended (the runtime closed first): nothing is left to recover.
            await member.membership.release(member.owner)

    @contextlib.asynccontextmanager
    async def route(self, runtime: AgentRuntime) -> AsyncIterator[RoutedRuntime]:
        """``runtime`` with its commands routed to whichever process runs the work, while the context is open.

        Also carries out the other processes' commands with it.
        """
        routed = RoutedRuntime(runtime, self.hub.store.commands)
        self.runtime = runtime
        try:
            async with self.hub.handling(routed.carry_out):
                yield routed
        finally:
            self.runtime = None

    # ------------------------------------------------------------------ leases

    async def is_owner_alive(self, owner: str) -> bool:
        """Whether ``owner``'s work must be left alone: it is alive, or another member ends it.

        An owner is alive while it holds its lease. The work of a dead one is ended by
        the member that claims its clean-up, once: for the others it counts as alive.
        """
        if owner == self.owner:
            return not self._former
        if await self.membership.held(owner):
            return True
        if await self._in_grace():
            return True  # its lease may have lapsed in an outage: it gets a lease time to take it again
        if not await self.membership.claim(owner, self.owner):
            return True  # another member ends its work
        if not await self.membership.fence(owner):
            await self.membership.unclaim(owner)
            return True  # it took its lease again meanwhile
        return False  # fenced: it cannot write after the ends the caller writes now

    async def _in_grace(self) -> bool:
        """Whether leases may be missing for a lost while rather than a dead owner.

        Within a lease time of an outage this member saw, or half of one of a store's (re)start:
        leases expire at absolute times, so an outage longer than a lease drops the leases of
        live owners too, and a member that starts just after it saw nothing fail.
        """
        if asyncio.get_running_loop().time() - self._trouble < self.lease:
            return True
        return await self.membership.restarted()

    async def _take_over(self) -> None:
        """Before taking the lease: end the work a former process with this owner id left open.

        A process restarted with a fixed owner id would otherwise count its predecessor's
        work as its own, alive, and so would every other member: it would never end.

        Raises:
            Conflict: another live process renews this owner id's lease.
        """
        membership, loop = self.membership, asyncio.get_running_loop()
        deadline = loop.time() + self.lease * 1.5
        while await membership.held(self.owner):
            if loop.time() > deadline:
                raise Conflict(f"runtime owner {self.owner!r} is in use: another process renews its lease")
            await asyncio.sleep(min(self.lease / 10, 0.05))  # a killed process's lease lapses within a lease
        if self.owner not in await membership.owners():
            return
        self._former = True
        try:
            await self._reap(self.owner)
            # Another member may have claimed it first: its clean-up must see the lease gone.
            while self.owner in await membership.owners():
                if loop.time() > deadline + self.lease * 4:
                    break
                await asyncio.sleep(min(self.lease / 10, 0.05))
        finally:
            self._former = False
        await membership.unclaim(self.owner)

    def fence(self) -> Fence:
        """The fence of the work this member's runtime starts now: its owner and lease generation."""
        return Fence(self.owner, self.generation)

    async def _renew(self) -> None:
        generation = await self.membership.renew(self.owner)
        if generation != self.generation:
            # Taken (first, or again after it lapsed in a stall or an outage longer than the
            # lease): a new generation. Work started before may have been fenced meanwhile.
            if self._renewed:
                self._trouble = asyncio.get_running_loop().time()
            self.generation = generation
        self._renewed = True

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self._renew()
            except Exception as exc:
                self._trouble = asyncio.get_running_loop().time()
                logger.warning("runtime %s could not renew its lease: %s", self.owner, exc)

    # ------------------------------------------------------------------ the watch over the others

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4)
            try:
                await self.check()
                await self.close_unwritten()
            except Exception as exc:
                self._trouble = asyncio.get_running_loop().time()
                logger.warning("runtime %s could not end the runtimes' open work: %r", self.owner, exc, exc_info=True)

    async def close_unwritten(self) -> None:
        """Fail this runtime's work whose own terminal could not be written (the store was unreachable).

        Work that ended while the store was down (longer than its retry window) could not
        append its terminal; once the store is back, this writes ``turn.failed``/``job.failed``
        for it, so no subscriber is left with work that never ends.
        """
        runtime, log = self.runtime, self.hub.log
        if runtime is None:
            return
        for session_id in list(log.unwritten):
            session = await self.hub.session(session_id)
            with contextlib.suppress(CursorExpired):
                session.deliver(await log.read(session_id, session.last_seq))
            state = await session.state()
            mine = [t.id for t in state.turns.values() if t.status == "running" and t.owner == self.owner]
            mine += [j.id for j in state.jobs.values() if j.status == "running" and j.owner == self.owner]
            lost = {w for w in mine if not runtime.runs(session_id, w)}
            if lost:
                try:
                    await session.publish_many(_failing(state, lost))
                except LifecycleViolation as exc:  # ended meanwhile by another member: nothing to do
                    logger.warning("runtime %s left the ends in session %s to others: %s", self.owner, session_id, exc)
            if len(lost) == len(mine):
                # Else some work still runs: it may yet fail to write its end; look again later.
                log.unwritten.discard(session_id)

    async def check(self) -> list[str]:
        """End the work of every owner whose lease is gone; the owners this member cleaned up.

        Not within a lease time of an outage this member saw, nor just after the store restarted:
        the other owners' leases may have lapsed in it, and they get that long to take them again.
        """
        async with self._checking:
            return await self._check()

    async def _check(self) -> list[str]:
        if await self._in_grace():
            return []
        reaped = []
        for owner in await self.membership.owners():
            if owner == self.owner or await self.membership.held(owner):
                continue
            if not await self.membership.claim(owner, self.owner):
                continue  # another member cleans it up
            await self._reap(owner)
            reaped.append(owner)
        return reaped

    async def _reap(self, owner: str) -> None:
        membership, hub = self.membership, self.hub
        # First, so that it cannot write after the ends written here, should it come back.
        if not await membership.fence(owner):
            logger.warning("runtime %s came back before %s ended its work: left alone", owner, self.owner)
            await membership.unclaim(owner)
            return
        for session_id in await membership.owned(owner):
            # A long clean-up keeps its claim: were it to lapse, a second member would
            # start on the same sessions and write their terminals again.
            if not await membership.claim(owner, self.owner):
                return
            was_open = hub.open_session(session_id) is not None
            session = await hub.session(session_id)
            # Everything the dead owner appended, even what the live feed has not brought yet.
            with contextlib.suppress(CursorExpired):
                session.deliver(await hub.log.read(session_id, session.last_seq))
            # Also the turns it had admitted (queued) but not started: its marks name them.
            try:
                if await close_left_open(hub, session, self):
                    self.reaped.setdefault(owner, []).append(session_id)
            except LifecycleViolation:
                # The log refuses these ends (another member wrote them meanwhile, or the
                # session's records can't be closed): trying again would not change that.
                logger.exception("runtime %s could not end %s's work in session %s", self.owner, owner, session_id)
            await membership.forget(owner, session_id)
            if not was_open and session.idle:
                await hub.evict(session_id)
        await membership.forget(owner)
        logger.warning("runtime %s ended the open work of runtime %s, whose lease expired", self.owner, owner)


UNWRITTEN = "the event log was unreachable, so this work could not go on"


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
