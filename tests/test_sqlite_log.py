"""SQLite specifics: group commit, durability across a SIGKILL, one process per file."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sessionwire.backends import SessionMeta, Snapshot, open_log
from sessionwire.backends.sqlite import SQLiteLog
from sessionwire.errors import LifecycleViolation, LogClosed, StoreLocked
from sessionwire.events import (
    ApprovalRequested,
    ApprovalResolved,
    JobCompleted,
    JobInterrupted,
    JobStarted,
    MessageDelta,
    Status,
    TurnCompleted,
    TurnInterrupted,
    TurnStarted,
)
from sessionwire.state import fold_records


def delta(text: str) -> MessageDelta:
    return MessageDelta(message="m1", part=0, text=text)


async def test_group_commit_takes_far_fewer_commits_than_appends(tmp_path: Path) -> None:
    log = SQLiteLog(str(tmp_path / "log.db"))
    try:
        producers, appends_each = 50, 10

        async def producer(p: int) -> None:
            for i in range(appends_each):
                await log.append(f"s{p % 5}", [delta(f"{p}:{i}")])

        before = log.commits
        await asyncio.gather(*(producer(p) for p in range(producers)))
        commits = log.commits - before
        appends = producers * appends_each
        # 50 producers each awaiting their own appends: while one transaction commits, the
        # others queue up and share the next. One commit per append would be 500.
        assert commits <= appends // 5, f"{commits} commits for {appends} appends"
        for s in range(5):
            assert [r.seq for r in await log.read(f"s{s}")] == list(range(1, 101))
    finally:
        await log.aclose()


async def test_an_append_returns_only_once_committed(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = SQLiteLog(str(path))
    try:
        records = await log.append("s1", [delta("a"), delta("b")])
        # Another connection (another process, in effect) sees them as soon as append returned.
        import sqlite3

        with sqlite3.connect(path) as other:
            rows = other.execute("SELECT seq FROM records WHERE session = 's1' ORDER BY seq").fetchall()
        assert [r[0] for r in rows] == [r.seq for r in records] == [1, 2]
    finally:
        await log.aclose()


async def test_wal_mode(tmp_path: Path) -> None:
    log = SQLiteLog(str(tmp_path / "log.db"))
    try:
        await log.append("s1", [delta("a")])
        assert (tmp_path / "log.db-wal").exists()
    finally:
        await log.aclose()


async def test_relative_and_absolute_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = open_log("sqlite:///rel.db")
    await rel.append("s1", [delta("a")])
    await rel.aclose()
    assert (tmp_path / "rel.db").exists()
    absolute = open_log(f"sqlite:///{tmp_path / 'abs.db'}?retain=5")
    assert isinstance(absolute, SQLiteLog) and absolute.retain == 5
    await absolute.aclose()
    assert (tmp_path / "abs.db").exists()
    with pytest.raises(ValueError):
        open_log("sqlite:///")
    with pytest.raises(ValueError):
        open_log("memory://?retain=-1")
    with pytest.raises(ValueError):
        open_log("postgres://x")


CRASH_CHILD = r"""
import asyncio, os, sys
from sessionwire.events import MessageDelta, Status
from sessionwire.backends.sqlite import SQLiteLog

async def main(path, out):
    log = SQLiteLog(path)
    async def producer(p):
        i = 0
        while True:
            n = 1 + (i + p) % 4
            events = [MessageDelta(message="m", part=0, text=f"{p}:{i}:{k}") for k in range(n)]
            records = await log.append("crash", events)
            # Reported only after the append returned: these must survive the kill.
            os.write(out, (" ".join(str(r.seq) for r in records) + "\n").encode())
            i += 1
    await asyncio.gather(*(producer(p) for p in range(8)))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def test_sigkill_loses_no_returned_append_and_leaves_no_gap(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    script = tmp_path / "child.py"
    script.write_text(CRASH_CHILD)
    read_fd, write_fd = os.pipe()
    child = subprocess.Popen([sys.executable, str(script), str(path), str(write_fd)], pass_fds=(write_fd,))
    os.close(write_fd)
    reported: list[int] = []
    buffer = b""
    try:
        deadline = time.monotonic() + 60
        # Kill it mid-flight, once it has appended a good number of records.
        while len(reported) < 3000:
            if time.monotonic() > deadline:
                raise AssertionError(f"the child reported only {len(reported)} seqs in 60 s")
            chunk = os.read(read_fd, 65536)
            if not chunk:
                raise AssertionError(f"the child died early with code {child.wait()}")
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            reported.extend(int(s) for line in lines for s in line.split())
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        # Whatever was already in the pipe was reported before the kill, so it returned too.
        while chunk := os.read(read_fd, 65536):
            buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        reported.extend(int(s) for line in lines for s in line.split())
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        os.close(read_fd)
    assert child.returncode == -signal.SIGKILL

    async def check() -> None:
        log = SQLiteLog(str(path))
        try:
            records = await log.read("crash")
            seqs = [r.seq for r in records]
            assert seqs == list(range(1, len(seqs) + 1)), "the reopened log has a gap"
            assert set(reported) <= set(seqs), f"lost {sorted(set(reported) - set(seqs))[:10]}"
            assert len(set(reported)) == len(reported), "a seq was reported twice"
            assert await log.bounds("crash") == (1, len(seqs))
            # Reopening keeps the numbering.
            (nxt,) = await log.append("crash", [delta("after the crash")])
            assert nxt.seq == len(seqs) + 1
        finally:
            await log.aclose()

    asyncio.run(check())


HOLDER_CHILD = r"""
import asyncio, sys
from sessionwire.backends.sqlite import SQLiteLog

async def main(path):
    log = SQLiteLog(path)
    print("open", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # until told to close
    await log.aclose()
    print("closed", flush=True)

asyncio.run(main(sys.argv[1]))
"""


def test_a_second_process_cannot_open_the_same_file(tmp_path: Path) -> None:
    # Its recovery would interrupt the first's live turns, and neither would see the other's appends.
    path = tmp_path / "one.db"
    script = tmp_path / "holder.py"
    script.write_text(HOLDER_CHILD)

    def holder() -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, str(script), str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline() == "open\n"
        return child

    async def opens() -> None:
        log = SQLiteLog(str(path))
        await log.aclose()

    child = holder()
    try:
        with pytest.raises(StoreLocked, match=re.escape(str(path))) as raised:
            SQLiteLog(str(path))
        assert raised.value.path == str(path) and raised.value.code == "store_locked"
        with pytest.raises(StoreLocked):
            open_log(f"sqlite:///{path}")
        # Closed: the file is free again.
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline() == "closed\n"
        assert child.wait(timeout=10) == 0
        child.stdin.close()
        child.stdout.close()
        asyncio.run(opens())
        # Killed: the kernel drops the lock with the process.
        child = holder()
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
        asyncio.run(opens())
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


async def test_the_lock_is_released_on_close_and_kept_until_then(tmp_path: Path) -> None:
    path = str(tmp_path / "own.db")
    log = SQLiteLog(path)
    with pytest.raises(StoreLocked):
        SQLiteLog(path)  # a second open in the same process is refused too
    await log.aclose()
    again = SQLiteLog(path)
    await again.aclose()
    await again.aclose()  # twice is fine


async def test_read_only_reads_while_the_file_is_held_and_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    with pytest.raises(FileNotFoundError):
        open_log(f"sqlite:///{path}?mode=ro")
    writer = open_log(f"sqlite:///{path}")
    try:
        await writer.append("s", [Status(text="one"), Status(text="two")])
        reader = open_log(f"sqlite:///{path}?mode=ro")  # no StoreLocked: it takes no lock
        try:
            assert [r.seq for r in await reader.read("s")] == [1, 2]
            with pytest.raises(LogClosed, match="read-only"):
                await reader.append("s", [Status(text="three")])
            with pytest.raises(LogClosed, match="read-only"):
                await reader.put_meta(SessionMeta(id="s", created_at=0))
        finally:
            await reader.aclose()
        assert (await writer.bounds("s")) == (1, 2)
    finally:
        await writer.aclose()


async def test_a_file_from_before_the_lifecycle_rules_gets_its_states_from_its_records(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    log = SQLiteLog(str(path), retain=2)
    await log.append(
        "s1", [TurnStarted(turn="t1", owner="rt"), ApprovalRequested(turn="t1", approval="a1", action="x")]
    )
    await log.append("s1", [TurnStarted(turn="t2"), TurnCompleted(turn="t2")])
    # s2's older records are gone: its snapshot says what they did.
    await log.append("s2", [JobStarted(job="j1", title="j", owner="rt"), *[Status(text=str(i)) for i in range(5)]])
    await log.save_snapshot("s2", Snapshot(6, fold_records(await log.read("s2")).to_json()))
    await log.aclose()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE lifecycle")  # as a file written before the rules has none
    log = SQLiteLog(str(path))
    try:
        assert await log.bounds("s2") == (5, 6)
        with pytest.raises(LifecycleViolation, match="already"):
            await log.append("s1", [TurnCompleted(turn="t2")])
        with pytest.raises(LifecycleViolation) as owned:
            await log.append("s1", [ApprovalResolved(approval="a1", decision="approved")], external=True)
        assert owned.value.code == "owned_by_runtime"
        with pytest.raises(LifecycleViolation) as job_owned:
            await log.append("s2", [JobCompleted(job="j1")], external=True)
        assert job_owned.value.code == "owned_by_runtime"
        # The runtime's recovery ends what was left open.
        await log.append(
            "s1", [ApprovalResolved(turn="t1", approval="a1", decision="expired"), TurnInterrupted(turn="t1")]
        )
        await log.append("s2", [JobInterrupted(job="j1")])
    finally:
        await log.aclose()


async def test_metadata_is_read_from_memory_in_step_with_the_writes_of_this_process(tmp_path: Path) -> None:
    path = str(tmp_path / "log.db")
    log = SQLiteLog(path)
    try:
        await log.put_meta(SessionMeta(id="s1", created_at=1, title="first"))
        got = await log.get_meta("s1")
        assert got is not None and got.title == "first"
        got.title = "changed by the caller"  # a copy: what the log holds does not change
        assert (await log.get_meta("s1")).title == "first"  # type: ignore[union-attr]

        # Written by another connection (as if behind the log's back): the log answers from memory,
        # which is right because one process at a time writes the file (it holds the lock).
        with sqlite3.connect(path) as other:
            other.execute("UPDATE sessions SET meta = ? WHERE id = 's1'", (b'{"id":"s1","created_at":1,"title":"x"}',))
        assert (await log.get_meta("s1")).title == "first"  # type: ignore[union-attr]

        for i in range(20):
            await log.put_meta(SessionMeta(id=f"race{i}", created_at=1, title="old"))
        await log.aclose()
        log = SQLiteLog(path)  # nothing in memory: the first read of each goes to the file
        # A read that missed the memory and is still in flight never replaces a newer write.
        for i in range(20):
            reading = asyncio.ensure_future(log.get_meta(f"race{i}"))
            await asyncio.sleep(0)  # the read is under way in the reader thread
            await log.put_meta(SessionMeta(id=f"race{i}", created_at=1, title="new"))
            await reading
            assert (await log.get_meta(f"race{i}")).title == "new"  # type: ignore[union-attr]

        await log.delete("s1")
        assert await log.get_meta("s1") is None
    finally:
        await log.aclose()
    reopened = SQLiteLog(path)  # what was read from memory is what is in the file
    try:
        assert (await reopened.get_meta("race7")).title == "new"  # type: ignore[union-attr]
        assert await reopened.get_meta("s1") is None
    finally:
        await reopened.aclose()


async def test_a_put_meta_whose_caller_stops_waiting_still_wins_over_a_read_under_way(tmp_path: Path) -> None:
    # A rotated token must never come back: the write goes on when its caller is cancelled, so
    # memory keeps the new metadata, and a read that overlapped it keeps nothing.
    path = str(tmp_path / "log.db")
    log = SQLiteLog(path)
    await log.put_meta(SessionMeta(id="s1", created_at=1, token_hash="OLD"))
    await log.aclose()
    log = SQLiteLog(path)  # nothing in memory
    release = asyncio.Event()
    try:
        loop = asyncio.get_running_loop()
        held = asyncio.ensure_future(
            log.run_write(lambda conn: asyncio.run_coroutine_threadsafe(release.wait(), loop).result())
        )
        reading = asyncio.ensure_future(log.get_meta("s1"))
        await asyncio.sleep(0)  # the read is under way in the reader thread
        putting = asyncio.ensure_future(log.put_meta(SessionMeta(id="s1", created_at=1, token_hash="NEW")))
        await asyncio.sleep(0)  # queued behind the held writer
        putting.cancel()
        assert (await reading).token_hash == "OLD"  # type: ignore[union-attr]  (read before the write)
        assert (await log.get_meta("s1")).token_hash == "NEW"  # type: ignore[union-attr]
        release.set()
        await held
        with pytest.raises(asyncio.CancelledError):
            await putting
        assert (await log.get_meta("s1")).token_hash == "NEW"  # type: ignore[union-attr]
    finally:
        release.set()  # even when an assertion failed: the writer thread must end
        await log.aclose()
    reopened = SQLiteLog(path)
    try:
        assert (await reopened.get_meta("s1")).token_hash == "NEW"  # type: ignore[union-attr]
    finally:
        await reopened.aclose()


@pytest.mark.parametrize("write", ["update", "delete"])
async def test_a_read_begun_while_a_metadata_write_waits_keeps_nothing(tmp_path: Path, write: str) -> None:
    # A read that starts after a write of the metadata was queued, and reads the file before that
    # write commits, must not stay in memory: a rotated (or deleted) token would keep working.
    class Watched(SQLiteLog):
        queued = asyncio.Event()

        def _meta_job(self, fn: Callable[[sqlite3.Connection], Any]) -> asyncio.Future[Any]:
            job = super()._meta_job(fn)
            self.queued.set()
            return job

    path = str(tmp_path / "log.db")
    log: SQLiteLog = SQLiteLog(path)
    await log.put_meta(SessionMeta(id="s1", created_at=1, token_hash="OLD"))
    await log.aclose()
    log = watched = Watched(path)  # nothing in memory
    release = asyncio.Event()
    try:
        loop = asyncio.get_running_loop()
        held = asyncio.ensure_future(
            log.run_write(lambda conn: asyncio.run_coroutine_threadsafe(release.wait(), loop).result())
        )
        await asyncio.sleep(0)
        if write == "update":
            writing = asyncio.ensure_future(log.update_meta("s1", lambda meta: setattr(meta, "token_hash", "NEW")))
        else:
            writing = asyncio.ensure_future(log.delete("s1"))
        await asyncio.wait_for(watched.queued.wait(), 5)  # its write waits behind the held writer
        writing.cancel()  # a caller that stops waiting: the write goes on
        assert (await log.get_meta("s1")).token_hash == "OLD"  # type: ignore[union-attr]
        release.set()
        await held
        with pytest.raises(asyncio.CancelledError):
            await writing
        await log.run_write(lambda conn: None)  # after the write: it is in the file
        expected = "NEW" if write == "update" else None
        meta = await log.get_meta("s1")
        assert (meta.token_hash if meta else None) == expected
    finally:
        release.set()
        await log.aclose()
