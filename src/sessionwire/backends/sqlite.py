"""``sqlite:///path.db``: the embedded default, durable, with group commit.

One writer thread owns the write connection. Appends from every session queue up
while it commits; it takes everything queued, writes it in one transaction, and
only then resolves each caller's append. So a hundred producers appending one
record each cost a handful of commits, not a hundred. Reads run on a separate
connection in a reader thread (WAL lets them proceed while the writer commits).

One process at a time: the log takes an exclusive ``flock`` on ``path + ".lock"``
while it is open. A second process's recovery would otherwise interrupt the
first's live turns, and neither would see the other's appends. The kernel drops
the lock when the process dies, so a crashed server's file reopens at once.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import msgspec

from ..errors import CursorExpired, LifecycleViolation, LogClosed, LogUnavailable, SessionNotFound
from ..events import Event, Record, record_prefix
from .base import Fence, SessionMeta, Snapshot
from .local import OwnerIndex, update_meta_here
from .sqlite_file import connect, lock, unlock
from .sqlite_lifecycle import Lifecycle
from .sqlite_writer import STOP, Append, Failure, Job, answer, run_job

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL DEFAULT 0,
    first_seq INTEGER NOT NULL DEFAULT 1,
    meta BLOB,
    snapshot_at INTEGER,
    snapshot BLOB
);
CREATE TABLE IF NOT EXISTS records (
    session TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (session, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    reply BLOB NOT NULL,
    expires INTEGER NOT NULL
);
"""

_MAX_BATCH = 4096  # appends per transaction, at most
_METAS = 4096  # sessions whose metadata the writer keeps in memory, the most recently used


class SQLiteLog:
    """A durable log in one SQLite file (WAL, synchronous=NORMAL, group commit).

    Args:
        path: The database file; created if missing.
        retain: Records kept per session once a snapshot covers older ones (None: all).
        read_only: Only read (``?mode=ro``): no lock and no writer, so it works while a server
            has the file open; every write raises LogClosed.
        index: Where to note which owners start work in which sessions (see :mod:`.local`).

    Raises:
        StoreLocked: another process has this file open (not with ``read_only``).
        FileNotFoundError: ``read_only`` and there is no such file.
    """

    def __init__(
        self, path: str, retain: int | None = None, read_only: bool = False, index: OwnerIndex | None = None
    ) -> None:
        self.read_only = read_only
        self.index = index or OwnerIndex()
        self._meta_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.unwritten: set[str] = set()
        self._deleted: set[str] = set()  # refused appends until created again (put_meta); one process per file
        # The metadata of recent sessions, encoded, as last written here: the file's one writer
        # (it holds the lock) reads its own writes from memory, not through the reader thread.
        self._metas: OrderedDict[str, bytes] = OrderedDict()
        self._meta_writes = 0  # metadata writes and deletes begun: a read that overlapped one is not kept
        self._meta_pending = 0  # ... and not yet done: a read begun meanwhile is not kept either
        if read_only and not os.path.exists(path):
            raise FileNotFoundError(f"no SQLite log at {path}")
        self._lock_fd = None if read_only else lock(path)
        self.path = path
        self.retain = retain
        self.commits = 0
        self.records_read = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sessionwire-sqlite-read")
        self._reader_conn: sqlite3.Connection | None = None
        self._writer = threading.Thread(target=self._write_loop, name="sessionwire-sqlite-write", daemon=True)
        if read_only:
            return
        try:
            conn = connect(path)
            conn.executescript(_SCHEMA)
            Lifecycle.create(conn)
        except BaseException:
            unlock(self._lock_fd)
            raise
        self._writer_conn = conn
        self._lifecycle = Lifecycle()  # the writer thread's
        self._writer.start()

    # ------------------------------------------------------------------ writes

    def _check_writable(self) -> None:
        if self._closed:
            raise LogClosed(f"log {self.path} is closed")
        if self.read_only:
            raise LogClosed(f"log {self.path} is open read-only")

    def submit(
        self, session: str, events: Sequence[Event], fence: Fence | None = None, known: int = 0, external: bool = False
    ) -> asyncio.Future[list[Record]]:
        """Queue an append for the writer thread's next transaction; the future resolves once it committed."""
        self._check_writable()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Record]] = loop.create_future()
        if not events:
            future.set_result([])
            return future
        if session in self._deleted:
            raise SessionNotFound(session)
        self.index.check(fence)  # one process per file: the fences are all in memory here
        self.index.note(session, events)
        self._queue.put(Append(session, events, future, loop, external))
        return future

    async def append(
        self, session: str, events: Sequence[Event], fence: Fence | None = None, external: bool = False
    ) -> list[Record]:
        # The write is committed whether or not this caller stays to see it.
        return await asyncio.shield(self.submit(session, events, fence, external=external))

    async def run_write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in the writer thread, in order with the appends (the file's one writer)."""
        return await asyncio.shield(self._job(fn))  # a caller that stops waiting does not stop it

    async def run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the reader connection, in its thread."""
        return await self._readq(fn)

    def _job(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue ``fn`` for the writer thread, in order with the appends; the future is its result."""
        self._check_writable()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(Job(fn, future, loop))
        return future

    def _write_loop(self) -> None:
        conn = self._writer_conn
        while True:
            item = self._queue.get()
            if item is STOP:
                break
            if isinstance(item, Job):
                answer(item.loop, [(item.future, run_job(item.fn, conn))])
                continue
            batch = [item]
            stop = False
            while len(batch) < _MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(nxt, Job):
                    # Other writes keep their place in the order: commit what came before first.
                    self._commit(conn, batch)
                    batch = []
                    answer(nxt.loop, [(nxt.future, run_job(nxt.fn, conn))])
                    continue
                if nxt is STOP:
                    stop = True
                    break
                batch.append(nxt)
            if batch:
                self._commit(conn, batch)
            if stop:
                break
        conn.close()
        # Whatever another thread queued after the stop is refused, not left waiting forever.
        while True:
            try:
                late = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(late, (Append, Job)):
                answer(late.loop, [(late.future, Failure(LogClosed(f"log {self.path} is closed")))])

    def _commit(self, conn: sqlite3.Connection, batch: list[Append]) -> None:
        if not batch:
            return
        ts = time.time_ns() // 1_000_000
        results: list[tuple[asyncio.Future[Any], Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            last: dict[str, int] = {}
            rows = []
            life = self._lifecycle.begin(conn)
            for item in batch:
                session = item.session
                if item.plan:
                    try:
                        life.settle(session, item.plan)
                    except LifecycleViolation as exc:
                        results.append((item.future, Failure(exc)))
                        continue
                seq = last.get(session)
                if seq is None:
                    row = conn.execute("SELECT last_seq FROM sessions WHERE id = ?", (session,)).fetchone()
                    if row is None:
                        conn.execute("INSERT INTO sessions (id) VALUES (?)", (session,))
                        seq = 0
                    else:
                        seq = row[0]
                prefix = record_prefix(session)
                records = []
                for event, payload in zip(item.events, item.payloads):
                    seq += 1
                    record = Record.from_event_json(session, seq, ts, event, payload, prefix)
                    records.append(record)
                    rows.append((session, seq, record.raw))
                last[session] = seq
                results.append((item.future, records))
            conn.executemany("INSERT INTO records (session, seq, data) VALUES (?, ?, ?)", rows)
            conn.executemany("UPDATE sessions SET last_seq = ? WHERE id = ?", [(v, k) for k, v in last.items()])
            life.write()
            conn.execute("COMMIT")
            life.commit()
            self.commits += 1
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results = [(item.future, Failure(exc)) for item in batch]
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for (future, value), item in zip(results, batch):
            by_loop.setdefault(item.loop, []).append((future, value))
        for loop, settled in by_loop.items():
            answer(loop, settled)

    async def save_snapshot(self, session: str, snapshot: Snapshot) -> None:
        retain = self.retain

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT snapshot_at, last_seq FROM sessions WHERE id = ?", (session,)).fetchone()
                if row is None:
                    conn.execute("INSERT INTO sessions (id) VALUES (?)", (session,))
                    row = (None, 0)
                at, last = row
                if at is None or snapshot.at >= at:
                    conn.execute(
                        "UPDATE sessions SET snapshot_at = ?, snapshot = ? WHERE id = ?",
                        (snapshot.at, snapshot.state, session),
                    )
                    at = snapshot.at
                if retain is not None:
                    drop_through = min(at, last - retain)
                    conn.execute("DELETE FROM records WHERE session = ? AND seq <= ?", (session, drop_through))
                    conn.execute(
                        "UPDATE sessions SET first_seq = max(first_seq, ?) WHERE id = ?", (drop_through + 1, session)
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self.commits += 1

        await self.run_write(write)

    async def update_meta(self, session: str, change: Callable[[SessionMeta], object]) -> SessionMeta | None:
        return await update_meta_here(self._meta_locks, self.get_meta, self._replace_meta, session, change)

    async def _replace_meta(self, meta: SessionMeta) -> bool:
        data = msgspec.json.encode(meta)

        def write(conn: sqlite3.Connection) -> bool:
            # Not an insert: a session deleted since its metadata was read stays deleted.
            replaced = conn.execute("UPDATE sessions SET meta = ? WHERE id = ? AND meta IS NOT NULL", (data, meta.id))
            self.commits += 1
            return replaced.rowcount == 1

        written = self._meta_job(write)
        writes = self._meta_writes
        self._metas.pop(meta.id, None)
        written.add_done_callback(lambda done: self._replaced(meta.id, data, writes, done))
        return bool(await asyncio.shield(written))  # a caller that stops waiting does not stop it

    def _replaced(self, session: str, data: bytes, writes: int, done: asyncio.Future[bool]) -> None:
        # In memory once it is in the file, unless a later write (cached at once) came meanwhile.
        if not done.cancelled() and done.exception() is None and done.result() and self._meta_writes == writes:
            self._remember(session, data)

    def _meta_job(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue a write of metadata: no read that overlaps it, or begins before it is done, is kept."""
        written = self._job(fn)
        self._meta_writes += 1
        self._meta_pending += 1
        written.add_done_callback(self._meta_done)
        return written

    def _meta_done(self, done: asyncio.Future[Any]) -> None:
        self._meta_pending -= 1

    async def put_meta(self, meta: SessionMeta) -> None:
        data = msgspec.json.encode(meta)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO sessions (id, meta) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET meta = excluded.meta",
                (meta.id, data),
            )
            self.commits += 1

        written = self._meta_job(write)
        self._remember(meta.id, data)  # at once, in order with the other writes of this process
        written.add_done_callback(lambda done: self._unless_written(meta.id, data, done))
        await asyncio.shield(written)  # a caller that stops waiting does not stop the write
        self._deleted.discard(meta.id)

    def _unless_written(self, session: str, data: bytes, done: asyncio.Future[None]) -> None:
        # The write failed (not a caller that stopped waiting: the write goes on): memory must not
        # hold what the file lacks, unless a later write has replaced it meanwhile.
        if (done.cancelled() or done.exception() is not None) and self._metas.get(session) is data:
            del self._metas[session]

    def _remember(self, session: str, data: bytes) -> None:
        self._metas[session] = data
        self._metas.move_to_end(session)
        if len(self._metas) > _METAS:
            self._metas.popitem(last=False)

    async def delete(self, session: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM records WHERE session = ?", (session,))
            conn.execute("DELETE FROM sessions WHERE id = ?", (session,))
            self._lifecycle.delete(conn, session)
            conn.execute("COMMIT")
            self.commits += 1

        self._deleted.add(session)  # from now: an append queued before this is deleted with the rest
        deleted = self._meta_job(write)
        self._metas.pop(session, None)
        await asyncio.shield(deleted)  # a caller that stops waiting does not stop it
        self.index.drop_session(session)

    async def restore(self, session: str, records: Sequence[Record]) -> int:
        return (await self.bounds(session))[1]  # one process per file: never behind it

    async def ping(self) -> None:
        def query(conn: sqlite3.Connection) -> None:
            conn.execute("SELECT 1 FROM sessions LIMIT 1").fetchall()

        try:
            await self._readq(query)
        except sqlite3.Error as exc:
            raise LogUnavailable(f"the SQLite file {self.path} cannot be read: {exc}") from exc

    # ------------------------------------------------------------------ reads

    async def _readq(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise LogClosed(f"log {self.path} is closed")

        def run() -> T:
            if self._reader_conn is None:
                self._reader_conn = connect(self.path, self.read_only)
            return fn(self._reader_conn)

        return await asyncio.get_running_loop().run_in_executor(self._reader, run)

    async def read(self, session: str, after: int = 0, limit: int | None = None) -> list[Record]:
        if after < 0:
            raise ValueError(f"after must be >= 0, not {after}")

        def query(conn: sqlite3.Connection) -> tuple[int, list[Any]]:
            # One read transaction, so the bounds and the rows agree.
            conn.execute("BEGIN")
            try:
                row = conn.execute("SELECT first_seq FROM sessions WHERE id = ?", (session,)).fetchone()
                rows = conn.execute(
                    "SELECT data FROM records WHERE session = ? AND seq > ? ORDER BY seq LIMIT ?",
                    (session, after, -1 if limit is None else limit),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            return (1 if row is None else row[0], rows)

        first, rows = await self._readq(query)
        if after + 1 < first:
            raise CursorExpired(session, after, first)
        self.records_read += len(rows)
        return [Record.from_json(r[0]) for r in rows]

    async def bounds(self, session: str) -> tuple[int, int]:
        def query(conn: sqlite3.Connection) -> tuple[int, int]:
            row = conn.execute("SELECT first_seq, last_seq FROM sessions WHERE id = ?", (session,)).fetchone()
            return (0, 0) if row is None or row[1] == 0 else (row[0], row[1])

        return await self._readq(query)

    async def load_snapshot(self, session: str) -> Snapshot | None:
        def query(conn: sqlite3.Connection) -> Snapshot | None:
            row = conn.execute("SELECT snapshot_at, snapshot FROM sessions WHERE id = ?", (session,)).fetchone()
            return None if row is None or row[0] is None else Snapshot(row[0], bytes(row[1]))

        return await self._readq(query)

    async def sessions(self) -> list[SessionMeta]:
        def query(conn: sqlite3.Connection) -> list[bytes]:
            return [r[0] for r in conn.execute("SELECT meta FROM sessions WHERE meta IS NOT NULL ORDER BY id")]

        return [msgspec.json.decode(m, type=SessionMeta) for m in await self._readq(query)]

    async def get_meta(self, session: str) -> SessionMeta | None:
        data = self._metas.get(session)
        if data is not None:
            self._metas.move_to_end(session)
            return msgspec.json.decode(data, type=SessionMeta)  # a copy of its own: callers change it

        def query(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT meta FROM sessions WHERE id = ?", (session,)).fetchone()
            return None if row is None else row[0]

        writes, settled = self._meta_writes, not self._meta_pending
        data = await self._readq(query)
        if data is None:
            return None
        if not self.read_only and settled and self._meta_writes == writes:
            self._remember(session, bytes(data))  # unless metadata was written (or deleted) meanwhile
        return msgspec.json.decode(data, type=SessionMeta)

    # ------------------------------------------------------------------ close

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer.is_alive():
            self._queue.put(STOP)
            await asyncio.get_running_loop().run_in_executor(None, self._writer.join)

        def close_reader() -> None:
            if self._reader_conn is not None:
                self._reader_conn.close()

        await asyncio.get_running_loop().run_in_executor(self._reader, close_reader)
        self._reader.shutdown(wait=True)
        unlock(self._lock_fd)
        self._lock_fd = None
