"""Hostile and unusual input against a real uvicorn: bodies that are not UTF-8, loose cursors, retried rotations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import websockets

from conftest import free_port
from server_util import ThreadServer, running, settings_for, wait_until


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with running(settings_for(free_port(), max_body=4096)) as srv:
        yield srv


@pytest.fixture
async def http(server: ThreadServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


async def new_session(http: httpx.AsyncClient) -> tuple[str, str]:
    response = await http.post("/v1/sessions", json={})
    assert response.status_code == 201, response.text
    return response.json()["session"], response.json()["token"]


JSON = {"Content-Type": "application/json"}


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["error"]["code"])


async def test_bodies_that_are_not_utf8_are_malformed_json(http: httpx.AsyncClient) -> None:
    session, token = await new_session(http)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    bad = b'{"title": "\xff\xfe"}'
    assert error_code(await http.post("/v1/sessions", content=bad, headers=JSON), 400) == "malformed_json"
    turn = b'{"text": "\xff"}'
    assert error_code(await http.post(f"/v1/sessions/{session}/turns", content=turn, headers=headers), 400) == (
        "malformed_json"
    )
    events = b'{"events": [{"type": "status", "text": "\xc3"}]}'
    published = await http.post(f"/v1/sessions/{session}/records", content=events, headers=headers)
    assert error_code(published, 400) == "malformed_json"
    # Nothing was appended, and the session still works.
    state = await http.get(f"/v1/sessions/{session}", headers=headers)
    assert state.status_code == 200 and state.json()["seq"] == 1


@pytest.mark.parametrize("cursor", ["1_0", "+1", "\u0661", "1 0", "0x1", "-0x1", "-1", "x", str(2**63), "9" * 5000])
async def test_cursors_are_plain_ascii_digits_within_a_signed_64_bit_seq(http: httpx.AsyncClient, cursor: str) -> None:
    session, token = await new_session(http)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/v1/sessions/{session}/events"
    assert error_code(await http.get(url, params={"after": cursor}, headers=headers), 400) == "invalid_cursor"
    last_event_id = {**headers, "Last-Event-ID": cursor.encode()}  # type: ignore[dict-item]
    assert error_code(await http.get(url, headers=last_event_id), 400) == "invalid_cursor"
    # The connection is kept: the next request on it is answered (a 500 used to drop it).
    assert (await http.get(f"/v1/sessions/{session}", headers=headers)).status_code == 200
    # The largest cursor is one: beyond the last seq, it is 409 cursor_ahead.
    ahead = await http.get(url, params={"after": str(2**63 - 1)}, headers=headers)
    assert error_code(ahead, 409) == "cursor_ahead"


# A rotation's reply holds a token: its key is the secret that gets it back, long enough to guess.
ROTATE_1, ROTATE_2 = "rotate-1-0123456789abcdef0123456789", "rotate-2-0123456789abcdef0123456789"


async def test_a_retried_rotation_returns_the_new_token_to_the_old_tokens_holder(http: httpx.AsyncClient) -> None:
    session, old = await new_session(http)
    url = f"/v1/sessions/{session}/token"
    keyed = {"Authorization": f"Bearer {old}", "Idempotency-Key": ROTATE_1}
    first = await http.post(url, headers=keyed)
    assert first.status_code == 200, first.text
    new = first.json()["token"]
    # The answer was lost; the retry still carries the old token (now revoked) and the same key.
    retry = await http.post(url, headers=keyed)
    assert retry.status_code == 200, retry.text
    assert retry.json()["token"] == new and retry.headers["idempotent-replayed"] == "true"
    state = await http.get(f"/v1/sessions/{session}", headers={"Authorization": f"Bearer {new}"})
    assert state.status_code == 200
    # The old token does nothing else, not even with another key, nor does a stranger with that key.
    other_key = {"Authorization": f"Bearer {old}", "Idempotency-Key": ROTATE_2}
    assert error_code(await http.post(url, headers=other_key), 401) == "unauthorized"
    assert error_code(await http.post(url, headers={"Idempotency-Key": ROTATE_1}), 401) == "unauthorized"
    _, stranger = await new_session(http)
    strange = {"Authorization": f"Bearer {stranger}", "Idempotency-Key": ROTATE_1}
    assert error_code(await http.post(url, headers=strange), 403) == "forbidden"
    revoked = await http.get(f"/v1/sessions/{session}", headers={"Authorization": f"Bearer {old}"})
    assert error_code(revoked, 401) == "unauthorized"


async def test_json_nested_too_deeply_is_malformed_not_a_crash(http: httpx.AsyncClient, server: ThreadServer) -> None:
    session, token = await new_session(http)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    deep = b"[" * 1500 + b"]" * 1500
    created = await http.post("/v1/sessions", content=b'{"unknown": %b}' % deep, headers=JSON)
    assert created.status_code in (400, 422) and created.json()["error"]["code"] in ("malformed_json", "invalid")
    published = await http.post(f"/v1/sessions/{session}/records", content=b'{"events": %b}' % deep, headers=headers)
    assert error_code(published, 400) == "malformed_json"
    turn = await http.post(f"/v1/sessions/{session}/turns", content=b'{"text": "x", "y": %b}' % deep, headers=headers)
    assert turn.status_code in (400, 422) and turn.json()["error"]["code"] in ("malformed_json", "invalid")
    # Over the WebSocket: an error reply, and the socket keeps serving.
    async with websockets.connect(server.url.replace("http", "ws", 1) + "/v1/ws") as ws:
        await ws.send(b'{"op": "state", "id": 1, "x": %b}' % deep)
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert reply["error"]["code"] == "malformed_json" and reply["error"]["status"] == 400
        await ws.send(json.dumps({"op": "state", "id": 2, "session": session, "token": token}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert reply["reply"] == 2 and reply["ok"] is True and reply["seq"] == 1


async def test_head_on_the_event_stream_ends_at_once(http: httpx.AsyncClient, server: ThreadServer) -> None:
    session, token = await new_session(http)
    url = f"/v1/sessions/{session}/events"
    head = await http.head(url, headers={"Authorization": f"Bearer {token}"})
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
    # The connection stays in the client's pool: the server must not keep a subscription pumping for it.
    await asyncio.to_thread(wait_until, lambda: server.ctx.streams["sse"] == 0, 5.0, "the HEAD stream to end")
    hub = server.ctx.hub
    await asyncio.to_thread(wait_until, lambda: hub.statistics()["subscribers"] == 0, 5.0, "no subscriber left")
    ahead = await http.head(url, params={"after": "99"}, headers={"Authorization": f"Bearer {token}"})
    assert ahead.status_code == 409  # a HEAD answer has no body to carry the code


async def test_the_body_limit_and_the_cursor_rules_hold_on_the_websocket(
    http: httpx.AsyncClient, server: ThreadServer
) -> None:
    session, token = await new_session(http)
    async with websockets.connect(server.url.replace("http", "ws") + "/v1/ws") as ws:

        async def ask(message: dict[str, object] | str) -> dict[str, object]:
            await ws.send(message if isinstance(message, str) else json.dumps(message))
            return dict(json.loads(await asyncio.wait_for(ws.recv(), 10)))

        # A publish over the HTTP body limit (4096 bytes here) is refused whole, as HTTP refuses it.
        big = {"op": "publish", "id": 1, "session": session, "token": token}
        big["events"] = [{"type": "status", "text": "x" * 5000}]
        refused = await ask(big)
        assert refused["error"] == {
            "code": "body_too_large",
            "message": "the message has more than 4096 bytes, the limit",
            "status": 413,
        }
        # The socket goes on: a small one is taken.
        small = await ask(
            {"op": "publish", "id": 2, "session": session, "token": token, "events": [{"type": "status", "text": "ok"}]}
        )
        assert small["ok"] and small["seqs"] == [2]
        for after in (-1, 2**63, "1", True):
            bad = await ask({"op": "subscribe", "id": 3, "session": session, "after": after})
            assert bad["error"]["code"] == "invalid_cursor" and bad["error"]["status"] == 400, bad  # type: ignore[index]
    state = await http.get(f"/v1/sessions/{session}", headers={"Authorization": f"Bearer {token}"})
    assert state.json()["seq"] == 2
