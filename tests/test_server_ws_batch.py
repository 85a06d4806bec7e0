"""``/v1/ws`` with ``"batch": true``: each ready batch as one JSON array, exact resume, no mixing with single frames."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect

from conftest import free_port
from server_util import ThreadServer, auth, running, settings_for, sse_frames
from sessionwire.channel import ChannelOptions, Control
from sessionwire.events import Record, Status
from sessionwire.server.ws import array_frames

TERMINAL_TURN = {"turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"}


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with running(settings_for(free_port(), token_delay_ms=2.0)) as srv:
        yield srv


def ws_url(server: ThreadServer) -> str:
    return server.url.replace("http", "ws") + "/v1/ws"


async def create(http: httpx.AsyncClient) -> tuple[str, str]:
    response = await http.post("/v1/sessions", json={})
    assert response.status_code == 201
    return response.json()["session"], response.json()["token"]


async def log_records(http: httpx.AsyncClient, session: str, token: str, last: int) -> list[dict[str, Any]]:
    """The session's records 1..last as the log holds them (read over SSE, an independent path)."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        async with http.stream("GET", f"/v1/sessions/{session}/events?after=0", headers=auth(token)) as response:
            async for frame in sse_frames(response):
                if frame.id is not None:
                    out.append(frame.data)
                    if frame.id == last:
                        return out
    raise AssertionError("the SSE stream ended early")


async def frames_until(ws: ClientConnection, done: Any, limit: float = 20) -> list[Any]:
    """Every frame, decoded (dicts and arrays), until ``done(frame)`` is true."""
    out: list[Any] = []
    async with asyncio.timeout(limit):
        while not out or not done(out[-1]):
            out.append(json.loads(await ws.recv()))
    return out


def items(frames: list[Any]) -> list[dict[str, Any]]:
    """The items of the array frames, in order."""
    return [item for frame in frames if isinstance(frame, list) for item in frame]


def has_terminal(turn: str) -> Any:
    return lambda f: isinstance(f, list) and any(i.get("turn") == turn and i["type"] in TERMINAL_TURN for i in f)


async def test_batch_resume_after_cut_mid_turn_is_exact(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        session, token = await create(http)
        # Records that exist before the subscription come as one array.
        await http.post(
            f"/v1/sessions/{session}/records",
            json={"events": [{"type": "status", "text": f"s{i}"} for i in range(5)]},
            headers=auth(token),
        )
        got: list[Any] = []
        async with connect(ws_url(server)) as ws:
            sub = {"op": "subscribe", "id": 1, "session": session, "token": token, "after": 0, "batch": True}
            await ws.send(json.dumps(sub))
            # The reply, then the first array: a subscription's records never come before its reply.
            frames = await frames_until(ws, lambda f: True)
            frames += await frames_until(ws, lambda f: True)
            assert frames[0] == {"reply": 1, "ok": True, "session": session, "after": 0, "batch": True}
            first = frames[1]
            assert [r["seq"] for r in first] == [1, 2, 3, 4, 5, 6]
            got += first
            await ws.send(json.dumps({"op": "send_turn", "id": 2, "session": session, "text": "/long 300"}))
            frames = await frames_until(ws, lambda f: sum(i["type"] == "message.delta" for i in items([f])) > 0)
            replies = [f for f in frames if isinstance(f, dict)]
            assert replies and replies[0]["reply"] == 2 and replies[0]["ok"], replies
            turn = replies[0]["turn"]
            got += items(frames)
            frames = await frames_until(ws, lambda f: True)  # one more array, then cut mid-turn
            got += items(frames)
            ws.transport.abort()
        last = got[-1]["seq"]
        assert not any(i["type"] in TERMINAL_TURN for i in got), "the turn ended before the cut"
        async with connect(ws_url(server)) as ws:
            sub = {"op": "subscribe", "id": 1, "session": session, "token": token, "after": last, "batch": True}
            await ws.send(json.dumps(sub))
            frames = await frames_until(ws, has_terminal(turn))
            assert all(isinstance(f, list) for f in frames if "reply" not in f)
            got += items(frames)
        assert all("seq" in i and i["session"] == session for i in got)
        assert [i["seq"] for i in got] == list(range(1, len(got) + 1))
        assert got == await log_records(http, session, token, last=got[-1]["seq"])


async def test_batched_and_single_sessions_on_one_socket_never_mix(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        (a, a_token), (b, b_token) = await create(http), await create(http)
        async with connect(ws_url(server)) as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": 1, "session": a, "token": a_token, "batch": True}))
            await ws.send(json.dumps({"op": "subscribe", "id": 2, "session": b, "token": b_token, "batch": False}))
            await ws.send(json.dumps({"op": "send_turn", "id": 3, "session": a, "text": "/long 60"}))
            await ws.send(json.dumps({"op": "send_turn", "id": 4, "session": b, "text": "/long 60"}))
            ended: set[str] = set()

            def both_ended(frame: Any) -> bool:
                for item in frame if isinstance(frame, list) else [frame]:
                    if item.get("type") == "turn.completed":
                        ended.add(item["session"])
                return ended == {a, b}

            frames = await frames_until(ws, both_ended, limit=30)
        replies = {f["reply"]: f for f in frames if isinstance(f, dict) and "reply" in f}
        assert replies[1]["batch"] is True and "batch" not in replies[2]
        assert all(replies[i]["ok"] for i in (1, 2, 3, 4))
        arrays = [f for f in frames if isinstance(f, list)]
        singles = [f for f in frames if isinstance(f, dict) and "reply" not in f]
        assert arrays and all(arr and all(i["session"] == a for i in arr) for arr in arrays)
        assert singles and all(f["session"] == b for f in singles)
        for session, token, got in ((a, a_token, items(arrays)), (b, b_token, singles)):
            assert [r["seq"] for r in got] == list(range(1, len(got) + 1))
            assert got == await log_records(http, session, token, last=got[-1]["seq"])


async def test_control_frames_inside_arrays_keep_their_session() -> None:
    options = ChannelOptions(lag_records=4, read_page=8)
    with running(settings_for(free_port(), admin_token="admin-secret"), channel_options=options) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as http:
            session, token = await create(http)
            async with connect(ws_url(srv)) as ws:
                await ws.send(
                    json.dumps({"op": "subscribe", "id": 1, "session": session, "token": token, "batch": True})
                )
                first = await frames_until(ws, lambda f: isinstance(f, list))
                assert items(first) and items(first)[0]["type"] == "session.created"  # live: from the ring
                # 30 records at once, more than lag_records: the subscriber catches up from the log.
                events = [{"type": "status", "text": f"t{i}"} for i in range(30)]
                posted = await http.post(
                    f"/v1/sessions/{session}/records", json={"events": events}, headers=auth(token)
                )
                assert posted.status_code == 200, posted.text
                frames = await frames_until(ws, lambda f: any(i.get("control") == "caught_up" for i in items([f])))
                got = items(first + frames)
                assert all(isinstance(f, list) for f in frames if "reply" not in f)
                arrays = [f for f in frames if isinstance(f, list)]
                lagging = next(f for f in arrays if any("control" in i for i in f))
                assert lagging[0] == {"control": "lagging", "session": session}
                assert any("seq" in i for i in lagging), "the records come in the same array as the control frame"
                controls = [i for i in got if "control" in i]
                assert [c["control"] for c in controls] == ["lagging", "caught_up"]
                assert all(c["session"] == session for c in controls)
                records = [i for i in got if "seq" in i]
                assert [r["seq"] for r in records] == list(range(1, 32))
                # The server ending the subscription says so in an array too.
                deleted = await http.delete(f"/v1/sessions/{session}", headers=auth("admin-secret"))
                assert deleted.status_code == 204
                ended = (await frames_until(ws, lambda f: any(i.get("control") == "ended" for i in items([f]))))[-1]
                assert ended == [{"control": "ended", "session": session, "reason": "session_deleted"}]


async def test_batch_must_be_a_boolean(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        session, token = await create(http)
        async with connect(ws_url(server)) as ws:
            for op_id, value in enumerate(["yes", 1, {}], 1):
                sub = {"op": "subscribe", "id": op_id, "session": session, "token": token, "batch": value}
                await ws.send(json.dumps(sub))
                reply = json.loads(await ws.recv())
                assert reply["reply"] == op_id and reply["error"]["code"] == "invalid", reply
            # Still not subscribed: a valid subscribe goes through, without the option as before.
            await ws.send(json.dumps({"op": "subscribe", "id": 9, "session": session, "batch": None}))
            frames = [json.loads(await ws.recv()), json.loads(await ws.recv())]  # in either order
            assert {"reply": 9, "ok": True, "session": session, "after": 0} in frames
            assert [f["seq"] for f in frames if "seq" in f] == [1]


def _record(seq: int, size: int) -> Record:
    return Record("s_batch", seq, 1, Status(text="x" * size))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=1, max_size=40), st.integers(64, 2000), st.sets(st.integers(0, 39)))
def test_array_frames_keep_every_item_in_order_within_the_limit(sizes: list[int], limit: int, at: set[int]) -> None:
    batch: list[Record | Control] = [_record(seq, size) for seq, size in enumerate(sizes, 1)]
    for index in sorted(at, reverse=True):
        batch.insert(min(index, len(batch)), Control(control="caught_up", session="s_batch"))
    frames = array_frames(batch, limit)
    decoded = [json.loads(frame) for frame in frames]
    assert all(isinstance(arr, list) and arr for arr in decoded)
    assert [item for arr in decoded for item in arr] == [json.loads(item.raw) for item in batch]
    assert all(len(frame.encode()) <= limit or len(arr) == 1 for frame, arr in zip(frames, decoded))
    # As few frames as the limit allows: the next frame's first item did not fit in the one before.
    start = 0
    for frame, arr in zip(frames[:-1], decoded):
        start += len(arr)
        assert len(frame.encode()) + 1 + len(batch[start].raw) > limit
