"""The lifecycle rules, as every log enforces them where it assigns seqs (ids memory, sqlite, redis).

A turn, job or approval opens once, closes at most once and only once opened, and
nothing names it after it closed; external producers may not name what the runtime
(an in-process producer) opened. A refused append writes nothing and names its rule.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionwire.backends import EventLog, SessionMeta, Snapshot, open_log
from sessionwire.backends.memory import MemoryLog
from sessionwire.backends.redis import RedisLog
from sessionwire.errors import LifecycleViolation
from sessionwire.events import (
    ApprovalRequested,
    ApprovalResolved,
    Event,
    JobCompleted,
    JobInterrupted,
    JobProgress,
    JobStarted,
    MessageDelta,
    Status,
    TurnCancelled,
    TurnCompleted,
    TurnFailed,
    TurnInterrupted,
    TurnStarted,
    UnknownEvent,
)
from sessionwire.state import fold_records


def delta(turn: str, text: str = "x") -> MessageDelta:
    return MessageDelta(turn=turn, message=f"m_{turn}", part=0, text=text)


async def refused(log: EventLog, code: str, events: Sequence[Event], external: bool = False, s: str = "s1") -> None:
    """``events`` are refused with ``code``, and nothing of them is written."""
    before = await log.bounds(s)
    with pytest.raises(LifecycleViolation) as caught:
        await log.append(s, events, external=external)
    assert caught.value.code == code
    assert await log.bounds(s) == before


async def test_a_turn_opens_once_ends_once_and_nothing_follows_its_end(log: EventLog) -> None:
    await log.append("s1", [TurnStarted(turn="t1", owner="rt"), delta("t1")])
    await refused(log, "already_started", [TurnStarted(turn="t1")])
    await log.append("s1", [delta("t1"), TurnCompleted(turn="t1")])
    await refused(log, "already_ended", [TurnFailed(turn="t1", error="late")])
    await refused(log, "already_ended", [TurnInterrupted(turn="t1")])
    await refused(log, "after_end", [delta("t1", "late")])
    await refused(log, "after_end", [Status(turn="t1", text="late")])
    await refused(log, "after_end", [JobStarted(turn="t1", job="j1", title="late")])
    await refused(log, "already_started", [TurnStarted(turn="t1")])
    assert await log.bounds("s1") == (1, 4)


async def test_only_work_that_started_may_end(log: EventLog) -> None:
    await refused(log, "never_started", [TurnInterrupted(turn="t9")])
    await refused(log, "never_started", [JobCompleted(job="j9")])
    await refused(log, "never_started", [ApprovalResolved(approval="a9", decision="approved")])
    # Records that only name a turn need not follow its start (a producer's deltas, say).
    await log.append("s1", [delta("t9"), Status(turn="t9", text="thinking")])
    # ...and it may start and end after them.
    await log.append("s1", [TurnStarted(turn="t9"), TurnCancelled(turn="t9")])


async def test_a_job_and_an_approval_follow_the_same_rules(log: EventLog) -> None:
    await log.append("s1", [JobStarted(job="j1", title="index", owner="rt"), JobProgress(job="j1", done=1)])
    await log.append("s1", [ApprovalRequested(job="j1", approval="a1", action="deploy")])
    await refused(log, "already_started", [ApprovalRequested(job="j1", approval="a1", action="again")])
    await log.append("s1", [ApprovalResolved(job="j1", approval="a1", decision="denied")])
    await refused(log, "already_ended", [ApprovalResolved(job="j1", approval="a1", decision="approved")])
    await refused(log, "after_end", [UnknownEvent("x.note", {"approval": "a1"})])
    await log.append("s1", [JobCompleted(job="j1")])
    await refused(log, "after_end", [JobProgress(job="j1", done=2)])
    await refused(log, "already_ended", [JobCompleted(job="j1")])


async def test_an_append_is_refused_whole_and_the_error_names_the_rule_and_the_subject(log: EventLog) -> None:
    await log.append("s1", [TurnStarted(turn="t1"), TurnCompleted(turn="t1")])
    # Valid records first, then one that breaks a rule: none of them is written.
    await refused(log, "after_end", [TurnStarted(turn="t2"), delta("t2"), delta("t1")])
    with pytest.raises(LifecycleViolation) as caught:
        await log.append("s1", [TurnStarted(turn="t2"), TurnCompleted(turn="t2"), TurnCompleted(turn="t2")])
    assert (caught.value.code, caught.value.kind, caught.value.subject) == ("already_ended", "turn", "t2")
    assert "turn 't2'" in str(caught.value)
    # t2 never started, as far as the log knows: its append was refused whole.
    await log.append("s1", [TurnStarted(turn="t2"), TurnCompleted(turn="t2")])


async def test_external_producers_may_not_name_what_the_runtime_opened(log: EventLog) -> None:
    await log.append(
        "s1",
        [
            TurnStarted(turn="t1", owner="rt"),
            ApprovalRequested(turn="t1", approval="a1", action="deploy"),
            JobStarted(turn="t1", job="j1", title="index", owner="rt"),
        ],
    )
    for forged in (
        TurnCompleted(turn="t1"),
        TurnInterrupted(turn="t1"),
        delta("t1"),
        ApprovalResolved(turn="t1", approval="a1", decision="approved"),
        ApprovalResolved(approval="a1", decision="approved"),
        JobProgress(job="j1", done=5),
        TurnStarted(turn="t1"),
    ):
        await refused(log, "owned_by_runtime", [forged], external=True)
    # An external producer runs its own turns and approvals by the same rules...
    await log.append("s1", [TurnStarted(turn="x1"), delta("x1")], external=True)
    await log.append("s1", [ApprovalRequested(turn="x1", approval="xa", action="run")], external=True)
    await log.append("s1", [ApprovalResolved(turn="x1", approval="xa", decision="denied")], external=True)
    await refused(log, "already_ended", [ApprovalResolved(approval="xa", decision="approved")], external=True)
    # ...and the runtime (resolving through the approvals route, say) may name them.
    await log.append("s1", [Status(turn="x1", text="seen by the runtime"), TurnCompleted(turn="x1")])
    # What the runtime opened stays its own after it ended.
    await log.append("s1", [ApprovalResolved(turn="t1", approval="a1", decision="denied"), TurnCompleted(turn="t1")])
    await refused(log, "owned_by_runtime", [TurnCompleted(turn="t1")], external=True)


async def test_racing_terminals_of_one_turn_let_exactly_one_through(log: EventLog) -> None:
    await log.append("s1", [TurnStarted(turn="t1", owner="rt")])
    ends: list[Event] = [TurnCompleted(turn="t1"), TurnInterrupted(turn="t1"), TurnCancelled(turn="t1")] * 4
    results = await asyncio.gather(*(log.append("s1", [delta("t1"), end]) for end in ends), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, LifecycleViolation) for r in results if isinstance(r, BaseException))
    assert await log.bounds("s1") == (1, 3)


async def test_one_refused_append_leaves_the_others_of_a_group_alone(log: EventLog) -> None:
    # Concurrent appends go out together (a SQLite transaction, one Redis script call).
    await log.append("s1", [TurnStarted(turn="t1"), TurnCompleted(turn="t1")])
    appends = [log.append(f"s{i}", [TurnStarted(turn="t1"), delta("t1")]) for i in range(2, 8)]
    appends.insert(3, log.append("s1", [delta("t1")]))
    results = await asyncio.gather(*appends, return_exceptions=True)
    assert [type(r).__name__ for r in results].count("LifecycleViolation") == 1
    assert isinstance(results[3], LifecycleViolation)
    for i in range(2, 8):
        assert await log.bounds(f"s{i}") == (1, 2)


async def test_a_session_created_again_starts_with_no_lifecycle(log: EventLog) -> None:
    await log.put_meta(SessionMeta(id="s1", created_at=1))
    await log.append("s1", [TurnStarted(turn="t1"), TurnCompleted(turn="t1")])
    await log.delete("s1")
    await log.put_meta(SessionMeta(id="s1", created_at=2))
    await log.append("s1", [TurnStarted(turn="t1"), TurnCompleted(turn="t1")])


async def test_durable_logs_keep_the_lifecycle_across_a_reopen(log_url: str) -> None:
    if log_url.startswith("memory"):
        pytest.skip("memory:// keeps nothing across a reopen, by design")
    log = open_log(log_url)
    await log.append("s1", [TurnStarted(turn="t1", owner="rt"), TurnCompleted(turn="t1"), TurnStarted(turn="t2")])
    await log.aclose()
    log = open_log(log_url)
    try:
        await refused(log, "already_ended", [TurnCompleted(turn="t1")])
        await refused(log, "owned_by_runtime", [TurnCompleted(turn="t2")], external=True)
        await log.append("s1", [TurnCompleted(turn="t2")])
    finally:
        await log.aclose()


# --------------------------------------------------------------------------- against a model

SUBJECTS = ("turn", "job", "approval")


def model_append(states: dict[str, str], events: Sequence[Event], external: bool) -> str | None:
    """A reference model's verdict on an append: the rule broken, or None (then ``states`` moves on).

    Event by event, step by step; where several subjects break rules, the append names the
    first subject it mentions that breaks one (with the first rule that subject breaks).
    """
    trial = dict(states)
    broken: dict[str, str] = {}
    mentioned: list[str] = []
    for event in events:
        kind, _, verb = event.type.partition(".")
        for field in SUBJECTS:
            ident = getattr(event, field, None)
            if ident is None:
                continue
            key = f"{field}:{ident}"
            if key not in mentioned:
                mentioned.append(key)
            if key in broken:
                continue
            state = trial.get(key)
            low = state.lower() if state else None
            rule = None
            if external and state is not None and state.isupper():
                rule = "owned_by_runtime"
            elif field == kind and verb in ("started", "requested"):
                if state is not None:
                    rule = "already_started"
                else:
                    trial[key] = "o" if external else "O"
            elif field == kind and verb in ("completed", "failed", "cancelled", "interrupted", "resolved"):
                if low is None:
                    rule = "never_started"
                elif low == "c":
                    rule = "already_ended"
                else:
                    trial[key] = "C" if state == "O" else "c"
            elif low == "c":
                rule = "after_end"
            if rule is not None:
                broken[key] = rule
    for key in mentioned:
        if key in broken:
            return broken[key]
    states.clear()
    states.update(trial)
    return None


def random_event(rng: random.Random) -> Event:
    t, j, a = (f"{k}{rng.randrange(3)}" for k in "tja")
    choices: list[Event] = [
        TurnStarted(turn=t),
        TurnCompleted(turn=t),
        TurnInterrupted(turn=t),
        delta(t),
        JobStarted(job=j, title="j", turn=t if rng.random() < 0.3 else None),
        JobCompleted(job=j),
        JobProgress(job=j, done=1),
        ApprovalRequested(approval=a, action="x", turn=t if rng.random() < 0.5 else None),
        ApprovalResolved(approval=a, decision="approved", job=j if rng.random() < 0.3 else None),
    ]
    return rng.choice(choices)


async def _agree(log: EventLog, seed: int, appends: int) -> None:
    rng = random.Random(seed)
    states: dict[str, str] = {}
    written = 0
    for _ in range(appends):
        events = [random_event(rng) for _ in range(rng.randrange(1, 4))]
        external = rng.random() < 0.3
        expected = model_append(states, events, external)
        try:
            await log.append("s1", events, external=external)
            got = None
            written += len(events)
        except LifecycleViolation as exc:
            got = exc.code
        assert got == expected, (seed, events, external)
    assert (await log.bounds("s1"))[1] == written


async def test_every_backend_agrees_with_the_model_on_random_appends(log: EventLog) -> None:
    for seed in range(6):
        await log.delete("s1")
        await log.put_meta(SessionMeta(id="s1", created_at=seed))
        await _agree(log, seed, 60)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_the_log_agrees_with_the_model_on_any_sequence(seed: int) -> None:
    asyncio.run(_agree(MemoryLog(), seed, 40))


async def test_records_a_shared_log_lost_come_back_with_their_lifecycle(log: EventLog) -> None:
    if not isinstance(log, RedisLog):
        pytest.skip("only a shared log can lose records its processes delivered (a local one is never behind)")
    held = await log.append(
        "s1",
        [
            TurnStarted(turn="t1", owner="rt"),
            ApprovalRequested(turn="t1", approval="a1", action="x"),
            TurnStarted(turn="t2"),
            TurnCompleted(turn="t2"),
        ],
    )
    # Redis lost them (a restart with appendfsync everysec): records and states alike.
    await log.client.delete(log.keys.stream("s1"), log.keys.hash("s1"), log.keys.lifecycle("s1"))
    assert await log.restore("s1", held) == 4
    await refused(log, "already_started", [TurnStarted(turn="t1")])
    await refused(log, "owned_by_runtime", [ApprovalResolved(approval="a1", decision="approved")], external=True)
    await refused(log, "already_ended", [TurnCompleted(turn="t2")])
    await log.append("s1", [ApprovalResolved(approval="a1", decision="denied"), TurnCompleted(turn="t1")])


async def test_a_restored_approval_of_the_runtimes_turn_stays_the_runtimes(log: EventLog) -> None:
    if not isinstance(log, RedisLog):
        pytest.skip("only a shared log can lose records its processes delivered (a local one is never behind)")
    first = await log.append("s1", [TurnStarted(turn="t0", owner="rt")])
    second = await log.append("s1", [ApprovalRequested(turn="t0", approval="a0", action="x")])
    # Redis lost the second append only: its record, its counter and its state.
    await log.client.delete(log.keys.stream("s1"))
    await log.client.xadd(log.keys.stream("s1"), {"d": first[0].raw}, id="1-0")
    await log.client.hset(log.keys.hash("s1"), "last", 1)
    await log.client.hdel(log.keys.lifecycle("s1"), "approval:a0")
    assert await log.restore("s1", second) == 2  # only what was lost: the turn opened before
    await refused(log, "owned_by_runtime", [ApprovalResolved(approval="a0", decision="approved")], external=True)


async def test_a_redis_session_written_before_the_rules_gets_its_states_from_its_records(log_url: str) -> None:
    if not log_url.startswith("redis"):
        pytest.skip("the SQLite file's migration is tested in test_sqlite_log.py; memory keeps nothing")
    log = open_log(log_url + "&retain=2" if "?" in log_url else log_url + "?retain=2")
    assert isinstance(log, RedisLog)
    try:
        await log.append(
            "s1", [TurnStarted(turn="t1", owner="rt"), ApprovalRequested(turn="t1", approval="a1", action="x")]
        )
        await log.append("s1", [TurnStarted(turn="t2"), TurnCompleted(turn="t2")])
        await log.append("s2", [JobStarted(job="j1", title="j", owner="rt"), *[Status(text=str(i)) for i in range(5)]])
        await log.save_snapshot("s2", Snapshot(6, fold_records(await log.read("s2")).to_json()))
        assert (await log.bounds("s2"))[0] == 5  # j1's start is gone: the snapshot says it runs
        # Written before the rules: no states at all.
        await log.client.delete(log.keys.lifecycle("s1"), log.keys.lifecycle("s2"))
        await refused(log, "already_ended", [TurnCompleted(turn="t2")])
        await refused(log, "owned_by_runtime", [ApprovalResolved(approval="a1", decision="approved")], external=True)
        await refused(log, "owned_by_runtime", [JobCompleted(job="j1")], external=True, s="s2")
        await log.append(
            "s1", [ApprovalResolved(turn="t1", approval="a1", decision="expired"), TurnInterrupted(turn="t1")]
        )
        await log.append("s2", [JobInterrupted(job="j1")])
    finally:
        await log.aclose()
