"""Where a frontend's turn stream starts: ``seq_before`` reads from the newest records back."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionwire.backends import Snapshot
from sessionwire.backends.memory import MemoryLog
from sessionwire.events import Event, MessageDelta, Record, Status, TurnStarted
from sessionwire.server import turnstream
from sessionwire.server.turnstream import seq_before

TURNS = ["t1", "t2", "t3"]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("start"), st.sampled_from(TURNS)),
        st.tuples(st.just("name"), st.sampled_from(TURNS)),
        st.tuples(st.just("other"), st.just("")),
    ),
    max_size=40,
)


def _events(plan: list[tuple[str, str]]) -> tuple[list[Event], set[str]]:
    """The events, and the turns that some record names before their ``turn.started`` (or without one)."""
    started: set[str] = set()
    early: set[str] = set()
    out: list[Event] = []
    for step, turn in plan:
        if step == "start" and turn not in started:  # a turn starts once
            started.add(turn)
            out.append(TurnStarted(turn=turn))
        elif step == "name":
            if turn not in started:
                early.add(turn)  # the lifecycle lets a record name a turn not started yet
            out.append(MessageDelta(message=f"m_{turn}", part=0, text="w ", turn=turn))
        else:
            out.append(Status(text="busy"))
    return out, early


@given(steps, st.integers(min_value=0, max_value=45), st.integers(min_value=1, max_value=5))
@settings(max_examples=200, deadline=None)
def test_seq_before_finds_what_a_forward_read_finds(plan: list[tuple[str, str]], trim: int, page: int) -> None:
    # Any records, any retention, any page size: from the newest back gives the seq a read from
    # the start gives; so does stopping at a turn's turn.started, for a turn nothing names before
    # it (the runtime's: its id is new when it starts).
    events, early = _events(plan)

    async def check() -> None:
        log = MemoryLog(retain=0)
        for event in events:
            await log.append("s1", [event])
        _, last = await log.bounds("s1")
        if 0 < trim <= last:
            await log.save_snapshot("s1", Snapshot(trim, b"{}"))  # drops the records through trim
        kept = await log.read("s1", max(0, (await log.bounds("s1"))[0] - 1))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(turnstream, "_PAGE", page)
            for turn in [*TURNS, "t9"]:

                def names(r: Record, turn: str = turn) -> bool:
                    return getattr(r.event, "turn", None) == turn

                expected = next((r.seq - 1 for r in kept if names(r)), None)
                assert await seq_before(log, "s1", names) == expected
                if turn not in early:
                    assert await seq_before(log, "s1", names, first=lambda r: r.type == "turn.started") == expected

    asyncio.run(check())


async def test_seq_before_reads_only_back_to_the_turn_start() -> None:
    # A long session: finding the last turn's start reads its records, not the whole history.
    log = MemoryLog()
    await log.append("s1", [Status(text=str(i)) for i in range(5000)])
    await log.append("s1", [TurnStarted(turn="t1"), MessageDelta(message="m", part=0, text="w", turn="t1")])
    before = log.records_read
    assert (
        await seq_before(
            log, "s1", lambda r: getattr(r.event, "turn", None) == "t1", first=lambda r: r.type == "turn.started"
        )
        == 5000
    )
    assert log.records_read - before <= 1024
