"""The flush race: with coalescing on, the final is never overtaken and always equals the full output."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime_util import records_until
from sessionwire import Hub, Record
from sessionwire.backends import Fence
from sessionwire.channel import Session
from sessionwire.errors import LogUnavailable
from sessionwire.events import TERMINAL_TYPES, Event, MessageCompleted, MessageStarted, Status, TextPart
from sessionwire.runtime import Runtime, ScriptedProvider
from sessionwire.runtime.coalesce import Writer
from sessionwire.runtime.providers.scripted import numbered
from sessionwire.state import SessionState, apply
from sessionwire.state import TextPart as TextState

DELAYS = st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.0002, 0.001, 0.004]), min_size=1, max_size=40)


def delay_of(delays: list[float]) -> Callable[[int], float]:
    return lambda i: delays[i % len(delays)]


async def folding_subscriber(
    hub: Hub, session_id: str, stop: Callable[[Record], bool]
) -> tuple[list[Record], list[str]]:
    """Fold every record as it arrives; also note the folded text of the answer after each record."""
    session = await hub.session(session_id)
    records: list[Record] = []
    texts: list[str] = []
    state = SessionState()
    async with asyncio.timeout(30), session.subscribe(0) as sub:
        async for item in sub:
            if not isinstance(item, Record):
                continue
            records.append(item)
            apply(state, item)
            answers = [m for m in state.messages.values() if m.role == "assistant"]
            texts.append("".join(p.text for m in answers for p in m.parts if isinstance(p, TextState)))
            if stop(item):
                return records, texts
    raise AssertionError("the channel closed early")


def check_message_order(records: list[Record]) -> None:
    """Every message's message.completed is its last record."""
    last: dict[str, str] = {}
    for r in records:
        message = getattr(r.event, "message", None)
        if message is not None:
            last[message] = r.type
    assert last and all(t == "message.completed" for t in last.values()), last


async def flush_race(delays: list[float], window_ms: float, words: int, cancel_at: int | None) -> None:
    async with Hub.open("memory://") as hub:
        await hub.create_session("s")
        provider = ScriptedProvider(delay=delay_of(delays))
        async with Runtime(hub, provider, coalesce_ms=window_ms) as runtime:
            ended = lambda r: r.type in TERMINAL_TYPES  # noqa: E731
            watcher = asyncio.create_task(folding_subscriber(hub, "s", ended))
            d = await runtime.dispatch("s", f"/long {words}")
            if cancel_at is not None:
                session = await hub.session("s")
                async with asyncio.timeout(30), session.subscribe(d.after) as sub:
                    seen = 0
                    async for item in sub:
                        if isinstance(item, Record) and item.type == "message.delta":
                            seen += 1
                            if seen >= cancel_at:
                                break
                        if isinstance(item, Record) and item.type in TERMINAL_TYPES:
                            break
                if (await session.state()).turns[d.turn or ""].status == "running":
                    await runtime.cancel_turn("s", d.turn or "")
            records, texts = await watcher
    expected = "".join(numbered(words))
    check_message_order(records)
    final = next(r.event for r in records if isinstance(r.event, MessageCompleted) and r.event.role == "assistant")
    body = "".join(p.text for p in final.parts if isinstance(p, TextPart))
    streamed = "".join(r.event.text for r in records if r.type == "message.delta")
    assert body == streamed  # the final is exactly what the deltas carried, never more or less
    assert texts[-1] == body
    for text in texts:  # the folded text only ever grows along the output: no overwrite, no loss
        assert expected.startswith(text)
    if cancel_at is None:
        assert body == expected and records[-1].type == "turn.completed"
    else:
        assert records[-1].type in ("turn.cancelled", "turn.completed")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(delays=DELAYS, window_ms=st.sampled_from([0.0, 0.5, 2.0, 5.0, 15.0]), words=st.integers(1, 120))
def test_the_final_equals_the_full_output_whatever_the_token_timing(
    delays: list[float], window_ms: float, words: int
) -> None:
    asyncio.run(flush_race(delays, window_ms, words, None))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(delays=DELAYS, window_ms=st.sampled_from([0.0, 1.0, 5.0]), cancel_at=st.integers(1, 6))
def test_a_cancel_at_any_point_completes_with_exactly_what_was_streamed(
    delays: list[float], window_ms: float, cancel_at: int
) -> None:
    asyncio.run(flush_race([max(d, 0.0002) for d in delays], window_ms, 400, cancel_at))


# --------------------------------------------------------------------------- the writer itself

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("delta"), st.integers(0, 2), st.text("abc xyz", min_size=1, max_size=4)),
        st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.0005, 0.002]), st.just("")),
        st.tuples(st.just("progress"), st.integers(0, 100), st.just("")),
    ),
    max_size=60,
)


async def writer_run(ops: list[tuple[str, int | float, str]], window_ms: float) -> None:
    async with Hub.open("memory://") as hub:
        session, _ = await hub.create_session("s")
        writer = Writer(session, window_ms / 1000, job="j_1")
        await writer.emit(MessageStarted(message="m_1", role="assistant", job="j_1"))
        sent: dict[int, str] = {0: "", 1: "", 2: ""}
        for kind, value, text in ops:
            if kind == "delta":
                assert isinstance(value, int)
                sent[value] += text
                await writer.delta("m_1", value, text)
            elif kind == "sleep":
                await asyncio.sleep(float(value))
            else:
                await writer.progress(int(value), 100)
        parts = [TextPart(text=sent[i]) for i in range(3)]
        await writer.emit(MessageCompleted(message="m_1", role="assistant", parts=parts, job="j_1"), final=True)
        await writer.aclose()
        records = await hub.log.read("s", 0)
    check_message_order(records)
    for i in range(3):
        assert "".join(r.event.text for r in records if r.type == "message.delta" and r.event.part == i) == sent[i]
    progress = [r.event.done for r in records if r.type == "job.progress"]
    reported = [int(v) for k, v, _ in ops if k == "progress"]
    if reported:
        assert progress and progress[-1] == reported[-1]  # the latest is never lost
        assert len(progress) <= len(reported)
    else:
        assert progress == []


@settings(max_examples=30, deadline=None)
@given(ops=OPS, window_ms=st.sampled_from([0.0, 1.0, 3.0]))
def test_the_writer_keeps_every_fragment_in_order_and_the_final_last(
    ops: list[tuple[str, int | float, str]], window_ms: float
) -> None:
    asyncio.run(writer_run(ops, window_ms))


class GatedSession:
    """A session whose appends wait while the gate is closed (the writer only appends and reads the id)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.id = session.id
        self.gate = asyncio.Event()
        self.gate.set()

    @property
    def subscribers(self) -> int:
        return self.session.subscribers

    @property
    def last_seq(self) -> int:
        return self.session.last_seq

    async def stored_after(self, after: int) -> list[Record]:
        return await self.session.stored_after(after)

    async def publish_many(self, events: list[Event], fence: Fence | None = None) -> list[Record]:
        await self.gate.wait()
        return await self.session.publish_many(events, fence=fence)


class SignallingWriter(Writer):
    """A writer that says when a flush begins (its timer's, in the test below)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flushing = asyncio.Event()

    async def _append(self, events: list[Event], final: bool) -> list[Record]:
        if not events and not final:  # a flush of what is held: the timer's, in the test below
            self.flushing.set()
        return await super()._append(events, final)


async def test_a_flush_under_way_when_the_writer_closes_arms_no_timer() -> None:
    async with Hub.open("memory://") as hub:
        session, _ = await hub.create_session("s")
        gated = GatedSession(session)
        writer = SignallingWriter(cast(Session, gated), 0.01, progress_window=60, job="j_1")
        await writer.delta("m_1", 0, "a")
        await asyncio.sleep(0)  # the timer starts: it sleeps 10 ms (no progress was held yet)
        await writer.progress(1, 10)
        await records_until(session, 0, lambda r: r.type == "job.progress")  # the timer wrote it
        writer.flushing.clear()
        await writer.delta("m_1", 0, "b")
        await asyncio.sleep(0)  # a new 10 ms timer
        await writer.progress(2, 10)  # held back: the last progress is younger than 60 s
        gated.gate.clear()
        blocker = asyncio.create_task(writer.emit(Status(text="held")))  # holds the writer's lock
        async with asyncio.timeout(10):
            await writer.flushing.wait()  # the timer fired: its flush waits for the lock
        closing = asyncio.create_task(writer.aclose())
        await asyncio.sleep(0)  # aclose has stopped the (already fired) timer and waits for that flush
        gated.gate.set()
        await blocker
        await closing
        assert not writer.timer_armed  # nothing sleeps on after the writer closed
        records = await hub.log.read("s", 0)
        progress = [r.event.done for r in records if r.type == "job.progress"]
        assert progress == [1, 2]  # the held-back progress went out with the final flush
        assert "".join(r.event.text for r in records if r.type == "message.delta") == "ab"


async def test_the_wait_grows_with_the_live_subscribers_up_to_the_window() -> None:
    from sessionwire.runtime.coalesce import FLOOR, PER_SUBSCRIBER, PER_WRITER

    async with Hub.open("memory://") as hub:
        session, _ = await hub.create_session("s")
        writer = Writer(session, 0.03, turn="t_1")
        assert writer.delay() == 0.03  # nobody waits for the words: the whole window, fewest records
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(10):
                await stack.enter_async_context(session.subscribe(after=0))
            assert writer.delay() == pytest.approx(FLOOR + 10 * PER_SUBSCRIBER)
            # Many turns writing at once in the process: each waits longer, up to the window.
            others = [Writer(session, 0.03, turn=f"t_{i}") for i in range(100)]
            assert len(Writer.open) >= 101
            assert writer.delay() == pytest.approx(max(FLOOR + 10 * PER_SUBSCRIBER, len(Writer.open) * PER_WRITER))
            others += [Writer(session, 0.03, turn=f"u_{i}") for i in range(500)]
            assert writer.delay() == 0.03
            for other in others:
                await other.aclose()
            assert writer in Writer.open and not any(other in Writer.open for other in others)
            dropped = Writer(session, 0.03, turn="t_dropped")  # never closed: it leaves the count once gone
            counted = len(Writer.open)
            del dropped
            gc.collect()
            assert len(Writer.open) == counted - 1
            for _ in range(990):
                await stack.enter_async_context(session.subscribe(after=0))
            assert writer.delay() == 0.03  # capped by the window
        assert writer.delay() == 0.03
        await writer.aclose()


class LostReplies(GatedSession):
    """A session whose store goes away: an append in flight fails, after landing or not (the reply was lost)."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.down = False
        self.landed = False  # whether the append in flight when it went away landed

    async def publish_many(self, events: list[Event], fence: Fence | None = None) -> list[Record]:
        if not self.down:
            return await super().publish_many(events, fence)
        if self.landed:
            await self.session.publish_many(events, fence=fence)
            self.landed = False  # the one in flight; nothing lands while it is away
        raise LogUnavailable("redis at redis://x unreachable for 1 s: the reply was lost")

    async def stored_after(self, after: int) -> list[Record]:
        if self.down:
            raise LogUnavailable("redis at redis://x unreachable for 1 s")
        return await super().stored_after(after)


@pytest.mark.parametrize("landed", [True, False], ids=["landed", "refused"])
@pytest.mark.parametrize("more", [0, 2])
async def test_a_lost_reply_is_not_sent_twice(landed: bool, more: int) -> None:
    # The log gave up on an append that it may have applied all the same (its reply was lost):
    # what the writer held goes out once the store answers, but only what the log does not have.
    async with Hub.open("memory://") as hub:
        session, _ = await hub.create_session("s")
        flaky = LostReplies(session)
        writer = Writer(cast(Session, flaky), 0.0, turn="t_1")
        await writer.delta("m_1", 0, "w1 ")
        flaky.down, flaky.landed = True, landed
        for i in range(1 + more):  # each fails: the first in flight, the others while it is away
            with pytest.raises(LogUnavailable):
                await writer.delta("m_1", 0, f"w{i + 2} ")
        flaky.down = False
        await session.publish({"type": "status", "text": "another producer"})
        await writer.delta("m_1", 0, "last")
        await writer.aclose()
        records = await hub.log.read("s", 0)
        text = "".join(r.event.text for r in records if r.type == "message.delta")
        assert text == "w1 " + "".join(f"w{i + 2} " for i in range(1 + more)) + "last"
