"""The parts every backend provides, each a small Protocol (a :class:`Store` holds one of each).

::

    Store
    ├── log         EventLog     durable per-session records, seqs assigned at append
    ├── feed        LiveFeed     other processes' appends, delivered into the channels open here
    ├── membership  Membership   leases: which runtime owners are alive, where each started work
    ├── commands    CommandBus   a command for a session's work, carried to the process running it
    └── replies     Replies      the first reply to each Idempotency-Key, for the retries

The log is the single sequencer of a session: ``append`` assigns seq 1, 2, 3, ...
with no gap, also when several producers append to one session at once (a
backend assigns seqs atomically where the data lives: a SQLite transaction, a
Redis script). Local backends (``memory://``, ``sqlite:///``) serve one process:
their feed, membership and command bus are trivial (see :mod:`.local`). Every
part has one contract suite that every backend passes (``tests/test_*_contract.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import msgspec

from ..events import Event, Record


class Fence(msgspec.Struct, frozen=True):
    """Who appends: a runtime owner, and the generation of its lease the work started under.

    A member that takes over a dead owner's work first fences it (:meth:`Membership.fence`):
    from then on the log refuses every append with a fence of that owner and a generation up
    to the fenced one, so work of a stalled runtime that comes back cannot write after its end.
    """

    owner: str
    generation: int


class SessionMeta(msgspec.Struct, kw_only=True):
    """A session's small metadata record, kept beside its records."""

    id: str
    created_at: int
    title: str | None = None
    token_hash: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class Snapshot(msgspec.Struct, frozen=True):
    """A session's folded state (JSON) as it stood at seq ``at``."""

    at: int
    state: bytes


class EventLog(Protocol):
    """Durable per-session storage of records, with seqs assigned at append.

    Appends of events that name an ``owner`` (``turn.started``, ``job.started``, see
    :func:`sessionwire.events.event_owner`) also index that owner's work for the
    backend's :class:`Membership`, in the same write.
    """

    commits: int
    """How many commits (transactions, round trips) the log has made: appends are grouped."""

    records_read: int
    """How many records ``read`` has returned (reopening a session reads only its tail)."""

    unwritten: set[str]
    """Sessions where an append failed because the store was unreachable (their work's ends may be missing)."""

    def submit(
        self,
        session: str,
        events: Sequence[Event],
        fence: Fence | None = None,
        known: int = 0,
        external: bool = False,
    ) -> asyncio.Future[list[Record]]:
        """Start appending events (atomically, in order): a future of their records, done at once if no wait.

        With a ``fence``, the append is refused (:class:`~sessionwire.errors.Fenced`) if its owner
        was fenced at that generation or a later one. ``known`` is the last seq the appender has
        delivered: a shared log that holds fewer records refuses the append
        (:class:`~sessionwire.errors.LogBehind`), as its seqs would repeat seqs subscribers saw
        (a local log is never behind its one process). An append that breaks the lifecycle of a
        turn, job or approval is refused (:class:`~sessionwire.errors.LifecycleViolation`, see
        :mod:`.lifecycle`); ``external`` appends (an HTTP or WebSocket producer's) may not name
        the subjects that in-process producers (the runtime) opened.
        """
        ...

    async def restore(self, session: str, records: Sequence[Record]) -> int:
        """Put back records a shared log lost (the seqs after its last, as delivered); its last seq after.

        Records at or below the log's last seq are skipped, so several processes may restore
        the same records at once. A local log (never behind) changes nothing.
        """
        ...

    async def append(
        self, session: str, events: Sequence[Event], fence: Fence | None = None, external: bool = False
    ) -> list[Record]:
        """Append events to a session, atomically and in order; return their records (seqs assigned here)."""
        ...

    async def read(self, session: str, after: int = 0, limit: int | None = None) -> list[Record]:
        """Records with seq > ``after``, in order; raises CursorExpired if some were dropped."""
        ...

    async def bounds(self, session: str) -> tuple[int, int]:
        """(first retained seq, last seq); (0, 0) for a session with no record."""
        ...

    async def save_snapshot(self, session: str, snapshot: Snapshot) -> None:
        """Store a snapshot unless a newer one is stored; drop records it covers beyond ``retain``."""
        ...

    async def load_snapshot(self, session: str) -> Snapshot | None:
        """The session's latest snapshot, if any."""
        ...

    async def sessions(self) -> list[SessionMeta]:
        """Every session that has metadata, sorted by id."""
        ...

    async def get_meta(self, session: str) -> SessionMeta | None:
        """A session's metadata, or None."""
        ...

    async def put_meta(self, meta: SessionMeta) -> None:
        """Create or replace a session's metadata."""
        ...

    async def update_meta(self, session: str, change: Callable[[SessionMeta], object]) -> SessionMeta | None:
        """Read a session's metadata, let ``change`` edit it in place, store it: atomically, for every process.

        A log that other processes write too (Redis) stores it only if nobody else wrote the
        metadata meanwhile, and else calls ``change`` again on what they wrote. Nothing is stored
        if ``change`` returns ``False``. None (nothing stored) if the session has no metadata.
        """
        ...

    async def delete(self, session: str) -> None:
        """Remove a session: its records, snapshot, metadata and its place in the owners' indexes.

        Appends to it are refused (SessionNotFound) from then until ``put_meta`` creates it again.
        """
        ...

    async def ping(self) -> None:
        """Check that the store answers now, once, without waiting out an outage.

        Raises:
            LogUnavailable: it does not (the reason is the message).
            LogClosed: the log is closed.
        """
        ...

    async def aclose(self) -> None:
        """Flush and close; every call after this raises LogClosed."""
        ...


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """What :class:`Replies` keeps of a request: its fingerprint, and once it answered, its reply.

    Attributes:
        fingerprint: A digest of the request (a retry with another body is another request).
        status: The HTTP status it answered; 0 while it runs.
        body: The reply's body (as the caller stored it: the server seals it).
        media_type: The reply's media type.
        claim: A running claim's nonce (a store tells its own retried claim from another's).
    """

    fingerprint: str
    status: int = 0
    body: bytes = b""
    media_type: str = ""
    claim: str = ""


class Replies(Protocol):
    """The first reply to each request key, shared by every process on the store (Idempotency-Key).

    Keys are opaque to the store (the server hashes them). A request claims its key before it
    runs; whoever finds it claimed waits for the reply, or gives up. Claims and replies expire.
    """

    async def claim(self, key: str, fingerprint: str, hold: float) -> Reply | None:
        """Claim ``key`` for a request that runs now, for ``hold`` seconds at most.

        Returns None if the claim is the caller's (run the request, then :meth:`finish` or
        :meth:`drop`), else what the key holds: a running claim (``status`` 0) or a reply.
        """
        ...

    async def get(self, key: str) -> Reply | None:
        """What ``key`` holds, claiming nothing."""
        ...

    async def finish(self, key: str, reply: Reply, ttl: float) -> None:
        """Store the reply of a claimed key, kept ``ttl`` seconds."""
        ...

    async def drop(self, key: str) -> None:
        """Forget a claim whose request failed: a retry may run it."""
        ...


class FeedTarget(Protocol):
    """What a live feed delivers into: one session's channel in this process."""

    id: str
    """The session's id."""

    last_seq: int
    """The last seq the channel has taken in: the feed delivers what follows."""

    @property
    def closed(self) -> bool:
        """Whether the channel was closed (then it takes nothing more)."""
        ...

    def deliver(self, records: Sequence[Record]) -> None:
        """Take records of the session (in any order, duplicates dropped)."""
        ...

    def feed_behind(self, behind: bool) -> None:
        """Say whether other processes' records may be late (the store is unreachable)."""
        ...


class LiveFeed(Protocol):
    """Delivers the records other processes append into this process's channels."""

    @property
    def lag(self) -> float:
        """Seconds the feed has been behind (its reads failing); 0 while it is live."""
        ...

    def watch(self, target: FeedTarget) -> None:
        """Feed this channel with its session's records appended anywhere, from its ``last_seq``."""
        ...

    def unwatch(self, session: str) -> None:
        """Stop feeding the session's channel (it was evicted)."""
        ...

    async def aclose(self) -> None:
        """Stop feeding and release what the feed holds."""
        ...


class Membership(Protocol):
    """Leases of runtime owners, and the index of the sessions where each started work.

    An owner is alive while it holds its lease. The index is written by the log with the
    records that start work (see :class:`EventLog`); whoever cleans up after a dead owner
    claims it first, so one member does it.
    """

    lease: float
    """Seconds a lease lasts without being renewed."""

    async def renew(self, owner: str) -> int:
        """Take or extend ``owner``'s lease; its generation: the same while it is held, a new one when taken.

        Taken means it was not held (the first time, or it lapsed). Work the owner starts appends
        with the generation (:class:`Fence`); taking and numbering are one step, so no work can
        start under a generation fenced before the take.
        """
        ...

    async def held(self, owner: str) -> bool:
        """Whether ``owner``'s lease is held now."""
        ...

    async def release(self, owner: str) -> None:
        """Drop ``owner``'s lease and its index (its work has ended)."""
        ...

    async def owners(self) -> list[str]:
        """Owners with indexed work, sorted."""
        ...

    async def owned(self, owner: str) -> list[str]:
        """Sessions where ``owner`` started work, sorted."""
        ...

    async def forget(self, owner: str, session: str | None = None) -> None:
        """Drop a session from ``owner``'s index, or (None) the owner with its whole index."""
        ...

    async def claim(self, owner: str, by: str) -> bool:
        """Claim (or keep claiming) the clean-up of dead ``owner`` for ``by``; True if it is ``by``'s."""
        ...

    async def unclaim(self, owner: str) -> None:
        """Drop the claim on ``owner``'s clean-up."""
        ...

    async def restarted(self) -> bool:
        """Whether the store started less than half a lease ago (live owners may not have renewed yet)."""
        ...

    async def fence(self, owner: str) -> bool:
        """Fence a dead owner before ending its work: the log refuses its appends of every generation so far.

        Returns False, fencing nothing, if the owner holds its lease (it came back meanwhile).
        """
        ...

    async def enter(self, session: str, turn: str, owner: str, alone: bool = False) -> list[tuple[str, str]] | None:
        """Put a turn at the end of its session's turn line, shared by every process; the entries ahead of it.

        The line holds ``(turn, owner)`` in admission order: the running turn first, then the
        queued ones. With ``alone`` (the ``reject`` policy) the turn enters only an empty line:
        None means it entered, a list the entries that kept it out.
        """
        ...

    async def line(self, session: str) -> list[tuple[str, str]]:
        """The session's turn line: ``(turn, owner)``, the running turn first."""
        ...

    async def leave(self, session: str, turn: str) -> None:
        """Take a turn out of its session's line (it ended, or never will start)."""
        ...


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """A request for the process that runs a session's work (cancel a turn, resolve an approval...).

    Attributes:
        op: The operation, a runtime method's name (``cancel_turn``, ``cancel_job``...).
        session: The session.
        target: The turn, job or approval it is about ("" if none).
        args: The operation's other arguments.
        every: Every process carries it out (``close_session``), not only the one running the work.
    """

    op: str
    session: str
    target: str = ""
    args: dict[str, Any] = msgspec.field(default_factory=dict)
    every: bool = False


CommandHandler = Callable[[Command], Awaitable[None]]
"""Carries out a command here; raises NotFound, Conflict or ValueError when this process does not run the work."""


class CommandBus(Protocol):
    """Carries commands to the other processes sharing the store and brings back their answers."""

    async def send(self, command: Command) -> bool:
        """Have another process carry out ``command``; True once it did (for ``every``: all answered, one did).

        Raises:
            SessionwireError: the process that runs the work failed to carry it out (its error).
        """
        ...

    def serve(self, handler: CommandHandler) -> AbstractAsyncContextManager[None]:
        """Carry out the other processes' commands with ``handler`` while the context is open."""
        ...

    async def aclose(self) -> None:
        """Stop serving and release what the bus holds."""
        ...


@dataclass(frozen=True)
class Store:
    """The parts of one backend: the log, the live feed, the membership, the command bus and the replies.

    Get one with :func:`~.store.open_store`; the hub closes it (``Hub.open`` owns it). Also an
    async context manager that closes it.
    """

    log: EventLog
    feed: LiveFeed
    membership: Membership
    commands: CommandBus
    replies: Replies

    async def aclose(self) -> None:
        """Close every part: the feed and the command bus first, the log last."""
        try:
            await self.feed.aclose()
            await self.commands.aclose()
        finally:
            await self.log.aclose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
