"""The EventLog contract: every backend (ids memory, sqlite, redis) must pass this suite.

A new backend joins by being added to the ``log_url`` fixture in ``conftest.py``;
nothing here is specific to one backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from sessionwire.backends import EventLog, SessionMeta, Snapshot, open_log
from sessionwire.errors import CursorExpired, LogClosed, SessionNotFound
from sessionwire.events import MessageDelta, TurnStarted


def delta(text: str, message: str = "m1") -> MessageDelta:
    return MessageDelta(message=message, part=0, text=text)


async def test_append_returns_records_with_consecutive_seqs(log: EventLog) -> None:
    first = await log.append("s1", [TurnStarted(turn="t1"), delta("a"), delta("b")])
    assert [r.seq for r in first] == [1, 2, 3]
    assert [r.type for r in first] == ["turn.started", "message.delta", "message.delta"]
    assert all(r.session == "s1" for r in first)
    second = await log.append("s1", [delta("c")])
    assert [r.seq for r in second] == [4]
    assert second[0].ts >= first[0].ts > 0
    assert await log.append("s1", []) == []
    assert await log.bounds("s1") == (1, 4)


async def test_records_carry_their_wire_form(log: EventLog) -> None:
    (record,) = await log.append("s1", [delta("Hel")])
    data = record.to_dict()
    assert data["v"] == 1 and data["session"] == "s1" and data["seq"] == 1
    assert data["type"] == "message.delta" and data["text"] == "Hel" and data["message"] == "m1"
    (read,) = await log.read("s1")
    assert read == record
    assert read.to_dict() == data


async def test_read_after_and_limit(log: EventLog) -> None:
    await log.append("s1", [delta(str(i)) for i in range(10)])
    assert [r.seq for r in await log.read("s1")] == list(range(1, 11))
    assert [r.seq for r in await log.read("s1", after=4)] == list(range(5, 11))
    assert [r.seq for r in await log.read("s1", after=4, limit=3)] == [5, 6, 7]
    assert [r.event.text for r in await log.read("s1", after=7, limit=100)] == ["7", "8", "9"]  # type: ignore[union-attr]
    assert await log.read("s1", after=10) == []
    assert await log.read("s1", after=50) == []
    assert await log.read("nobody") == []
    with pytest.raises(ValueError):
        await log.read("s1", after=-1)


async def test_seqs_are_gapless_under_concurrent_appenders(log: EventLog) -> None:
    async def producer(p: int) -> list[int]:
        seqs = []
        for i in range(20):
            size = 1 + (p + i) % 3
            records = await log.append("shared", [delta(f"{p}:{i}:{k}") for k in range(size)])
            got = [r.seq for r in records]
            # One append's records are consecutive: a batch is atomic.
            assert got == list(range(got[0], got[0] + size))
            seqs.extend(got)
        return seqs

    results = await asyncio.gather(*(producer(p) for p in range(25)))
    every = sorted(s for seqs in results for s in seqs)
    assert every == list(range(1, len(every) + 1))
    stored = await log.read("shared")
    assert [r.seq for r in stored] == every
    # Each producer's records are stored in the order it appended them.
    for p in range(25):
        mine = [r.event.text for r in stored if r.event.text.startswith(f"{p}:")]  # type: ignore[union-attr]
        assert mine == sorted(mine, key=lambda t: (int(t.split(":")[1]), int(t.split(":")[2])))


async def test_sessions_are_sequenced_independently(log: EventLog) -> None:
    async def fill(session: str, n: int) -> None:
        for i in range(n):
            await log.append(session, [delta(f"{session}-{i}")])

    await asyncio.gather(fill("a", 12), fill("b", 5), fill("c", 9))
    for session, n in [("a", 12), ("b", 5), ("c", 9)]:
        records = await log.read(session)
        assert [r.seq for r in records] == list(range(1, n + 1))
        assert {r.session for r in records} == {session}
        assert [r.event.text for r in records] == [f"{session}-{i}" for i in range(n)]  # type: ignore[union-attr]
        assert await log.bounds(session) == (1, n)


async def test_bounds_of_unknown_and_meta_only_sessions(log: EventLog) -> None:
    assert await log.bounds("nobody") == (0, 0)
    await log.put_meta(SessionMeta(id="quiet", created_at=1))
    assert await log.bounds("quiet") == (0, 0)
    await log.append("quiet", [delta("x")])
    assert await log.bounds("quiet") == (1, 1)


async def test_snapshots_newest_wins(log: EventLog) -> None:
    assert await log.load_snapshot("s1") is None
    await log.append("s1", [delta(str(i)) for i in range(6)])
    await log.save_snapshot("s1", Snapshot(4, b'{"seq":4}'))
    assert await log.load_snapshot("s1") == Snapshot(4, b'{"seq":4}')
    await log.save_snapshot("s1", Snapshot(6, b'{"seq":6}'))
    # An older snapshot stored late (a slow writer) does not replace a newer one.
    await log.save_snapshot("s1", Snapshot(5, b'{"seq":5}'))
    assert await log.load_snapshot("s1") == Snapshot(6, b'{"seq":6}')
    assert await log.load_snapshot("other") is None
    # Without retention a snapshot drops nothing.
    if getattr(log, "retain", None) is None:
        assert [r.seq for r in await log.read("s1")] == [1, 2, 3, 4, 5, 6]


@pytest.fixture
def retain_url(log_url: str) -> str:
    return f"{log_url}{'&' if '?' in log_url else '?'}retain=3"


async def test_retention_drops_only_what_a_snapshot_covers(retain_url: str) -> None:
    log = open_log(retain_url)
    try:
        await log.append("s1", [delta(str(i)) for i in range(10)])
        # Retention alone drops nothing: no snapshot covers the records yet.
        assert await log.bounds("s1") == (1, 10)
        assert len(await log.read("s1")) == 10
        # A snapshot at 4 covers 1..4: those go, though retention would allow dropping 1..7.
        await log.save_snapshot("s1", Snapshot(4, b"{}"))
        assert await log.bounds("s1") == (5, 10)
        assert [r.seq for r in await log.read("s1", after=4)] == list(range(5, 11))
        # A snapshot at 10 covers everything: retention keeps the last 3.
        await log.save_snapshot("s1", Snapshot(10, b"{}"))
        assert await log.bounds("s1") == (8, 10)
        assert [r.seq for r in await log.read("s1", after=7)] == [8, 9, 10]
        with pytest.raises(CursorExpired) as caught:
            await log.read("s1", after=3)
        assert caught.value.first == 8 and caught.value.after == 3 and caught.value.session == "s1"
        with pytest.raises(CursorExpired):
            await log.read("s1")
        # Numbering goes on after the drop.
        assert [r.seq for r in await log.append("s1", [delta("x")])] == [11]
        assert await log.bounds("s1") == (8, 11)
        # Other sessions keep everything.
        await log.append("s2", [delta(str(i)) for i in range(5)])
        assert await log.bounds("s2") == (1, 5)
    finally:
        await log.aclose()


async def test_meta_put_get_list(log: EventLog) -> None:
    assert await log.get_meta("s1") is None
    assert await log.sessions() == []
    meta = SessionMeta(id="s1", created_at=1700000000000, title="first", token_hash="ab" * 32, data={"k": [1, 2]})
    await log.put_meta(meta)
    await log.put_meta(SessionMeta(id="s0", created_at=1))
    assert await log.get_meta("s1") == meta
    # The log keeps a value: changing the object after put changes nothing stored.
    meta.title = "renamed"
    assert (await log.get_meta("s1")).title == "first"  # type: ignore[union-attr]
    # Replacing keeps one record per session.
    await log.put_meta(meta)
    assert (await log.get_meta("s1")).title == "renamed"  # type: ignore[union-attr]
    assert [m.id for m in await log.sessions()] == ["s0", "s1"]
    # Records alone don't make a session listed (sessions() is about metadata).
    await log.append("bare", [delta("x")])
    assert [m.id for m in await log.sessions()] == ["s0", "s1"]


async def test_metadata_updates_from_everywhere_never_lose_each_other(log: EventLog, log_url: str) -> None:
    # Read-modify-writes of one session's metadata at once, here and (on a shared log) from another
    # process: every one lands. A rotated token is never put back by another writer's stale copy.
    assert await log.update_meta("s1", lambda meta: None) is None  # no metadata: nothing stored
    assert await log.get_meta("s1") is None
    await log.put_meta(SessionMeta(id="s1", created_at=1, token_hash="old"))
    other = open_log(log_url) if log_url.startswith("redis") else log

    def mark(n: int) -> Callable[[SessionMeta], None]:
        def change(meta: SessionMeta) -> None:
            meta.data[f"k{n}"] = n

        return change

    def rotate(meta: SessionMeta) -> None:
        meta.token_hash = "new"

    try:
        changes = [mark(n) for n in range(30)]
        changes.insert(15, rotate)
        await asyncio.gather(*((other if i % 2 else log).update_meta("s1", c) for i, c in enumerate(changes)))
        meta = await log.get_meta("s1")
        assert meta is not None and meta.token_hash == "new" and meta.data == {f"k{n}": n for n in range(30)}
        # A change that says False stores nothing.
        assert (await other.update_meta("s1", lambda m: setattr(m, "title", "x") or False)).title == "x"  # type: ignore[union-attr]
        assert (await log.get_meta("s1")).title is None  # type: ignore[union-attr]
    finally:
        if other is not log:
            await other.aclose()


async def test_a_metadata_update_never_brings_a_deleted_session_back(log: EventLog, log_url: str) -> None:
    await log.put_meta(SessionMeta(id="s1", created_at=1))
    if not log_url.startswith("memory"):  # a reopened log reads the metadata from the store (a wait)
        await log.aclose()
        log = open_log(log_url)
    try:
        update = asyncio.create_task(log.update_meta("s1", lambda meta: setattr(meta, "title", "late")))
        await asyncio.sleep(0)
        await log.delete("s1")
        assert await update in (None, SessionMeta(id="s1", created_at=1, title="late"))
        assert await log.get_meta("s1") is None and [m.id for m in await log.sessions()] == []
    finally:
        await log.aclose()


async def test_delete_removes_records_snapshot_and_meta(log: EventLog) -> None:
    await log.put_meta(SessionMeta(id="s1", created_at=1))
    await log.append("s1", [delta(str(i)) for i in range(3)])
    await log.save_snapshot("s1", Snapshot(3, b"{}"))
    await log.append("s2", [delta("keep")])
    await log.delete("s1")
    assert await log.get_meta("s1") is None
    assert await log.load_snapshot("s1") is None
    assert await log.read("s1") == []
    assert await log.bounds("s1") == (0, 0)
    assert await log.sessions() == []
    assert [r.event.text for r in await log.read("s2")] == ["keep"]  # type: ignore[union-attr]
    await log.delete("never-existed")


async def test_a_deleted_session_refuses_appends_until_it_is_created_again(log: EventLog) -> None:
    await log.put_meta(SessionMeta(id="s1", created_at=1))
    await log.append("s1", [delta(str(i)) for i in range(3)])
    await log.delete("s1")
    # Work of the session still ending somewhere must not bring it back (from seq 1, unlisted).
    with pytest.raises(SessionNotFound):
        await log.append("s1", [delta("late")])
    appended = await asyncio.gather(
        log.append("s1", [delta("late")]), log.append("s2", [delta("x")]), return_exceptions=True
    )
    assert isinstance(appended[0], SessionNotFound) and [r.seq for r in appended[1]] == [1]  # type: ignore[union-attr]
    assert await log.bounds("s1") == (0, 0) and await log.read("s1") == []
    # Created again (its metadata first, as Hub.create_session does): a fresh session from seq 1.
    await log.put_meta(SessionMeta(id="s1", created_at=2))
    assert [r.seq for r in await log.append("s1", [delta("again")])] == [1]
    assert [r.event.text for r in await log.read("s1")] == ["again"]  # type: ignore[union-attr]


async def test_counters(log: EventLog) -> None:
    before = log.commits
    await log.append("s1", [delta(str(i)) for i in range(5)])
    assert log.commits > before
    read_before = log.records_read
    await log.read("s1", after=2)
    assert log.records_read == read_before + 3


async def test_closed_log_raises(log_url: str) -> None:
    log = open_log(log_url)
    await log.append("s1", [delta("x")])
    await log.aclose()
    await log.aclose()  # closing twice is harmless
    with pytest.raises(LogClosed):
        await log.append("s1", [delta("y")])
    with pytest.raises(LogClosed):
        await log.read("s1")
    with pytest.raises(LogClosed):
        await log.bounds("s1")
    with pytest.raises(LogClosed):
        await log.save_snapshot("s1", Snapshot(1, b"{}"))
    with pytest.raises(LogClosed):
        await log.put_meta(SessionMeta(id="s1", created_at=1))
    with pytest.raises(LogClosed):
        await log.get_meta("s1")


async def test_durable_backends_keep_everything_across_reopen(log_url: str) -> None:
    if log_url.startswith("memory"):
        pytest.skip("memory:// keeps nothing across a reopen, by design")
    log = open_log(log_url)
    await log.put_meta(SessionMeta(id="s1", created_at=5, title="t"))
    await log.append("s1", [delta(str(i)) for i in range(4)])
    await log.save_snapshot("s1", Snapshot(2, b'{"seq":2}'))
    await log.aclose()
    log = open_log(log_url)
    try:
        assert [r.seq for r in await log.read("s1")] == [1, 2, 3, 4]
        assert await log.load_snapshot("s1") == Snapshot(2, b'{"seq":2}')
        assert (await log.get_meta("s1")) == SessionMeta(id="s1", created_at=5, title="t")
        assert [r.seq for r in await log.append("s1", [delta("x")])] == [5]
    finally:
        await log.aclose()
