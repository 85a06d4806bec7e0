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
the work, whichever process got the HTTP call: :class:`RoutedRuntime` tries its
own runtime first and, when that does not run it, asks every other member over
a pub/sub channel; the owner acts and answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import events as ev
from .errors import Conflict, CursorExpired, LogClosed, NotFound
from .runtime.recovery import close_left_open
from .state import SessionState

if TYPE_CHECKING:
    from .hub import Hub
    from .log.redis import RedisLog
    from .runtime import Runtime

__all__ = ["Cluster", "RoutedRuntime"]

logger = logging.getLogger("sessionwire.leases")

_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)
Op = Literal["cancel_turn", "cancel_job", "resolve_approval"]


class _Command(msgspec.Struct, frozen=True):
    id: str
    origin: str
    op: Op
    session: str
    target: str
    decision: str | None = None
    by: str | None = None


class _Answer(msgspec.Struct, frozen=True):
    id: str
    ok: bool
    error: str | None = None


class _Pending:
    __slots__ = ("expected", "future", "misses")

    def __init__(self, future: asyncio.Future[bool]) -> None:
        self.future = future
        self.expected: int | None = None
        self.misses = 0


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
        self._runtime: Runtime | None = None
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._renewed = False
        self._trouble = -float("inf")  # when this member last saw Redis fail
        self._commands = f"{log.prefix}:commands"
        self._answers = f"{log.prefix}:answers:{self.owner}"

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
        await member._renew()
        pubsub = member.log.client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(member._commands, member._answers)
        loops = [
            asyncio.create_task(member._keep_lease(), name=f"sessionwire lease {member.owner}"),
            asyncio.create_task(member._watch(), name="sessionwire lease watch"),
            asyncio.create_task(member._listen(pubsub), name="sessionwire commands"),
        ]
        try:
            yield member
        finally:
            for task in loops + list(member._tasks):
                task.cancel()
            await asyncio.gather(*loops, *member._tasks, return_exceptions=True)
            with contextlib.suppress(*_TRANSIENT):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            await member._release()

    def route(self, runtime: Runtime) -> RoutedRuntime:
        """``runtime`` with its commands routed to whichever process runs the work."""
        self._runtime = runtime
        return RoutedRuntime(runtime, self)

    # ------------------------------------------------------------------ leases

    def _lease_key(self, owner: str) -> str:
        return f"{self.log.prefix}:lease:{owner}"

    async def is_owner_alive(self, owner: str) -> bool:
        """Whether ``owner``'s work must be left alone: it is alive, or another member ends it.

        An owner is alive while it holds its lease. The work of a dead one is ended by
        the member that claims its clean-up, once: for the others it counts as alive.
        """
        if owner == self.owner:
            return True
        if await self.log.client.exists(self._lease_key(owner)):
            return True
        return not await self._claim(owner)

    async def _claim(self, owner: str) -> bool:
        """Claim the clean-up of dead ``owner``: True if it is (or already was) this member's."""
        held = await self.log.client.set(
            f"{self.log.prefix}:reaping:{owner}", self.owner, nx=True, get=True, px=int(self.lease * 4000)
        )
        return held is None or (isinstance(held, (bytes, str)) and _text(held) == self.owner)

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
        runtime = self._runtime
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

        Not within a lease time of an outage this member saw: the other owners' leases
        may have lapsed in it too, and they get that long to take them again.
        """
        if asyncio.get_running_loop().time() - self._trouble < self.lease:
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

    async def command(
        self, op: Op, session: str, target: str, decision: str | None = None, by: str | None = None
    ) -> bool:
        """Ask the other members to run a command; True once the one that runs the work did it."""
        request = _Command(
            id=secrets.token_hex(8), origin=self.owner, op=op, session=session, target=target, decision=decision, by=by
        )
        pending = _Pending(asyncio.get_running_loop().create_future())
        self._pending[request.id] = pending
        try:
            receivers = int(await self.log.client.publish(self._commands, msgspec.json.encode(request)))
            pending.expected = receivers - 1  # we listen too
            if pending.expected <= pending.misses:
                return False
            async with asyncio.timeout(self.command_timeout):
                return await pending.future
        except TimeoutError:
            return False
        finally:
            del self._pending[request.id]

    async def _listen(self, pubsub: Any) -> None:
        delay = 0.02
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            except _TRANSIENT:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            delay = 0.02
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"].decode()
            try:
                if channel == self._answers:
                    self._answered(msgspec.json.decode(message["data"], type=_Answer))
                else:
                    request = msgspec.json.decode(message["data"], type=_Command)
                    if request.origin != self.owner:
                        self._spawn(self._serve(request))
            except msgspec.DecodeError:
                logger.warning("runtime %s ignored a malformed message on %s", self.owner, channel)

    def _answered(self, answer: _Answer) -> None:
        pending = self._pending.get(answer.id)
        if pending is None or pending.future.done():
            return
        if answer.ok:
            pending.future.set_result(True)
            return
        pending.misses += 1
        if pending.expected is not None and pending.misses >= pending.expected:
            pending.future.set_result(False)

    async def _serve(self, request: _Command) -> None:
        ok, error = False, None
        runtime = self._runtime
        if runtime is not None:
            try:
                if request.op == "cancel_turn":
                    await runtime.cancel_turn(request.session, request.target)
                elif request.op == "cancel_job":
                    await runtime.cancel_job(request.session, request.target)
                else:
                    decision: Any = request.decision
                    await runtime.resolve_approval(request.session, request.target, decision, by=request.by)
                ok = True
            except (NotFound, Conflict, ValueError) as exc:
                error = str(exc)
        answer = _Answer(id=request.id, ok=ok, error=error)
        with contextlib.suppress(*_TRANSIENT):
            await self.log.client.publish(f"{self.log.prefix}:answers:{request.origin}", msgspec.json.encode(answer))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


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


class RoutedRuntime:
    """A runtime whose commands reach the process that runs the work. Everything else is the runtime's."""

    def __init__(self, runtime: Runtime, cluster: Cluster) -> None:
        self.runtime = runtime
        self.cluster = cluster

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runtime, name)

    async def _routed(self, local: Callable[[], Awaitable[None]], op: Op, session: str, target: str, **kw: Any) -> None:
        try:
            await local()
        except (NotFound, Conflict) as exc:
            # Not ours (or not known here yet): the process that runs it acts, if there is one.
            if not await self.cluster.command(op, session, target, **kw):
                raise exc from None

    async def cancel_turn(self, session_id: str, turn: str) -> None:
        """Stop a turn, in whichever process runs it."""
        await self._routed(lambda: self.runtime.cancel_turn(session_id, turn), "cancel_turn", session_id, turn)

    async def cancel_job(self, session_id: str, job: str) -> None:
        """Stop a job, in whichever process runs it."""
        await self._routed(lambda: self.runtime.cancel_job(session_id, job), "cancel_job", session_id, job)

    async def resolve_approval(
        self, session_id: str, approval: str, decision: Literal["approve", "deny"], by: str | None = None
    ) -> None:
        """Approve or deny an approval, in whichever process waits on it."""
        await self._routed(
            lambda: self.runtime.resolve_approval(session_id, approval, decision, by),
            "resolve_approval",
            session_id,
            approval,
            decision=decision,
            by=by,
        )
