"""The Redis log: sessions shared by several processes, on Redis Streams.

Each session is a stream whose entry ids are its seqs (``<seq>-0``), so
``XRANGE``/``XREAD`` from a seq is the resume path, and a hash beside it holding
its counter (``last``), first retained seq, snapshot and metadata. A Lua script
appends a whole group of queued appends in one round trip: it increments each
session's counter, builds each record's JSON (``ts`` from Redis ``TIME``, so every
process stamps with one clock) and ``XADD``s it as field ``d``. Appends queue up
while a script call is in flight and go out together in the next one, like the
SQLite writer's group commit.

A script call that fails with a connection error is retried with the same batch
token until ``retry_for`` seconds have passed; the script remembers the last
token of each log client (one batch is in flight at a time) with its answer, and
answers a retry of a batch it already applied with the first answer, so a retry
never appends twice. Then the appends fail with :class:`LogUnavailable`.

Durability is Redis's: with ``appendonly yes`` and ``appendfsync everysec`` a
Redis crash can lose the last second (and with it reuse seqs that consumers saw);
use ``appendfsync always`` where that matters.

The keys are listed in :mod:`.keys` and the scripts in :mod:`.scripts`. The append script
also indexes, with the records that start work, which owner started it in which session
(for :mod:`.membership`), by the generic rule of :func:`sessionwire.events.event_owner`,
and keeps the lifecycle states of :mod:`..lifecycle` (building those of a session written
before the rules from its records, the first time an append names a turn, job or approval).

Query parameters of the URL: ``retain=N`` (records kept per session once a
snapshot covers older ones), ``prefix=sw`` (key prefix), ``retry_for=10`` (seconds),
``lease=10`` (seconds a runtime's lease lasts, see :mod:`.membership`),
``command_timeout=30`` (seconds to wait for other processes' answers, see :mod:`.commands`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...errors import CursorExpired, Fenced, LogBehind, LogClosed, LogUnavailable, SessionNotFound
from ...events import Event, Record, encode_event, event_owner, record_prefix
from ..base import Fence, SessionMeta, Snapshot
from ..lifecycle import from_snapshot, plan, replay, restored, violation
from .keys import Keys
from .scripts import APPEND, BACKFILL, META, READ, RESTORE, SNAPSHOT

__all__ = ["TRANSIENT", "LogUnavailable", "RedisLog", "connect"]

_MAX_EVENTS = 4096  # records per script call, at most
_MAX_BYTES = 4 * 1024 * 1024  # encoded events per script call, at most
_LAST_BATCH_SECONDS = 3600
_PING_SECONDS = 2.0  # a health check's wait for Redis's answer
_DELETED_SECONDS = 86400  # how long a deleted session refuses appends (unless created again)
_OWN_PARAMS = ("retain", "prefix", "retry_for", "lease", "command_timeout")
_META_TRIES = 100
"""Compare-and-set attempts of one metadata update before it gives up (each lost to another writer)."""

TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)
"""The errors of a lost connection: worth a retry."""


def _fenced(fence: Fence | None) -> Fenced:
    owner, generation = (fence.owner, fence.generation) if fence else ("?", 0)
    return Fenced(f"runtime {owner} was taken over: its generation {generation} may not append")


def connect(url: str, **options: Any) -> aioredis.Redis:
    """A redis-py client on ``url`` (``redis-py``'s options), without redis-py's own retries.

    A blind resend of an append would append twice: every retry of the log goes through
    :meth:`RedisLog.with_retry`.
    """
    return aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **options)


class _Append:
    __slots__ = ("backfilled", "events", "fence", "future", "known", "payloads", "plan", "session")

    def __init__(
        self,
        session: str,
        events: Sequence[Event],
        future: asyncio.Future[list[Record]],
        fence: Fence | None,
        known: int,
        external: bool,
    ) -> None:
        self.session = session
        self.events = events
        self.fence = fence
        self.known = known
        self.payloads = [encode_event(e) for e in events]
        self.plan = plan(events, external)
        self.future = future
        self.backfilled = False  # its session's states were built from its records (see _backfill)


class RedisLog:
    """A log in Redis Streams, shared by every process that opens the same URL.

    Args:
        url: ``redis://host:port/db`` or ``rediss://...``, with the query parameters above.
        retain: Records kept per session once a snapshot covers older ones (None: all).
    """

    def __init__(self, url: str, retain: int | None = None) -> None:
        parts = urlsplit(url)
        own = {k: v for k, v in parse_qsl(parts.query) if k in _OWN_PARAMS}
        rest = [(k, v) for k, v in parse_qsl(parts.query) if k not in _OWN_PARAMS]
        self.url = urlunsplit(parts._replace(query=urlencode(rest)))
        self.retain = retain
        self.client = self.connect()
        self.keys = Keys(own.get("prefix", "sw"), int(self.client.connection_pool.connection_kwargs.get("db", 0)))
        self.retry_for = float(own.get("retry_for", "10"))
        if self.retry_for < 0:
            raise ValueError(f"retry_for must be >= 0, not {self.retry_for}")
        self.lease = float(own.get("lease", "10"))
        if self.lease <= 0:
            raise ValueError(f"lease must be > 0 seconds, not {self.lease}")
        self.command_timeout = float(own.get("command_timeout", "30"))
        if self.command_timeout <= 0:
            raise ValueError(f"command_timeout must be > 0 seconds, not {self.command_timeout}")
        self.commits = 0
        self.records_read = 0
        self.unwritten: set[str] = set()
        """Sessions where an append failed with :class:`LogUnavailable`."""
        self._append_script = self.client.register_script(APPEND)
        self._read_script = self.client.register_script(READ)
        self._snapshot_script = self.client.register_script(SNAPSHOT)
        self._restore_script = self.client.register_script(RESTORE)
        self._backfill_script = self.client.register_script(BACKFILL)
        self._meta_script = self.client.register_script(META)
        self._queue: deque[_Append] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._last_batch_key = self.keys.batch(secrets.token_hex(8))
        self._closed = False

    def connect(self, **options: Any) -> aioredis.Redis:
        """A new client on this log's server, without redis-py's own retries (see ``retry_for``)."""
        return connect(self.url, **options)

    # ------------------------------------------------------------------ appends

    def submit(
        self,
        session: str,
        events: Sequence[Event],
        fence: Fence | None = None,
        known: int = 0,
        external: bool = False,
    ) -> asyncio.Future[list[Record]]:
        """Queue an append for the next script call; the future resolves once Redis ran it."""
        if self._closed:
            raise LogClosed(f"log {self.url} is closed")
        future: asyncio.Future[list[Record]] = asyncio.get_running_loop().create_future()
        if not events:
            future.set_result([])
            return future
        self._queue.append(_Append(session, events, future, fence, known, external))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="sessionwire redis log writer")
        return future

    async def append(
        self, session: str, events: Sequence[Event], fence: Fence | None = None, external: bool = False
    ) -> list[Record]:
        # The append is written whether or not this caller stays to see it.
        return await asyncio.shield(self.submit(session, events, fence, external=external))

    async def _write_loop(self) -> None:
        try:
            while self._queue:
                batch: list[_Append] = []
                events = size = 0
                while self._queue and events < _MAX_EVENTS and size < _MAX_BYTES:
                    item = self._queue.popleft()
                    batch.append(item)
                    events += len(item.payloads)
                    size += sum(len(p) for p in item.payloads)
                await self._commit(batch)
        finally:
            self._writer = None

    async def _commit(self, batch: list[_Append]) -> None:
        keys: list[str] = [self._last_batch_key]
        args: list[bytes | int | str] = [_LAST_BATCH_SECONDS, len(batch), secrets.token_hex(8), 0]
        owned: list[tuple[str, str]] = []
        for item in batch:
            fence = item.fence
            keys += (
                self.keys.hash(item.session),
                self.keys.stream(item.session),
                self.keys.deleted(item.session),
                self.keys.fenced(fence.owner if fence else ""),
                self.keys.lifecycle(item.session),
            )
            generation = fence.generation if fence else 0
            args += (len(item.payloads), record_prefix(item.session), b"\n".join(item.payloads), generation, item.known)
            todo = item.plan
            args += (1 if todo.external else 0, len(todo.subjects))
            for subject, outcome in zip(todo.subjects, todo.outcomes):
                args += (subject, outcome)
            for event in item.events:
                owner = event_owner(event)
                if owner:
                    owned.append((owner, item.session))
        # Which runtimes own work, and in which sessions: written with the records that
        # start it, so a process that dies right after still has its work found.
        for owner, session in owned:
            keys += (self.keys.owners, self.keys.owned(owner))
            args += (owner, session)
        tries = 0

        async def call() -> Any:
            nonlocal tries
            args[3] = 1 if tries else 0
            tries += 1
            return await self._append_script(keys=keys, args=args)

        try:
            reply = await self.with_retry(call)
        except BaseException as exc:
            if isinstance(exc, LogUnavailable):
                self.unwritten.update(item.session for item in batch)
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.commits += 1
        ts = int(reply[0])
        legacy: list[_Append] = []
        for item, first in zip(batch, reply[1:]):
            if first == b"!L:0":
                if not item.backfilled:
                    legacy.append(item)
                elif not item.future.done():  # built, and gone again: a delete came between
                    item.future.set_exception(SessionNotFound(item.session))
                continue
            if isinstance(first, bytes):  # "!<rule>:<subject index>": the lifecycle refused it
                rule, _, index = first.decode()[1:].partition(":")
                subject = item.plan.subjects[int(index) - 1]
                item.future.set_exception(violation("owned_by_runtime" if rule == "R" else rule, subject))
                continue
            seq = int(first)
            if seq <= 0:  # refused, nothing appended: the session was deleted, the owner fenced, or Redis behind
                if seq <= -2:
                    item.future.set_exception(LogBehind(item.session, -2 - seq, item.known))
                else:
                    item.future.set_exception(SessionNotFound(item.session) if seq == 0 else _fenced(item.fence))
                continue
            prefix = record_prefix(item.session)
            records = [
                Record.from_event_json(item.session, seq + i, ts, event, payload, prefix)
                for i, (event, payload) in enumerate(zip(item.events, item.payloads))
            ]
            if not item.future.done():
                item.future.set_result(records)
        if legacy:
            await self._backfill(legacy)

    async def _backfill(self, legacy: list[_Append]) -> None:
        """Build the states of sessions written before the lifecycle rules, then append to them again."""
        try:
            for session in dict.fromkeys(item.session for item in legacy):
                first, _ = await self.bounds(session)
                snapshot = await self.load_snapshot(session) if first > 1 else None
                states = from_snapshot(snapshot.state) if snapshot is not None else {}
                replay(states, [r.event for r in await self.read(session, max(first, 1) - 1)])
                keys, args = [self.keys.lifecycle(session)], [x for pair in states.items() for x in pair]
                await self.with_retry(lambda k=keys, a=args: self._backfill_script(keys=k, args=a))
        except Exception as exc:
            for item in legacy:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        for item in legacy:
            item.backfilled = True
        self._queue.extendleft(reversed(legacy))  # first in line, as they came

    async def with_retry(self, call: Any) -> Any:
        """Run ``call()`` again after a connection error, until ``retry_for`` seconds passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for
        delay = 0.02
        while True:
            try:
                return await call()
            except TRANSIENT as exc:
                if self._closed or loop.time() + delay > deadline:
                    raise LogUnavailable(f"redis at {self.url} unreachable for {self.retry_for:g} s: {exc}") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)

    async def restore(self, session: str, records: Sequence[Record]) -> int:
        self._check_open()
        keys = [self.keys.hash(session), self.keys.stream(session), self.keys.lifecycle(session)]
        args: list[bytes | int | str] = []
        for record, (states, named) in zip(records, restored([r.event for r in records])):
            args += (record.seq, record.raw, len(states))
            for subject, letter, owned in states:
                args += (subject, letter, 1 if owned else 0)
            args += (len(named), *named)
        last = await self.with_retry(lambda: self._restore_script(keys=keys, args=args))
        self.commits += 1
        return int(last)

    async def ping(self) -> None:
        self._check_open()
        try:
            async with asyncio.timeout(_PING_SECONDS):
                await self.client.ping()
        except (*TRANSIENT, TimeoutError) as exc:
            raise LogUnavailable(f"redis at {self.url} is unreachable: {exc or type(exc).__name__}") from exc

    # ------------------------------------------------------------------ reads

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosed(f"log {self.url} is closed")

    async def read(self, session: str, after: int = 0, limit: int | None = None) -> list[Record]:
        self._check_open()
        if after < 0:
            raise ValueError(f"after must be >= 0, not {after}")
        if limit is not None and limit <= 0:
            return []
        keys = [self.keys.hash(session), self.keys.stream(session)]
        reply = await self.with_retry(lambda: self._read_script(keys=keys, args=[after, limit or 0]))
        first = int(reply[0])
        if after + 1 < first:
            raise CursorExpired(session, after, first)
        self.records_read += len(reply) - 1
        return [Record.from_json(d) for d in reply[1:]]

    async def bounds(self, session: str) -> tuple[int, int]:
        self._check_open()
        first, last = await self.with_retry(lambda: self.client.hmget(self.keys.hash(session), "first", "last"))
        if last is None or int(last) == 0:
            return (0, 0)
        return (1 if first is None else int(first), int(last))

    async def load_snapshot(self, session: str) -> Snapshot | None:
        self._check_open()
        at, state = await self.with_retry(lambda: self.client.hmget(self.keys.hash(session), "snap_at", "snap"))
        return None if at is None else Snapshot(int(at), bytes(state))

    async def sessions(self) -> list[SessionMeta]:
        self._check_open()
        ids = sorted(await self.with_retry(lambda: self.client.smembers(self.keys.sessions)))
        if not ids:
            return []

        async def fetch() -> list[Any]:
            async with self.client.pipeline(transaction=False) as pipe:
                for session in ids:
                    pipe.hget(self.keys.hash(session.decode()), "meta")
                return list(await pipe.execute())

        return [msgspec.json.decode(m, type=SessionMeta) for m in await self.with_retry(fetch) if m is not None]

    async def get_meta(self, session: str) -> SessionMeta | None:
        self._check_open()
        data = await self.with_retry(lambda: self.client.hget(self.keys.hash(session), "meta"))
        return None if data is None else msgspec.json.decode(data, type=SessionMeta)

    # ------------------------------------------------------------------ other writes

    async def save_snapshot(self, session: str, snapshot: Snapshot) -> None:
        self._check_open()
        keys = [self.keys.hash(session), self.keys.stream(session)]
        args: list[bytes | int] = [snapshot.at, snapshot.state, -1 if self.retain is None else self.retain]
        await self.with_retry(lambda: self._snapshot_script(keys=keys, args=args))
        self.commits += 1

    async def update_meta(self, session: str, change: Callable[[SessionMeta], object]) -> SessionMeta | None:
        # Compare and set on the metadata alone (appends write the same hash): stored only if no
        # process wrote it since it was read, else read and changed again. A rotated token is never
        # put back by another process's stale copy.
        self._check_open()
        key = self.keys.hash(session)

        async def attempt() -> SessionMeta | None:
            for _ in range(_META_TRIES):
                data = await self.client.hget(key, "meta")
                if data is None:
                    return None
                meta = msgspec.json.decode(data, type=SessionMeta)
                if change(meta) is False or await self._meta_script(keys=[key], args=[data, msgspec.json.encode(meta)]):
                    return meta
            raise LogUnavailable(
                f"the metadata of session {session!r} changed {_META_TRIES} times while it was written"
            )

        meta: SessionMeta | None = await self.with_retry(attempt)
        self.commits += 1
        return meta

    async def put_meta(self, meta: SessionMeta) -> None:
        self._check_open()
        data = msgspec.json.encode(meta)

        async def write() -> None:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(self.keys.hash(meta.id), "meta", data)
                pipe.sadd(self.keys.sessions, meta.id)
                pipe.delete(self.keys.deleted(meta.id))
                await pipe.execute()

        await self.with_retry(write)
        self.commits += 1

    async def delete(self, session: str) -> None:
        self._check_open()

        async def write() -> None:
            owners = await self.client.smembers(self.keys.owners)
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(
                    self.keys.hash(session),
                    self.keys.stream(session),
                    self.keys.line(session),
                    self.keys.lifecycle(session),
                )
                # Late appends (work of the session still ending somewhere) are refused, not
                # written into a new stream from seq 1; creating the session again lifts it.
                pipe.set(self.keys.deleted(session), 1, ex=_DELETED_SECONDS)
                pipe.srem(self.keys.sessions, session)
                # Out of the owners' indexes too: a reaper would open it for nothing. (An owner
                # whose set empties stays in ``owners``, harmlessly: taking it out here could
                # race with the append script indexing its next work.)
                for owner in owners:
                    pipe.srem(self.keys.owned(owner.decode() if isinstance(owner, bytes) else owner), session)
                await pipe.execute()

        await self.with_retry(write)
        self.commits += 1

    # ------------------------------------------------------------------ close

    async def aclose(self) -> None:
        if self._closed:
            return
        writer = self._writer
        if writer is not None:
            await asyncio.gather(writer, return_exceptions=True)
        self._closed = True
        await self.client.aclose()
