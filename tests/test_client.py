"""The Python client against a real uvicorn: commands, errors, and events() that resumes exactly."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path

import pytest

from conftest import free_port
from server_util import CuttingProxy, ProcessServer, ThreadServer, running, settings_for
from sessionwire import Client, Control, CursorAhead, Forbidden, LifecycleViolation, NotFound, Record, Unauthorized
from sessionwire.channel import ChannelOptions
from sessionwire.state import fold_records

TERMINAL_TURN = {"turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"}


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with running(settings_for(free_port(), token_delay_ms=2.0)) as srv:
        yield srv


async def test_commands_state_and_events(server: ThreadServer) -> None:
    async with Client(server.url) as client:
        created = await client.create_session(title="client")
        assert client.tokens[created.id] == created.token
        sent = await client.send(created.id, "/long 30")
        records: list[Record] = []
        async with asyncio.timeout(20):
            async with aclosing(client.events(created.id, after=0)) as events:
                async for item in events:
                    assert isinstance(item, Record)
                    records.append(item)
                    if item.type in TERMINAL_TURN and getattr(item.event, "turn", None) == sent.id:
                        break
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        assert records[0].type == "session.created"
        state = await client.state(created.id)
        assert state.seq >= records[-1].seq
        assert fold_records(records).turns[sent.id].status == "completed" == state.turns[sent.id].status
        seqs = await client.publish(created.id, [{"type": "status", "text": "from a producer"}])
        assert seqs == [state.seq + 1]
        renamed = await client.rename(created.id, "renamed by the client")
        assert renamed == seqs[0] + 1 and (await client.state(created.id)).title == "renamed by the client"
        with pytest.raises(LifecycleViolation) as forged:
            await client.publish(created.id, [{"type": "turn.failed", "turn": sent.id, "error": "forged"}])
        assert forged.value.code == "owned_by_runtime" and sent.id in str(forged.value)
        job = await client.start_job(created.id, "count", "/long 2000")
        await client.cancel_job(created.id, job.id)
        with pytest.raises(NotFound):
            await client.cancel_turn(created.id, "t_nope")
        with pytest.raises(NotFound):
            await client.resolve_approval(created.id, "a_nope", "approve")
        other = await client.create_session()
        client.tokens[other.id] = created.token
        with pytest.raises(Forbidden):
            await client.state(other.id)
        client.tokens[other.id] = "sw1.bad.token"
        with pytest.raises(Unauthorized):
            await client.state(other.id)
        with pytest.raises(CursorAhead):
            async with aclosing(client.events(created.id, after=10**6)) as events:
                async for _ in events:
                    pass


async def test_events_resume_after_connections_are_cut(server: ThreadServer) -> None:
    async with CuttingProxy(server.settings.port) as proxy, Client(proxy.url) as client:
        created = await client.create_session()
        sent = await client.send(created.id, "/long 300")
        seen: list[Record] = []
        async with asyncio.timeout(30):
            async with aclosing(client.events(created.id, after=sent.after, backoff=0.01)) as events:
                async for item in events:
                    assert isinstance(item, Record)
                    seen.append(item)
                    if len(seen) in (5, 25, 60):
                        proxy.cut()  # mid-turn, three times
                    if item.type in TERMINAL_TURN:
                        break
        assert proxy.connections >= 4
        assert [r.seq for r in seen] == list(range(sent.after + 1, sent.after + 1 + len(seen)))
        async with Client(server.url, tokens=client.tokens) as direct:
            log: list[Record] = []
            async with aclosing(direct.events(created.id, after=sent.after)) as events:
                async for item in events:
                    assert isinstance(item, Record)
                    log.append(item)
                    if item.seq == seen[-1].seq:
                        break
        assert [r.raw for r in seen] == [r.raw for r in log]
        text = fold_records(seen).to_json().decode()
        assert re.findall(r"w\d+", text)[:300] == [f"w{i}" for i in range(1, 301)]


async def test_events_yield_the_snapshot_before_the_tail() -> None:
    options = ChannelOptions(ring_records=4, lag_records=4, snapshot_every=10, read_page=8)
    with running(settings_for(free_port(), store="memory://?retain=5"), channel_options=options) as srv:
        async with Client(srv.url) as client:
            created = await client.create_session()
            for i in range(6):
                await client.publish(created.id, [{"type": "status", "text": f"{i}-{j}"} for j in range(5)])
            items = []
            async with asyncio.timeout(20):
                async with aclosing(client.events(created.id, after=1)) as events:
                    async for item in events:
                        items.append(item)
                        if isinstance(item, Control):
                            await client.publish(created.id, [{"type": "status", "text": "after"}])
                        elif item.seq == 32:
                            break
            first = items[0]
            assert isinstance(first, Control) and first.control == "snapshot" and first.at is not None
            assert first.state is not None and first.state["seq"] == first.at
            tail = [i for i in items[1:] if isinstance(i, Record)]
            assert [r.seq for r in tail] == list(range(first.at + 1, 33))


async def test_events_resume_across_a_server_restart(tmp_path: Path) -> None:
    store, port = f"sqlite:///{tmp_path / 'log.db'}", free_port()
    server = await asyncio.to_thread(lambda: ProcessServer(port, store, "--token-delay-ms", "3").start())
    try:
        async with Client(server.url) as client:
            created = await client.create_session()
            await client.publish(created.id, [{"type": "status", "text": f"before {i}"} for i in range(20)])
            seen: list[Record] = []
            async with asyncio.timeout(40):
                async with aclosing(client.events(created.id, after=0, backoff=0.05, max_backoff=0.5)) as events:
                    async for item in events:
                        assert isinstance(item, Record)
                        seen.append(item)
                        if item.seq == 10:
                            assert await asyncio.to_thread(server.terminate) == 0
                            server.kill()
                            server = await asyncio.to_thread(
                                lambda: ProcessServer(port, store, "--token-delay-ms", "3").start()
                            )
                            await client.publish(created.id, [{"type": "status", "text": "after the restart"}])
                        if item.seq == 22:
                            break
            assert [r.seq for r in seen] == list(range(1, 23))
            assert getattr(seen[-1].event, "text", None) == "after the restart"
    finally:
        server.kill()


def _sse_record(seq: int) -> bytes:
    record = b'{"v":1,"session":"s_n","seq":%d,"ts":1,"type":"status","text":"r%d"}' % (seq, seq)
    return b"id: %d\nevent: status\ndata: %b\n\n" % (seq, record)


async def test_events_skip_control_frames_they_do_not_know() -> None:
    """A newer server's control frame (and an unknown record type) must not break an older client."""
    resumed_from: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
        resumed_from.append(re.search(r"last-event-id: (\d+)", head).group(1))  # type: ignore[union-attr]
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
        if len(resumed_from) == 1:
            writer.write(b'event: rebalanced\ndata: {"control":"rebalanced","session":"s_n"}\n\n')
            writer.write(_sse_record(1))
            future = b'{"v":1,"session":"s_n","seq":2,"ts":1,"type":"future.kind"}'
            writer.write(b"id: 2\nevent: future.kind\ndata: %b\n\n" % future)
        else:
            writer.write(_sse_record(3))
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with Client(f"http://127.0.0.1:{port}", tokens={"s_n": "t"}) as client:
            seen: list[int] = []
            async with asyncio.timeout(10):
                async with aclosing(client.events("s_n", backoff=0.01)) as events:
                    async for item in events:
                        assert isinstance(item, Record)
                        seen.append(item.seq)
                        if item.seq == 3:
                            break
    finally:
        listener.close()
        await listener.wait_closed()
    assert seen == [1, 2, 3] and resumed_from == ["0", "2"]


async def test_a_rotation_retried_with_its_key_keeps_the_session_reachable(server: ThreadServer) -> None:
    async with Client(server.url) as client:
        created = await client.create_session()
        new = await client.rotate_token(created.id, idempotency_key="rot-1-0123456789abcdef0123456789abcdef")
        client.tokens[created.id] = created.token  # as if the first answer had been lost
        assert await client.rotate_token(created.id, idempotency_key="rot-1-0123456789abcdef0123456789abcdef") == new
        assert client.tokens[created.id] == new
        assert (await client.state(created.id)).seq == 1
        client.tokens[created.id] = created.token
        with pytest.raises(Unauthorized):
            await client.state(created.id)
