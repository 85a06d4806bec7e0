"""The hub: owns the store and the open sessions' channels.

``async with Hub.open("sqlite:///sessionwire.db") as hub`` opens the store (its log,
and with Redis the live feed that brings other processes' appends to the channels
open here); ``await
hub.session(id)`` gets a session's channel, opening it from its latest snapshot
and the log's tail. Sessions with no subscriber and no publish for a while are
evicted from memory (after a last snapshot) and come back on the next call.
Session tokens are checked here, so every transport shares one rule.

The hub also serves the store's command bus: it ends its channel of a session
another process deleted (``session_deleted``) and hands the other commands to the
runtime that :meth:`Hub.handling` names (see :mod:`sessionwire.runtime.cluster`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from .backends import Command, CommandHandler, SessionMeta, Store, local_store, open_store
from .backends.memory import MemoryLog
from .backends.sqlite import SQLiteLog
from .channel import ChannelOptions, Session, Subscription
from .errors import (
    CursorExpired,
    Forbidden,
    LogClosed,
    NotFound,
    SessionExists,
    SessionNotFound,
    SessionwireError,
    Unauthorized,
)
from .events import SessionCreated
from .options import HubStats
from .state import SessionState, apply
from .tokens import new_token, token_hash, token_session

logger = logging.getLogger("sessionwire.hub")


class Hub:
    """The registry of a process's open sessions over one store.

    Args:
        store: The store every session lives in (a memory or SQLite log alone is a store of one process).
        options: Bounds of each session's channel.
        idle_timeout: Seconds without subscriber or publish after which a session is evicted.

    Attributes:
        store: The store: its log, live feed, membership and command bus.
        log: The store's event log.
    """

    def __init__(
        self, store: Store | MemoryLog | SQLiteLog, options: ChannelOptions | None = None, idle_timeout: float = 300.0
    ) -> None:
        self.store = store if isinstance(store, Store) else local_store(store)
        self.log = self.store.log
        self._feed = self.store.feed
        self.options = options or ChannelOptions()
        self.idle_timeout = idle_timeout
        self.stats = HubStats()
        self._sessions: dict[str, Session] = {}
        self._opening: dict[str, asyncio.Future[Session | None]] = {}
        self._meta_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._evicting: dict[str, asyncio.Future[None]] = {}
        self._creating: set[str] = set()
        self._handler: CommandHandler | None = None
        self._closed = False

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        url: str | Store | MemoryLog | SQLiteLog = "memory://",
        options: ChannelOptions | None = None,
        idle_timeout: float = 300.0,
    ) -> AsyncIterator[Hub]:
        """Open a hub on a store URL (``memory://``, ``sqlite:///path.db``, ``redis://...``), a store or a local log.

        The hub owns the store: closing the hub closes it.
        """
        hub = cls(open_store(url) if isinstance(url, str) else url, options, idle_timeout)
        sweeper = asyncio.create_task(hub._sweep())
        try:
            async with hub.store.commands.serve(hub.carry_out):
                yield hub
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await hub.aclose()

    # ------------------------------------------------------------------ commands

    @contextlib.asynccontextmanager
    async def handling(self, handler: CommandHandler) -> AsyncIterator[None]:
        """Carry out the other processes' commands for this process's work with ``handler`` meanwhile."""
        if self._handler is not None:
            raise RuntimeError("the hub already hands its commands to a runtime")
        self._handler = handler
        try:
            yield
        finally:
            self._handler = None

    async def carry_out(self, command: Command) -> None:
        """Carry out another process's command (the store's bus calls it; a :data:`CommandHandler`).

        Raises:
            NotFound: no runtime here takes commands (this process runs no work).
        """
        if command.op == "session_deleted":
            await self.evict(command.session, ended="session_deleted")
            return
        if command.op == "session_rewound":
            await self._restore_here(command.session)
            return
        if command.op == "token_rotated":
            await self._revoke_here(command.session)
            return
        if self._handler is None:
            raise NotFound(f"this process runs no work: {command.op} {command.target!r} is not here")
        await self._handler(command)

    # ------------------------------------------------------------------ sessions

    async def session(self, session_id: str) -> Session:
        """Get a session's channel, opening it if needed. Opening writes nothing.

        Raises:
            LogClosed: the hub is closed.
        """
        if not session_id:
            raise ValueError("a session id is a non-empty string")
        while True:
            if self._closed:
                raise LogClosed(f"the hub is closed (session {session_id!r})")
            session = self._sessions.get(session_id)
            if session is not None:
                return session
            # A session being evicted is reopened only once its last appends and snapshot are stored.
            pending: asyncio.Future[Any] | None = self._evicting.get(session_id) or self._opening.get(session_id)
            if pending is None:
                break
            # None: an eviction ended, or the opener was cancelled; either way, look again
            # (and open it ourselves if nobody else is).
            await asyncio.shield(pending)
        future: asyncio.Future[Session | None] = asyncio.get_running_loop().create_future()
        self._opening[session_id] = future
        try:
            session = await self._load(session_id)
            self._sessions[session_id] = session
            self._feed.watch(session)
            future.set_result(session)
            return session
        except asyncio.CancelledError:
            # Only this caller was cancelled: its waiters retry the open themselves.
            future.set_result(None)
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._opening[session_id]

    async def _load(self, session_id: str) -> Session:
        """A session's channel from its latest snapshot and the records after it (not its whole history)."""
        for attempt in range(3):
            snapshot = await self.log.load_snapshot(session_id)
            state = SessionState()
            if snapshot is not None:
                try:
                    state = SessionState.from_json(snapshot.state)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    pass  # a snapshot this version cannot read: fold the log from the start instead
            page = self.options.read_page
            try:
                while True:
                    records = await self.log.read(session_id, state.seq, limit=page)
                    for record in records:
                        apply(state, record)
                    if len(records) < page:
                        break
            except CursorExpired:
                # A newer snapshot (another process's) let the log drop what we read from: start over.
                if attempt == 2:
                    raise
                continue
            break
        return Session(
            session_id,
            self.log,
            state,
            self.options,
            self.stats,
            reopen=lambda: self.session(session_id),
            rewound=lambda: self.rewound(session_id),
            stored=0 if snapshot is None else len(snapshot.state),
        )

    def sessions(self) -> list[str]:
        """Ids of the sessions open in this process."""
        return list(self._sessions)

    def open_session(self, session_id: str) -> Session | None:
        """The session's channel if it is open in this process, else None (opens nothing)."""
        return self._sessions.get(session_id)

    async def evict(self, session_id: str, ended: str | None = None) -> None:
        """Close a session's channel here (a last snapshot is stored); it reopens on the next call.

        With ``ended`` (``session_deleted``) the session is gone: no snapshot is stored, and its
        subscriptions end with an ``ended`` frame that gives the reason.
        """
        session = self._sessions.pop(session_id, None)
        self._feed.unwatch(session_id)
        if session is None:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._evicting[session_id] = done
        try:
            await session.aclose(snapshot=ended is None, reason=ended)
        finally:
            del self._evicting[session_id]
            done.set_result(None)

    async def evict_idle(self) -> list[str]:
        """Evict every session idle (no subscriber, no append under way) for ``idle_timeout``; their ids."""
        now = time.monotonic()
        evicted = []
        for session_id, session in list(self._sessions.items()):
            # Checked as we go: while one eviction awaits its snapshot, another session may get busy.
            if self._sessions.get(session_id) is not session:
                continue
            if session.idle and now - session.last_active >= self.idle_timeout:
                evicted.append(session_id)
                await self.evict(session_id)
        return evicted

    async def _sweep(self) -> None:
        interval = max(0.05, min(self.idle_timeout / 4, 30.0))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.evict_idle()
            except SessionwireError:
                pass  # e.g. the log closed under us: the hub is closing

    # ------------------------------------------------------------------ creation and tokens

    async def create_session(self, session_id: str | None = None, title: str | None = None) -> tuple[Session, str]:
        """Create a session: store its metadata and token hash, write ``session.created``.

        Returns:
            The session and its token (shown once; only its hash is stored).

        Raises:
            SessionExists: a session with that id already exists.
        """
        session_id = session_id or "s_" + secrets.token_hex(8)
        if session_id in self._creating:
            raise SessionExists(session_id)
        self._creating.add(session_id)
        try:
            if await self.log.get_meta(session_id) is not None or (await self.log.bounds(session_id))[1] > 0:
                raise SessionExists(session_id)
            token = new_token(session_id)
            meta = SessionMeta(
                id=session_id, created_at=time.time_ns() // 1_000_000, title=title, token_hash=token_hash(token)
            )
            await self.log.put_meta(meta)
            session = await self.session(session_id)
            await session.publish(SessionCreated(title=title))
        finally:
            self._creating.discard(session_id)
        return session, token

    async def rotate_token(self, session_id: str) -> str:
        """Give a session a new token; the old one stops working, also for what it has open.

        Every subscription opened with the old token ends, in every process, with an ``ended``
        frame whose reason is ``token_rotated`` (see :meth:`credential`).
        """
        token = new_token(session_id)

        def rotate(meta: SessionMeta) -> None:
            meta.token_hash = token_hash(token)

        if await self.update_meta(session_id, rotate) is None:
            raise SessionNotFound(session_id)
        # The new token is stored: from here on nothing may fail the rotation, or its caller would
        # hold neither token (the old one is refused, the new one never reached it).
        await self._revoke_here(session_id, token_hash(token))
        try:
            await self.store.commands.send(Command(op="token_rotated", session=session_id, every=True))
        except SessionwireError as exc:
            logger.error("session %s has a new token, but the other processes could not be told: %s", session_id, exc)
        return token

    def credential(self, token: str | None, admin_token: str | None = None) -> str | None:
        """The tag of a subscription opened with ``token`` (:meth:`Session.subscribe`): the token's hash.

        None for the admin token (or none): a session's rotation does not end what it opened.
        """
        if not token or (admin_token and hmac.compare_digest(token.encode(), admin_token.encode())):
            return None
        return token_hash(token)

    async def recheck(self, session_id: str, sub: Subscription) -> None:
        """End ``sub`` at once if its token was rotated between its authorization and its subscription."""
        if sub.credential is None:
            return
        meta = await self.log.get_meta(session_id)
        if meta is None or meta.token_hash != sub.credential:
            sub.end("token_rotated")

    async def _revoke_here(self, session_id: str, current: str | None = None) -> None:
        """End this process's subscriptions of a session opened with a token other than ``current`` (read if None)."""
        session = self._sessions.get(session_id)
        if session is None or not session.subscribers:
            return
        if current is None:
            meta = await self.log.get_meta(session_id)
            current = meta.token_hash if meta is not None else None
        session.revoke(lambda credential: credential == current, "token_rotated")

    async def update_meta(self, session_id: str, change: Callable[[SessionMeta], object]) -> SessionMeta | None:
        """Read a session's metadata, apply ``change`` to it in place and store it, one change at a time.

        The log stores metadata whole, so every read-modify-write of it in this process (token
        rotation, the runtime's marks) goes through here to never lose another's write. If
        ``change`` returns ``False`` nothing is stored. Returns the metadata, or None (and stores
        nothing) if the session has none.
        """
        lock = self._meta_locks.get(session_id)
        if lock is None:
            lock = self._meta_locks[session_id] = asyncio.Lock()
        async with lock:  # the log's update is atomic; this keeps this process's from racing each other
            update = getattr(self.log, "update_meta", None)
            if update is not None:
                return await update(session_id, change)  # type: ignore[no-any-return]
            meta = await self.log.get_meta(session_id)  # a log written before update_meta: this process's only
            if meta is not None and change(meta) is not False:
                await self.log.put_meta(meta)
            return meta

    async def meta(self, session_id: str) -> SessionMeta:
        """A session's metadata. Raises SessionNotFound."""
        meta = await self.log.get_meta(session_id)
        if meta is None:
            raise SessionNotFound(session_id)
        return meta

    async def authorize(self, session_id: str, token: str | None, admin_token: str | None = None) -> SessionMeta:
        """Check that ``token`` grants ``session_id``; return the session's metadata.

        Raises:
            Unauthorized: no token, or a token that grants no session.
            Forbidden: a valid token of another session.
            SessionNotFound: the token is right but there is no such session (admin only).
        """
        if not token:
            raise Unauthorized("a session token is required (Authorization: Bearer <token> or ?token=)")
        if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
            return await self.meta(session_id)
        owner = token_session(token)
        if owner is None:
            raise Unauthorized("the token is malformed")
        meta = await self.log.get_meta(owner)
        if meta is None or meta.token_hash is None or not hmac.compare_digest(meta.token_hash, token_hash(token)):
            raise Unauthorized("the token is not valid")
        if owner != session_id:
            raise Forbidden(f"the token grants session {owner!r}, not {session_id!r}")
        return meta

    async def rewound(self, session_id: str) -> None:
        """The store lost records of a session that were delivered (it refused an append: LogBehind).

        Every process puts back what its channel of the session still holds (its ring), in seq
        order, before anything new is appended; a process that cannot (its channel no longer
        holds them) ends the session's subscriptions with an ``ended`` frame whose reason is
        ``log_lost`` and logs an error: no subscriber ever sees two records with one seq.
        """
        await self.store.commands.send(Command(op="session_rewound", session=session_id, every=True))
        await self._restore_here(session_id)

    async def _restore_here(self, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is None:
            return
        _, last = await self.log.bounds(session_id)
        if last >= session.last_seq:
            return
        held = session.held_after(last - 1) if last else []
        # Only onto the same history: the record at the store's last seq must be the one delivered
        # here (a session deleted and created again since, say, is another history).
        try:
            same = bool(held) and [r.raw for r in await self.log.read(session_id, last - 1, limit=1)] == [held[0].raw]
        except CursorExpired:
            same = False
        if same:
            last = await self.log.restore(session_id, held[1:])
        if last < session.last_seq:
            logger.error(
                "the store lost records %d to %d of session %s and this process no longer holds them: "
                "its subscriptions end (log_lost)",
                last + 1,
                session.last_seq,
                session_id,
            )
            await self.evict(session_id, ended="log_lost")
        else:
            logger.warning("the store lost records of session %s; this process put them back", session_id)

    async def delete_session(self, session_id: str) -> None:
        """Remove a session and everything stored of it, and end its subscriptions in every process.

        End the work of the session first (:meth:`AgentRuntime.close_session`): the log refuses
        any later append to it, until the id is created again.
        """
        await self.meta(session_id)
        await self.log.delete(session_id)  # first: a channel reopened meanwhile here is ended below
        await self.evict(session_id, ended="session_deleted")
        try:
            await self.store.commands.send(Command(op="session_deleted", session=session_id, every=True))
        except SessionwireError as exc:
            # Deleted (its routes answer 404 everywhere), but other processes' subscribers of it are
            # not told: their streams stay open, silent, until they go. Loudly, then.
            logger.error("session %s is deleted, but the other processes could not be told: %s", session_id, exc)

    # ------------------------------------------------------------------ lifecycle

    def statistics(self) -> dict[str, Any]:
        """Open sessions, subscribers, lagging subscribers and append counters."""
        sessions = list(self._sessions.values())
        return {
            "sessions_open": len(sessions),
            "subscribers": sum(s.subscribers for s in sessions),
            "subscribers_lagging": sum(s.lagging for s in sessions),
            "records_appended": self.stats.records_appended,
            "appends": self.stats.appends,
            "append_seconds": self.stats.append_seconds,
        }

    async def aclose(self) -> None:
        """Close every open session (ending their subscriptions) and the store."""
        if self._closed:
            return
        self._closed = True
        await self._feed.aclose()
        sessions, self._sessions = list(self._sessions.values()), {}
        try:
            # Every session gets its last snapshot, even if storing one of them fails.
            results = await asyncio.gather(*(s.aclose() for s in sessions), return_exceptions=True)
        finally:
            await self.store.aclose()
        for result in results:
            if isinstance(result, BaseException):
                raise result
