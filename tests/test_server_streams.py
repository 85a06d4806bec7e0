"""SSE and WebSocket streams against a real uvicorn: scope, exact resume, slow clients, snapshots, shutdown."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from conftest import free_port
from server_util import Frame, ThreadServer, auth, running, settings_for, sse_frames
from sessionwire.channel import ChannelOptions
from sessionwire.events import Record
from sessionwire.state import fold_records

TERMINAL_TURN = {"turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"}


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with running(settings_for(free_port(), token_delay_ms=2.0, heartbeat=0.3)) as srv:
        yield srv


async def create(http: httpx.AsyncClient, title: str | None = None) -> tuple[str, str]:
    response = await http.post("/v1/sessions", json={"title": title} if title else {})
    assert response.status_code == 201
    return response.json()["session"], response.json()["token"]


async def collect(
    http: httpx.AsyncClient, session: str, token: str, after: int | None = None, until: Any = None, limit: float = 30
) -> list[Frame]:
    """Frames (no comments) of a session's SSE stream until ``until(frame)`` is true."""
    headers = auth(token)
    if after is not None:
        headers["Last-Event-ID"] = str(after)
    out: list[Frame] = []
    async with asyncio.timeout(limit):
        async with http.stream("GET", f"/v1/sessions/{session}/events", headers=headers) as response:
            assert response.status_code == 200, await response.aread()
            async for frame in sse_frames(response):
                if frame.event == ":":
                    continue
                out.append(frame)
                if until(frame):
                    return out
    raise AssertionError("the stream ended early")


def turn_ended(turn: str) -> Any:
    return lambda f: f.event in TERMINAL_TURN and f.data.get("turn") == turn


async def all_records(http: httpx.AsyncClient, session: str, token: str, last: int) -> list[dict[str, Any]]:
    frames = await collect(http, session, token, after=0, until=lambda f: f.id == last)
    return [f.data for f in frames if f.id is not None]


def assert_gapless(frames: list[Frame], first: int = 1) -> None:
    ids = [f.id for f in frames if f.id is not None]
    assert ids == list(range(first, first + len(ids))), ids[:50]


async def test_two_subscribers_identical_third_session_isolated(server: ThreadServer) -> None:
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:
        sessions = await asyncio.gather(*(create(http) for _ in range(50)))
        (a, a_token), (b, b_token) = sessions[0], sessions[1]
        # subscribe first, then make all 50 sessions stream at once
        ready = asyncio.Event()
        opened = 0

        async def subscriber(session: str, token: str, until: Any) -> list[Frame]:
            nonlocal opened
            out: list[Frame] = []
            async with http.stream("GET", f"/v1/sessions/{session}/events", headers=auth(token)) as response:
                opened += 1
                if opened == 3:
                    ready.set()
                async for frame in sse_frames(response):
                    if frame.event != ":":
                        out.append(frame)
                        if until(frame):
                            return out
            return out

        def a_until(frame: Frame) -> bool:
            return frame.event == "turn.completed"

        tasks = [
            asyncio.ensure_future(subscriber(a, a_token, a_until)),
            asyncio.ensure_future(subscriber(a, a_token, a_until)),
            asyncio.ensure_future(subscriber(b, b_token, lambda f: f.event == "turn.completed")),
        ]
        async with asyncio.timeout(10):
            await ready.wait()
        sent = await asyncio.gather(
            *(http.post(f"/v1/sessions/{s}/turns", json={"text": "/long 40"}, headers=auth(t)) for s, t in sessions)
        )
        assert all(r.status_code == 202 for r in sent)
        async with asyncio.timeout(60):
            first, second, third = await asyncio.gather(*tasks)
        assert [(f.id, f.event, f.data) for f in first] == [(f.id, f.event, f.data) for f in second]
        assert_gapless(first)
        assert all(f.data["session"] == a for f in first)
        assert third and all(f.data["session"] == b for f in third)
        assert_gapless(third)
        words = re.findall(
            r"w\d+", fold_records(Record.from_json(json.dumps(f.data)) for f in first).to_json().decode()
        )
        assert {f"w{i}" for i in range(1, 41)} <= set(words)


async def test_sse_resume_after_cut_mid_turn(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        session, token = await create(http)
        sent = await http.post(f"/v1/sessions/{session}/turns", json={"text": "/long 300"}, headers=auth(token))
        turn, after = sent.json()["turn"], sent.json()["after"]
        # read a part of the turn, then close the connection mid-turn
        part = await collect(http, session, token, after=after, until=lambda f: f.event == "message.delta")
        part += await collect(http, session, token, after=part[-1].id, until=lambda f: f.event == "message.delta")
        assert part[-1].data["turn"] == turn
        # resume with Last-Event-ID from the last record seen
        rest = await collect(http, session, token, after=part[-1].id, until=turn_ended(turn))
        got = [f for f in part + rest if f.id is not None]
        assert_gapless(got, first=after + 1)
        log = await all_records(http, session, token, last=got[-1].id or 0)
        assert [f.data for f in got] == log[after:]
        assert rest[-1].event == "turn.completed"


async def test_ws_resume_after_cut_and_ops(server: ThreadServer) -> None:
    ws_url = server.url.replace("http", "ws") + "/v1/ws"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        session, token = await create(http)
        other, other_token = await create(http)
        seen: list[dict[str, Any]] = []
        async with connect(ws_url) as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": 1, "session": session, "token": token, "after": 0}))
            await ws.send(json.dumps({"op": "subscribe", "id": 2, "session": other, "token": other_token}))
            await ws.send(json.dumps({"op": "send_turn", "id": 3, "session": session, "text": "/long 300"}))
            await ws.send(json.dumps({"op": "nope", "id": 4}))
            await ws.send(json.dumps({"op": "state", "id": 5, "session": other}))
            replies: dict[int, dict[str, Any]] = {}
            async with asyncio.timeout(20):
                while len(replies) < 5 or sum(1 for r in seen if r["type"] == "message.delta") < 5:
                    msg = json.loads(await ws.recv())
                    if "reply" in msg:
                        replies[msg["reply"]] = msg
                    elif msg.get("session") == session and "seq" in msg:
                        seen.append(msg)
            assert replies[1]["ok"] and replies[2]["ok"]
            assert replies[3]["ok"] and replies[3]["turn"]
            assert replies[4]["error"]["code"] == "unknown_op"
            assert replies[5]["ok"] and replies[5]["seq"] == 1
            turn = replies[3]["turn"]
            ws.transport.abort()  # cut the connection mid-turn
        last = seen[-1]["seq"]
        async with connect(ws_url) as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": 1, "session": session, "token": token, "after": last}))
            async with asyncio.timeout(20):
                while True:
                    msg = json.loads(await ws.recv())
                    if "reply" in msg:
                        assert msg["ok"], msg
                        continue
                    assert msg["session"] == session
                    seen.append(msg)
                    if msg["type"] in TERMINAL_TURN and msg.get("turn") == turn:
                        break
            # errors come back as replies; the socket stays usable
            await ws.send(json.dumps({"op": "subscribe", "id": 9, "session": other, "token": token}))
            await ws.send(json.dumps({"op": "subscribe", "id": 10, "session": session, "after": 0}))
            await ws.send(json.dumps({"op": "unsubscribe", "id": 11, "session": session}))
            await ws.send(json.dumps({"op": "subscribe", "id": 12, "session": session, "after": 10**6}))
            answers: dict[int, dict[str, Any]] = {}
            async with asyncio.timeout(10):
                while len(answers) < 4:
                    msg = json.loads(await ws.recv())
                    if msg.get("reply") in (9, 10, 11, 12):
                        answers[msg["reply"]] = msg
            assert answers[9]["error"]["code"] == "forbidden" and answers[9]["error"]["status"] == 403
            assert answers[10]["error"]["code"] == "already_subscribed"
            assert answers[11]["ok"]
            assert answers[12]["error"]["code"] == "cursor_ahead"
        assert [r["seq"] for r in seen] == list(range(1, len(seen) + 1))
        log = await all_records(http, session, token, last=seen[-1]["seq"])
        assert seen == log


async def test_ws_origin_check(server: ThreadServer) -> None:
    ws_url = server.url.replace("http", "ws") + "/v1/ws"
    with pytest.raises(Exception, match="403"):
        async with connect(ws_url, origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    async with connect(ws_url, origin=server.url) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"op": "unsubscribe", "id": 1, "session": "s_x"}))
        assert json.loads(await ws.recv())["error"]["code"] == "not_subscribed"


async def test_job_turn_returns_at_once_and_late_subscriber_gets_everything() -> None:
    with running(settings_for(free_port(), token_delay_ms=5.0)) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as http:
            session, token = await create(http)
            started = time.perf_counter()
            sent = await http.post(
                f"/v1/sessions/{session}/turns", json={"text": "/job 300 report"}, headers=auth(token)
            )
            elapsed = time.perf_counter() - started
            assert sent.status_code == 202
            assert elapsed < 0.5, f"the request took {elapsed:.2f}s; the job alone takes 1.5 s"
            turn, after = sent.json()["turn"], sent.json()["after"]
            seen_turn_end: dict[str, str] = {}

            def until(frame: Frame) -> bool:
                if frame.event in TERMINAL_TURN and frame.data.get("turn") == turn:
                    seen_turn_end["turn"] = frame.event
                if frame.event.startswith("job.") and frame.event != "job.started" and frame.event != "job.progress":
                    seen_turn_end["job"] = frame.event
                return len(seen_turn_end) == 2

            frames = await collect(http, session, token, after=after, until=until)
            assert seen_turn_end == {"turn": "turn.completed", "job": "job.completed"}
            assert_gapless(frames, first=after + 1)
            state = fold_records(Record.from_json(json.dumps(f.data)) for f in frames)
            assert state.turns[turn].status == "completed"
            (job,) = state.jobs.values()
            assert job.status == "completed" and job.title == "report"
            text = " ".join(
                part.text for m in job.messages for part in state.messages[m].parts if hasattr(part, "text")
            )
            assert re.findall(r"w\d+", text) == [f"w{i}" for i in range(1, 301)]


async def test_slow_sse_client_does_not_slow_others() -> None:
    options = ChannelOptions(ring_records=64, lag_records=64, max_batch=64)
    with running(settings_for(free_port()), channel_options=options) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as http:
            session, token = await create(http)
            slow = socket.socket()
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.connect(("127.0.0.1", srv.settings.port))
            slow.sendall(f"GET /v1/sessions/{session}/events?token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            try:
                batches, size = 40, 50
                total = 1 + batches * size
                fast = asyncio.ensure_future(collect(http, session, token, after=0, until=lambda f: f.id == total))
                filler = "x" * 3000  # 6 MB in all: more than the kernel buffers of both ends
                started = time.perf_counter()
                for i in range(batches):
                    events = [{"type": "status", "text": f"{i}-{j} {filler}"} for j in range(size)]
                    response = await http.post(
                        f"/v1/sessions/{session}/records", json={"events": events}, headers=auth(token)
                    )
                    assert response.status_code == 200
                produced = time.perf_counter() - started
                got = await fast
                fast_done = time.perf_counter() - started
                assert_gapless(got)
                assert produced < 10 and fast_done < 15
                # now the slow client reads everything: complete, in order, once
                slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                slow.settimeout(20)
                buffer = bytearray()
                while f"id: {total}\n".encode() not in buffer[-8192:]:
                    chunk = slow.recv(65536)
                    assert chunk, "the server closed the slow client's stream"
                    buffer += chunk
            finally:
                slow.close()
            ids = [int(m) for m in re.findall(rb"^id: (\d+)$", bytes(buffer), re.M)]
            assert ids == list(range(1, total + 1))
            controls = re.findall(rb"^event: (lagging|caught_up|snapshot)$", bytes(buffer), re.M)
            # it fell out of the live path (ring of 64), caught up from the log, and never needed a snapshot
            assert b"lagging" in controls and b"caught_up" in controls and b"snapshot" not in controls


async def test_heartbeat_comment(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        session, token = await create(http)
        async with asyncio.timeout(5):
            async with http.stream("GET", f"/v1/sessions/{session}/events", headers=auth(token)) as response:
                async for frame in sse_frames(response):
                    if frame.event == ":" and frame.data == "heartbeat":
                        break


async def test_snapshot_frame_when_the_log_dropped_the_records() -> None:
    options = ChannelOptions(ring_records=4, lag_records=4, snapshot_every=10, read_page=8)
    with running(settings_for(free_port(), store="memory://?retain=5"), channel_options=options) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as http:
            session, token = await create(http)
            for i in range(6):
                events = [{"type": "status", "text": f"{i}-{j}"} for j in range(5)]
                await http.post(f"/v1/sessions/{session}/records", json={"events": events}, headers=auth(token))
            frames: list[Frame] = []
            async with asyncio.timeout(20):
                async with http.stream("GET", f"/v1/sessions/{session}/events?after=1", headers=auth(token)) as resp:
                    async for frame in sse_frames(resp):
                        if frame.event == ":":
                            continue
                        frames.append(frame)
                        if frame.event == "snapshot":
                            more = [{"type": "status", "text": f"more-{j}"} for j in range(3)]
                            await http.post(
                                f"/v1/sessions/{session}/records", json={"events": more}, headers=auth(token)
                            )
                        if frame.id == 34:
                            break
            assert frames[0].event == "snapshot" and frames[0].id is None
            at = frames[0].data["at"]
            assert 1 < at <= 31 and frames[0].data["state"]["seq"] == at
            assert frames[0].data["session"] == session and frames[0].data["state"]["status"]["text"]
            tail = [f for f in frames[1:] if f.id is not None]
            assert [f.id for f in tail] == list(range(at + 1, 35))


def test_open_streams_end_at_shutdown() -> None:
    srv = ThreadServer(settings_for(free_port())).start()
    try:
        created = httpx.post(srv.url + "/v1/sessions", json={}).json()
        with httpx.stream("GET", f"{srv.url}/v1/sessions/{created['session']}/events?token={created['token']}") as r:
            lines = r.iter_lines()
            assert next(lines).startswith("retry")
            started = time.monotonic()
            srv.server.should_exit = True
            rest = list(lines)  # ends when the server ends the stream
            assert time.monotonic() - started < 1.5
            assert "id: 1" in rest and "event: session.created" in rest
    finally:
        srv.stop()
    assert not srv.thread.is_alive()
