"""Durable append: the SQLite log beside raw ``sqlite3`` inserts.

Ours: P producers, one session each, each awaiting its own ``log.append`` of
``batch`` records at a time. The log commits in a writer thread and groups
concurrent appends into one transaction. Baseline: one ``sqlite3`` connection
(WAL, synchronous=NORMAL, the same table shape) inserting ``batch`` records per
transaction and moving the session's last seq, as a sequencer must.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import time
from collections.abc import Sequence

from ..backends import EventLog, open_log
from ..events import Event, Record
from .encode import sample_events
from .figures import Pair, Target
from .modes import Mode
from .report import Section

_RAW_SCHEMA = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE records (
    session TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (session, seq)
) WITHOUT ROWID;
"""


def calls_for(records: int, producers: int, batch: int) -> int:
    """Appends each producer makes so a run writes about ``records`` records (at least one)."""
    return max(1, records // (producers * batch))


async def _produce(log: EventLog, producers: int, batch: int, calls: int, events: Sequence[Event]) -> float:
    chunk = list(events[:batch])

    async def producer(p: int) -> None:
        session = f"s_{p}"
        for _ in range(calls):
            await log.append(session, chunk)

    started = time.perf_counter()
    await asyncio.gather(*(producer(p) for p in range(producers)))
    return producers * calls * batch / (time.perf_counter() - started)


async def log_run(url: str, producers: int, batch: int, calls: int) -> float:
    """Records/s appended to the log at ``url`` (opened and closed here; the clock covers the appends)."""
    log = open_log(url)
    try:
        return await _produce(log, producers, batch, calls, sample_events(batch))
    finally:
        await log.aclose()


async def sqlite_run(directory: str, producers: int, batch: int, calls: int) -> float:
    """Records/s appended to a fresh SQLite log file in ``directory``."""
    path = fresh_db_path(directory)
    try:
        return await log_run(f"sqlite:///{path}", producers, batch, calls)
    finally:
        remove_db(path)


def raw_run(directory: str, producers: int, batch: int, calls: int) -> float:
    """Records/s of raw sqlite3: ``batch`` records per transaction, sessions taken in turn."""
    path = fresh_db_path(directory)
    ts = time.time_ns() // 1_000_000
    payloads = [Record("s_0", i + 1, ts, e).raw for i, e in enumerate(sample_events(batch))]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_RAW_SCHEMA)
        sessions = [f"s_{p}" for p in range(producers)]
        conn.executemany("INSERT INTO sessions (id) VALUES (?)", [(s,) for s in sessions])
        last = dict.fromkeys(sessions, 0)
        started = time.perf_counter()
        for _ in range(calls):
            for session in sessions:
                seq = last[session]
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO records (session, seq, data) VALUES (?, ?, ?)",
                    [(session, seq + i + 1, payload) for i, payload in enumerate(payloads)],
                )
                last[session] = seq + batch
                conn.execute("UPDATE sessions SET last_seq = ? WHERE id = ?", (seq + batch, session))
                conn.execute("COMMIT")
        return producers * calls * batch / (time.perf_counter() - started)
    finally:
        conn.close()
        remove_db(path)


REPLAY_PAGE = 1024


async def replay_run(directory: str, records: int) -> tuple[float, float]:
    """Records/s replayed from a SQLite log: (ours: ``subscribe(after=0)`` to the end, raw: paged SELECTs).

    The session is written first (not timed) and opened in a fresh hub, so its ring is empty
    and the subscription reads everything from the log.
    """
    from ..hub import Hub

    path = fresh_db_path(directory)
    url = f"sqlite:///{path}"
    try:
        events = sample_events(64)
        log = open_log(url)
        try:
            for _ in range(records // 64):
                await log.append("s_replay", events)
        finally:
            await log.aclose()
        total = records // 64 * 64
        async with Hub.open(url) as hub:
            session = await hub.session("s_replay")
            started = time.perf_counter()
            got = 0
            async with session.subscribe(after=0) as sub:
                while got < total:
                    batch = await sub.batch()
                    got += sum(1 for item in batch if isinstance(item, Record))
            ours = total / (time.perf_counter() - started)
        conn = sqlite3.connect(path)
        try:
            started = time.perf_counter()
            after, got = 0, 0
            while got < total:
                rows = conn.execute(
                    "SELECT seq, data FROM records WHERE session = ? AND seq > ? ORDER BY seq LIMIT ?",
                    ("s_replay", after, REPLAY_PAGE),
                ).fetchall()
                after = rows[-1][0]
                got += len(rows)
            base = total / (time.perf_counter() - started)
        finally:
            conn.close()
        return ours, base
    finally:
        remove_db(path)


def fresh_db_path(directory: str) -> str:
    """An absolute path of a database file that does not exist yet."""
    fd, path = tempfile.mkstemp(suffix=".db", dir=os.path.abspath(directory))
    os.close(fd)
    os.unlink(path)
    return path


def remove_db(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


async def measure(mode: Mode, directory: str) -> Section:
    """The durable-append section: the SQLite log beside raw sqlite3, for each P and batch size."""
    section = Section(
        "Durable append (SQLite)",
        "Ours: P producers (one session each), each awaiting its own `log.append` on `sqlite:///` "
        "(WAL, synchronous=NORMAL, group commit in one writer thread). Baseline: raw `sqlite3`, one connection, "
        "the same table shape, the same number of records per transaction (1 or 64), the session's last seq "
        "updated in each transaction. A fresh database file per run.",
        plot="throughput",
        xlabel="concurrent producers P",
    )
    for batch in (1, 64):
        for producers in mode.producers:
            total = mode.single_records if batch == 1 else mode.batch_records
            calls = calls_for(total, producers, batch)
            group = f"{batch} record{'s' if batch > 1 else ''}/append"
            pair = Pair(f"P={producers}, {group}", "records/s", x=producers, group=group)
            if batch == 64:
                pair.target = Target(0.8 if producers == 1 else 0.7)
            elif producers == 100:
                pair.target = Target(0.3)
            for rep in range(mode.repeats):
                if rep % 2:
                    base = raw_run(directory, producers, batch, calls)
                    ours = await sqlite_run(directory, producers, batch, calls)
                else:
                    ours = await sqlite_run(directory, producers, batch, calls)
                    base = raw_run(directory, producers, batch, calls)
                pair.add(ours, base)
            section.pairs.append(pair)
    replay = Pair(f"replay {mode.batch_records} records to a subscriber", "records/s")
    for _ in range(mode.repeats):
        replay.add(*await replay_run(directory, mode.batch_records))
    section.pairs.append(replay)
    section.notes.append(
        "Replay: ours is `subscribe(after=0)` on a freshly opened session (read from the log in pages, decoded "
        f"to typed records); the baseline is raw paged `SELECT`s of {REPLAY_PAGE} rows, not decoded."
    )
    return section
