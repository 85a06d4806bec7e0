"""``memory://``: an in-process log, for tests and throwaway sessions."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence

import msgspec

from ..errors import CursorExpired, LogClosed, SessionNotFound
from ..events import Event, Record, encode_event, encode_record, record_prefix
from .base import Fence, SessionMeta, Snapshot
from .lifecycle import Plan, plan, settle
from .local import OwnerIndex, update_meta_here


class _Stream:
    __slots__ = ("first", "last", "life", "passed", "prefix", "records", "snapshot")

    def __init__(self, session: str) -> None:
        self.records: deque[Record] = deque()
        self.first = 1
        self.last = 0
        self.prefix = record_prefix(session)
        self.snapshot: Snapshot | None = None
        self.life: dict[str, str] = {}  # the lifecycle state of each subject (see .lifecycle)
        self.passed: Plan | None = None  # the last plan checked, if it changed nothing and names only


class MemoryLog:
    """Keeps every session's records in memory; nothing survives the process.

    Args:
        retain: Records kept per session once a snapshot covers older ones (None: all).
        index: Where to note which owners start work in which sessions (see :mod:`.local`).
    """

    def __init__(self, retain: int | None = None, index: OwnerIndex | None = None) -> None:
        self.retain = retain
        self.index = index or OwnerIndex()
        self._meta_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.commits = 0
        self.records_read = 0
        self.unwritten: set[str] = set()
        self._streams: dict[str, _Stream] = {}
        self._meta: dict[str, SessionMeta] = {}
        self._deleted: set[str] = set()  # refused appends until created again (put_meta)
        self._closed = False

    def _stream(self, session: str) -> _Stream:
        stream = self._streams.get(session)
        if stream is None:
            stream = self._streams[session] = _Stream(session)
        return stream

    def _check(self) -> None:
        if self._closed:
            raise LogClosed("the memory:// log is closed")

    def submit(
        self,
        session: str,
        events: Sequence[Event],
        fence: Fence | None = None,
        known: int = 0,
        external: bool = False,
    ) -> asyncio.Future[list[Record]]:
        """Append at once: the future is done when this returns."""
        future: asyncio.Future[list[Record]] = asyncio.get_running_loop().create_future()
        future.set_result(self._append(session, events, fence, external))
        return future

    def append_now(self, session: str, events: Sequence[Event], fence: Fence | None, external: bool) -> list[Record]:
        """:meth:`submit` without the future: the records (a channel's publish on memory:// takes this path)."""
        return self._append(session, events, fence, external)

    async def append(
        self, session: str, events: Sequence[Event], fence: Fence | None = None, external: bool = False
    ) -> list[Record]:
        return self._append(session, events, fence, external)

    def _append(
        self, session: str, events: Sequence[Event], fence: Fence | None = None, external: bool = False
    ) -> list[Record]:
        self._check()
        if not events:
            return []
        self.index.check(fence)
        if session in self._deleted:
            raise SessionNotFound(session)
        stream = self._stream(session)
        todo = plan(events, external)
        if todo.subjects and todo is not stream.passed:
            changes = settle(todo, stream.life.get)
            if changes:
                stream.life.update(changes)
            # A plan that only names subjects and passed passes again until a state changes.
            stream.passed = None if changes or not todo.naming else todo
        self.index.note(session, events)
        ts = time.time_ns() // 1_000_000
        out = []
        prefix, seq = stream.prefix, stream.last
        for event in events:
            seq += 1
            out.append(Record(session, seq, ts, event, encode_record(prefix, seq, ts, encode_event(event))))
        stream.last = seq
        stream.records.extend(out)
        self.commits += 1
        return out

    async def read(self, session: str, after: int = 0, limit: int | None = None) -> list[Record]:
        self._check()
        if after < 0:
            raise ValueError(f"after must be >= 0, not {after}")
        stream = self._streams.get(session)
        if stream is None:
            return []
        if after + 1 < stream.first:
            raise CursorExpired(session, after, stream.first)
        start = after + 1 - stream.first
        stop = len(stream.records) if limit is None else min(len(stream.records), start + limit)
        out = [stream.records[i] for i in range(start, stop)]
        self.records_read += len(out)
        return out

    async def bounds(self, session: str) -> tuple[int, int]:
        self._check()
        stream = self._streams.get(session)
        if stream is None or stream.last == 0:
            return (0, 0)
        return (stream.first, stream.last)

    async def save_snapshot(self, session: str, snapshot: Snapshot) -> None:
        self._check()
        stream = self._stream(session)
        if stream.snapshot is None or snapshot.at >= stream.snapshot.at:
            stream.snapshot = snapshot
        if self.retain is not None:
            drop_through = min(stream.snapshot.at, stream.last - self.retain)
            while stream.records and stream.first <= drop_through:
                stream.records.popleft()
                stream.first += 1

    async def load_snapshot(self, session: str) -> Snapshot | None:
        self._check()
        stream = self._streams.get(session)
        return None if stream is None else stream.snapshot

    async def sessions(self) -> list[SessionMeta]:
        self._check()
        return [_copy(self._meta[k]) for k in sorted(self._meta)]

    async def get_meta(self, session: str) -> SessionMeta | None:
        self._check()
        meta = self._meta.get(session)
        return None if meta is None else _copy(meta)

    async def update_meta(self, session: str, change: Callable[[SessionMeta], object]) -> SessionMeta | None:
        return await update_meta_here(self._meta_locks, self.get_meta, self._replace_meta, session, change)

    async def _replace_meta(self, meta: SessionMeta) -> bool:
        if meta.id not in self._meta:
            return False  # deleted meanwhile
        await self.put_meta(meta)
        return True

    async def put_meta(self, meta: SessionMeta) -> None:
        self._check()
        self._meta[meta.id] = _copy(meta)  # a value, as a real store keeps it
        self._deleted.discard(meta.id)

    async def delete(self, session: str) -> None:
        self._check()
        self._meta.pop(session, None)
        self._streams.pop(session, None)
        self._deleted.add(session)
        self.index.drop_session(session)

    async def restore(self, session: str, records: Sequence[Record]) -> int:
        self._check()
        stream = self._streams.get(session)
        return 0 if stream is None else stream.last

    async def ping(self) -> None:
        self._check()

    async def aclose(self) -> None:
        self._closed = True


def _copy(meta: SessionMeta) -> SessionMeta:
    return msgspec.json.decode(msgspec.json.encode(meta), type=SessionMeta)
