"""The push groups that write caught-up SSE streams (sessionwire.server.push), with a fake ASGI send.

The fake send behaves as uvicorn's does: a write to a client whose buffer is full waits until
the client reads (``paused``), then goes out; a write to a broken connection raises.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import Message

from sessionwire import Hub
from sessionwire.channel import ChannelOptions, Session, Subscription
from sessionwire.server.frames import encode_frames
from sessionwire.server.push import Pushers


class Client:
    """One client's connection, as the ASGI send of its stream sees it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.readable = asyncio.Event()
        self.readable.set()
        self.broken: Exception | None = None
        self.grew = asyncio.Event()

    async def send(self, message: Message) -> None:
        if not self.readable.is_set():
            await self.readable.wait()
        if self.broken is not None:
            raise self.broken
        self.bodies.append(message["body"])
        self.grew.set()

    @property
    def seqs(self) -> list[int]:
        return [int(s) for s in re.findall(rb"^id: (\d+)$", b"".join(self.bodies), re.M)]

    async def until(self, last: int) -> None:
        async with asyncio.timeout(5):
            while not self.seqs or self.seqs[-1] < last:
                self.grew.clear()
                await self.grew.wait()


async def stream(pushers: Pushers, sub: Subscription, send: Callable[[Message], Awaitable[None]]) -> None:
    """What EventStream.pump does: pull until caught up, then follow the group, and again."""
    while True:
        batch = await sub.batch()
        if not batch:
            return
        await send({"type": "http.response.body", "body": encode_frames(batch), "more_body": True})
        await pushers.follow(sub, send)


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    async with Hub.open("memory://") as hub:
        yield await hub.session("s_push")


async def turns(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition()`` holds (they wait on no timer: turns of the loop do)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the streams never got there")


async def publish(session: Session, count: int) -> None:
    for i in range(count):
        await session.publish({"type": "status", "text": f"r{i}"})


async def test_caught_up_streams_share_one_waiter_and_get_every_record_once(session: Session) -> None:
    pushers = Pushers(heartbeat=60)
    await publish(session, 1)
    clients = [Client() for _ in range(20)]
    async with asyncio.TaskGroup() as tasks:
        for client in clients:
            tasks.create_task(stream(pushers, await _open(session), client.send))
        await turns(lambda: pushers.members == 20)
        await turns(lambda: session.waiting == 1)  # the group's one waiter, not one per stream
        for _ in range(10):
            await publish(session, 7)
            await asyncio.sleep(0)
        for client in clients:
            await client.until(71)
            assert client.seqs == list(range(1, 72))
        await session.aclose()  # every member leaves; each stream pulls, sees the close and ends
    assert pushers.members == 0 and pushers.groups == 0


async def _open(session: Session) -> Subscription:
    # A subscription held open for the test (closed with the session).
    return await session.subscribe(after=0).__aenter__()


async def test_a_slow_client_leaves_the_group_and_holds_up_nobody(session: Session) -> None:
    pushers = Pushers(heartbeat=60)
    slow, fast = Client(), Client()
    slow_sub, fast_sub = await _open(session), await _open(session)
    await publish(session, 1)
    slow_task = asyncio.create_task(stream(pushers, slow_sub, slow.send))
    fast_task = asyncio.create_task(stream(pushers, fast_sub, fast.send))
    await turns(lambda: pushers.members == 2)
    slow.readable.clear()  # its buffer is full: its next write waits
    await publish(session, 50)
    await fast.until(51)
    assert pushers.members == 1 and slow.seqs == [1]  # the write waits in a task of its own
    await publish(session, 50)
    await fast.until(101)
    slow.readable.set()  # it reads again: the waiting write goes out, then it pulls the rest
    await slow.until(101)
    assert slow.seqs == list(range(1, 102)) and fast.seqs == list(range(1, 102))
    await turns(lambda: pushers.members == 2)  # caught up again: back in the group
    await session.aclose()
    await asyncio.gather(slow_task, fast_task)


async def test_a_stream_that_ends_while_its_write_waits_leaves_no_task(session: Session) -> None:
    pushers = Pushers(heartbeat=60)
    client, sub = Client(), await _open(session)
    await publish(session, 1)
    task = asyncio.create_task(stream(pushers, sub, client.send))
    await turns(lambda: pushers.members == 1)
    before = asyncio.all_tasks()
    client.readable.clear()
    await publish(session, 3)
    await turns(lambda: not pushers.members)
    waiting = asyncio.all_tasks() - before
    assert len(waiting) == 1  # the write that waits for its client
    task.cancel()  # the client went (the server stops)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(t.done() for t in waiting) and all(t.cancelled() for t in waiting)
    assert pushers.groups == 0


async def test_a_write_that_fails_ends_only_its_own_stream(session: Session) -> None:
    pushers = Pushers(heartbeat=60)
    broken, fine = Client(), Client()
    broken_task = asyncio.create_task(stream(pushers, await _open(session), broken.send))
    fine_task = asyncio.create_task(stream(pushers, await _open(session), fine.send))
    await publish(session, 1)
    await turns(lambda: pushers.members == 2)
    broken.broken = ConnectionResetError("the client went")
    await publish(session, 5)
    with pytest.raises(ConnectionResetError):
        await broken_task
    await fine.until(6)
    assert fine.seqs == list(range(1, 7)) and pushers.members == 1
    await session.aclose()
    await fine_task


async def test_an_idle_member_gets_heartbeats_from_its_group(session: Session) -> None:
    pushers = Pushers(heartbeat=0.05)
    idle = Client()
    await publish(session, 1)
    task = asyncio.create_task(stream(pushers, await _open(session), idle.send))
    async with asyncio.timeout(5):
        while idle.bodies.count(b": heartbeat\n\n") < 3:
            idle.grew.clear()
            await idle.grew.wait()
    assert idle.seqs == [1]
    await session.aclose()
    await task


async def test_an_ended_subscription_leaves_the_group_and_pulls_its_ended_frame(session: Session) -> None:
    pushers = Pushers(heartbeat=60)
    client = Client()
    async with session.subscribe(after=0, credential="old") as sub:
        await publish(session, 2)
        task = asyncio.create_task(stream(pushers, sub, client.send))
        await turns(lambda: pushers.members == 1)
        assert session.revoke(lambda credential: credential != "old", "token_rotated") == 1
        await task
    assert b'"control":"ended"' in client.bodies[-1] and b"token_rotated" in client.bodies[-1]
    assert client.seqs == [1, 2] and pushers.groups == 0


async def test_a_burst_larger_than_a_batch_reaches_members_without_another_delivery() -> None:
    options = ChannelOptions(max_batch=8, lag_records=64, ring_records=64)
    async with Hub.open("memory://", options=options) as hub:
        session = await hub.session("s_burst")
        pushers = Pushers(heartbeat=60)
        client = Client()
        await publish(session, 1)
        task = asyncio.create_task(stream(pushers, await _open(session), client.send))
        await client.until(1)
        await turns(lambda: session.waiting == 1)
        await publish(session, 30)  # one delivery of 30 records: four batches of at most 8
        await client.until(31)
        assert client.seqs == list(range(1, 32)) and pushers.members == 1
        await session.aclose()
        await task


Step = tuple[str, int]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.integers(1, 40)),
        st.tuples(st.just("pause"), st.integers(0, 3)),
        st.tuples(st.just("resume"), st.integers(0, 3)),
        st.tuples(st.just("turns"), st.integers(0, 4)),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_any_interleaving_of_writes_that_wait_delivers_every_record_once_in_order(schedule: list[Step]) -> None:
    # A small ring, so that a client held back long enough falls out of it and catches up from the log.
    options = ChannelOptions(ring_records=16, ring_bytes=1 << 20, lag_records=16, max_batch=8)

    async def run() -> None:
        async with Hub.open("memory://", options=options) as hub:
            session = await hub.session("s_interleave")
            pushers = Pushers(heartbeat=60)
            clients = [Client() for _ in range(4)]
            tasks = [asyncio.create_task(stream(pushers, await _open(session), c.send)) for c in clients]
            total = 0
            for action, n in schedule:
                if action == "publish":
                    await publish(session, n)
                    total += n
                elif action == "pause":
                    clients[n].readable.clear()
                elif action == "resume":
                    clients[n].readable.set()
                for _ in range(n if action == "turns" else 1):
                    await asyncio.sleep(0)
            await publish(session, 1)
            total += 1
            for client in clients:
                client.readable.set()
            for client in clients:
                await client.until(total)
                assert client.seqs == list(range(1, total + 1))
            await session.aclose()
            await asyncio.gather(*tasks)
        assert pushers.groups == 0

    asyncio.run(run())


async def test_a_send_wrapped_with_context_and_timeouts_works_in_the_group(session: Session) -> None:
    # Middleware around the app may wrap send: a context variable set and reset around the write
    # (tracing), and asyncio.timeout, which needs a task. A write that must wait for its client
    # goes on in another task, in the same context; a heartbeat is written by the stream's own task.
    var: contextvars.ContextVar[str] = contextvars.ContextVar("span", default="none")
    client = Client()
    seen: list[str] = []

    async def traced(message: Message) -> None:
        token = var.set("write")
        try:
            async with asyncio.timeout(5):
                await client.send(message)
            seen.append(var.get())
        finally:
            var.reset(token)  # raises ValueError if it runs in another context than the set

    pushers = Pushers(heartbeat=0.05)
    await publish(session, 1)
    task = asyncio.create_task(stream(pushers, await _open(session), traced))
    await client.until(1)
    await turns(lambda: pushers.members == 1)
    client.readable.clear()
    await publish(session, 3)  # this write waits for the client, in a task of its own
    await turns(lambda: not pushers.members)
    client.readable.set()
    await client.until(4)
    await publish(session, 1)  # pulled, after which the stream joins the group again
    await client.until(5)
    async with asyncio.timeout(5):
        while b": heartbeat\n\n" not in client.bodies:
            client.grew.clear()
            await client.grew.wait()
    await session.aclose()
    await task
    assert client.seqs == [1, 2, 3, 4, 5] and set(seen) == {"write"} and var.get() == "none"
