"""The HTTP API against a real uvicorn: statuses, error shape, tokens, idempotency, metrics, CORS, docs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import free_port
from server_util import ThreadServer, running, settings_for, sse_frames

ADMIN = "admin-secret"


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    settings = settings_for(free_port(), admin_token=ADMIN, max_body=4096, allowed_origins=["http://ui.example"])
    with running(settings) as srv:
        yield srv


@pytest.fixture
async def http(server: ThreadServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


async def new_session(http: httpx.AsyncClient, **body: Any) -> tuple[str, dict[str, str]]:
    response = await http.post("/v1/sessions", json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    return data["session"], {"Authorization": f"Bearer {data['token']}"}


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return str(body["error"]["code"])


async def records(http: httpx.AsyncClient, session: str, headers: dict[str, str], until: int) -> list[dict[str, Any]]:
    """Every record of a session up to seq ``until``, read over SSE."""
    out: list[dict[str, Any]] = []
    async with http.stream("GET", f"/v1/sessions/{session}/events", headers=headers) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: ") and '"seq"' in line:
                out.append(httpx.Response(200, content=line[6:]).json())
                if out[-1]["seq"] >= until:
                    break
    return out


async def wait_for_record(http: httpx.AsyncClient, session: str, headers: dict[str, str], kind: str) -> dict[str, Any]:
    """The first record of type ``kind`` (waits for it over SSE)."""
    async with asyncio.timeout(20):
        async with http.stream("GET", f"/v1/sessions/{session}/events", headers=headers) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: ") and f'"type":"{kind}"' in line:
                    return dict(httpx.Response(200, content=line[6:]).json())
    raise AssertionError(f"no {kind} record")


async def test_create_session_writes_session_created_first(http: httpx.AsyncClient) -> None:
    session, headers = await new_session(http, id="s_first", title="hello")
    assert session == "s_first"
    state = (await http.get(f"/v1/sessions/{session}", headers=headers)).json()
    assert state["session"] == session and state["seq"] == 1 == state["state"]["seq"]
    assert state["state"]["title"] == "hello"
    first = await records(http, session, headers, until=1)
    assert first[0]["type"] == "session.created" and first[0]["seq"] == 1
    assert error_code(await http.post("/v1/sessions", json={"id": "s_first"}), 409) == "session_exists"


async def test_error_statuses(http: httpx.AsyncClient) -> None:
    session, headers = await new_session(http)
    other, other_headers = await new_session(http)
    # 400: malformed JSON
    json_headers = {**headers, "Content-Type": "application/json"}
    bad = await http.post(f"/v1/sessions/{session}/turns", content=b'{"text": ', headers=json_headers)
    assert error_code(bad, 400) == "malformed_json"
    # 422: a missing or invalid field
    assert error_code(await http.post(f"/v1/sessions/{session}/turns", json={}, headers=headers), 422) == "invalid"
    assert error_code(await http.post(f"/v1/sessions/{session}/turns", json={"text": 5}, headers=headers), 422)
    decision = await http.post(f"/v1/sessions/{session}/approvals/a1", json={"decision": "maybe"}, headers=headers)
    assert error_code(decision, 422) == "invalid"
    assert error_code(await http.get(f"/v1/sessions/{session}/events?after=x", headers=headers), 400) == (
        "invalid_cursor"
    )
    # 401: missing or unknown token
    assert error_code(await http.get(f"/v1/sessions/{session}"), 401) == "unauthorized"
    forged = {"Authorization": "Bearer sw1.czE.nope"}
    assert error_code(await http.get(f"/v1/sessions/{session}", headers=forged), 401) == "unauthorized"
    assert error_code(await http.get(f"/v1/sessions/{session}?token=garbage"), 401) == "unauthorized"
    # 403: a valid token of another session
    assert error_code(await http.get(f"/v1/sessions/{session}", headers=other_headers), 403) == "forbidden"
    assert error_code(await http.post(f"/v1/sessions/{other}/turns", json={"text": "x"}, headers=headers), 403)
    # 404: unknown session (admin), turn, job, approval, route
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert error_code(await http.get("/v1/sessions/s_nobody", headers=admin), 404) == "session_not_found"
    assert error_code(await http.post(f"/v1/sessions/{session}/turns/t_x/cancel", headers=headers), 404)
    assert error_code(await http.post(f"/v1/sessions/{session}/jobs/j_x/cancel", headers=headers), 404)
    approve = await http.post(f"/v1/sessions/{session}/approvals/a_x", json={"decision": "approve"}, headers=headers)
    assert error_code(approve, 404)
    assert error_code(await http.get("/v1/nothing"), 404) == "not_found"
    # 413: body over the limit (4096 bytes in this server)
    big = await http.post(f"/v1/sessions/{session}/turns", json={"text": "x" * 5000}, headers=headers)
    assert error_code(big, 413) == "body_too_large"

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    streamed = await http.post(f"/v1/sessions/{session}/records", content=chunked(), headers=json_headers)
    assert error_code(streamed, 413) == "body_too_large"
    # 409: cursor ahead
    ahead = await http.get(f"/v1/sessions/{session}/events?after=99", headers=headers)
    assert error_code(ahead, 409) == "cursor_ahead"
    # 405 in the same shape, with Allow; also for a GET that the web UI's files used to answer 404
    wrong = await http.put("/v1/sessions")
    assert error_code(wrong, 405) == "method_not_allowed" and wrong.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    turns = await http.get(f"/v1/sessions/{session}/turns", headers=headers)
    assert error_code(turns, 405) == "method_not_allowed" and turns.headers["allow"] == "OPTIONS, POST"
    options = await http.options(f"/v1/sessions/{session}")
    assert options.status_code == 204 and options.headers["allow"] == "DELETE, GET, HEAD, OPTIONS"
    # none of it disturbed the sessions
    assert (await http.get(f"/v1/sessions/{session}", headers=headers)).json()["seq"] == 1
    assert (await http.get(f"/v1/sessions/{other}", headers=other_headers)).json()["seq"] == 1


async def test_approval_conflict_and_cancel(http: httpx.AsyncClient) -> None:
    session, headers = await new_session(http)
    sent = await http.post(f"/v1/sessions/{session}/turns", json={"text": "/approve deploy"}, headers=headers)
    assert sent.status_code == 202, sent.text
    requested = await wait_for_record(http, session, headers, "approval.requested")
    url = f"/v1/sessions/{session}/approvals/{requested['approval']}"
    first = await http.post(url, json={"decision": "approve", "by": "ops"}, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["decision"] == "approve"
    again = await http.post(url, json={"decision": "deny"}, headers=headers)
    assert error_code(again, 409)
    resolved = await wait_for_record(http, session, headers, "approval.resolved")
    assert resolved["approval"] == requested["approval"]
    assert resolved["decision"] == "approved" and resolved["by"] == "ops"


async def test_reject_policy_turn_conflict() -> None:
    settings = settings_for(free_port(), policy="reject", token_delay_ms=5.0)
    with running(settings) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=10) as http:
            session, headers = await new_session(http)
            first = await http.post(f"/v1/sessions/{session}/turns", json={"text": "/long 2000"}, headers=headers)
            assert first.status_code == 202
            second = await http.post(f"/v1/sessions/{session}/turns", json={"text": "hi"}, headers=headers)
            assert error_code(second, 409) == "turn_rejected"
            turn = first.json()["turn"]
            cancel = await http.post(f"/v1/sessions/{session}/turns/{turn}/cancel", headers=headers)
            assert cancel.status_code == 202, cancel.text
            cancelled = await wait_for_record(http, session, headers, "turn.cancelled")
            assert cancelled["turn"] == turn


async def test_publish_records_batch_is_all_or_nothing(http: httpx.AsyncClient) -> None:
    session, headers = await new_session(http)
    url = f"/v1/sessions/{session}/records"
    good = {"type": "status", "text": "working"}
    ok = await http.post(url, json={"events": [good, {"type": "error", "error": "boom"}]}, headers=headers)
    assert ok.status_code == 200 and ok.json()["seqs"] == [2, 3]
    bad = await http.post(url, json={"events": [good, {"type": "message.delta", "message": "m"}]}, headers=headers)
    assert error_code(bad, 422) == "invalid_event" and "event 1" in bad.json()["error"]["message"]
    unknown = await http.post(url, json=[good, {"type": "no.such.type"}], headers=headers)
    assert error_code(unknown, 422) == "invalid_event"
    assert error_code(await http.post(url, json={"events": []}, headers=headers), 422)
    assert (await http.get(f"/v1/sessions/{session}", headers=headers)).json()["seq"] == 3
    bare = await http.post(url, json=[good], headers=headers)
    assert bare.json()["seqs"] == [4]


CREATE_KEY = "create-1-0123456789abcdef0123456789"


async def test_idempotent_retries(http: httpx.AsyncClient, server: ThreadServer) -> None:
    session, headers = await new_session(http)
    keyed = {**headers, "Idempotency-Key": "k-1"}
    url = f"/v1/sessions/{session}/records"
    body = {"events": [{"type": "status", "text": "once"}]}
    first, second = await asyncio.gather(
        http.post(url, json=body, headers=keyed), http.post(url, json=body, headers=keyed)
    )
    third = await http.post(url, json=body, headers=keyed)
    assert first.json() == second.json() == third.json() == {"session": session, "seqs": [2]}
    assert third.headers["idempotent-replayed"] == "true"
    assert (await http.get(f"/v1/sessions/{session}", headers=headers)).json()["seq"] == 2
    reused = await http.post(url, json={"events": [{"type": "status", "text": "other"}]}, headers=keyed)
    assert error_code(reused, 409) == "idempotency_key_reused"
    # a turn retried with the same key starts once
    turn_url = f"/v1/sessions/{session}/turns"
    t1 = await http.post(turn_url, json={"text": "hi"}, headers={**headers, "Idempotency-Key": "turn-1"})
    t2 = await http.post(turn_url, json={"text": "hi"}, headers={**headers, "Idempotency-Key": "turn-1"})
    assert t1.status_code == t2.status_code == 202 and t1.json() == t2.json()
    await wait_for_record(http, session, headers, "turn.completed")
    state = (await http.get(f"/v1/sessions/{session}", headers=headers)).json()["state"]
    assert list(state["turns"]) == [t1.json()["turn"]]
    # session creation too, with a key long enough to be the secret that gets the token back
    assert error_code(await http.post("/v1/sessions", json={}, headers={"Idempotency-Key": "short"}), 422)
    c1 = await http.post("/v1/sessions", json={"title": "x"}, headers={"Idempotency-Key": CREATE_KEY})
    c2 = await http.post("/v1/sessions", json={"title": "x"}, headers={"Idempotency-Key": CREATE_KEY})
    assert c1.status_code == c2.status_code == 201 and c1.json() == c2.json()


async def test_rotate_token_and_admin_routes(http: httpx.AsyncClient) -> None:
    session, headers = await new_session(http, title="rotating")
    rotated = await http.post(f"/v1/sessions/{session}/token", headers=headers)
    assert rotated.status_code == 200
    new_headers = {"Authorization": f"Bearer {rotated.json()['token']}"}
    assert error_code(await http.get(f"/v1/sessions/{session}", headers=headers), 401) == "unauthorized"
    assert (await http.get(f"/v1/sessions/{session}", headers=new_headers)).status_code == 200
    # admin: list and delete; a session token can't
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert error_code(await http.get("/v1/sessions"), 401)
    assert error_code(await http.get("/v1/sessions", headers=new_headers), 403)
    listed = (await http.get("/v1/sessions", headers=admin)).json()["sessions"]
    mine = next(s for s in listed if s["id"] == session)
    assert mine["title"] == "rotating" and mine["last_seq"] == 1 and mine["last_active"] >= mine["created_at"]
    assert (await http.get(f"/v1/sessions/{session}", headers=admin)).status_code == 200
    assert error_code(await http.delete(f"/v1/sessions/{session}", headers=new_headers), 403)
    assert (await http.delete(f"/v1/sessions/{session}", headers=admin)).status_code == 204
    assert error_code(await http.get(f"/v1/sessions/{session}", headers=admin), 404)
    assert error_code(await http.delete(f"/v1/sessions/{session}", headers=admin), 404)


async def test_deleting_a_session_ends_its_work_first(http: httpx.AsyncClient, server: ThreadServer) -> None:
    session, headers = await new_session(http)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    sent = await http.post(f"/v1/sessions/{session}/turns", json={"text": "/long 100000"}, headers=headers)
    job = await http.post(
        f"/v1/sessions/{session}/jobs", json={"title": "t", "prompt": "/long 100000"}, headers=headers
    )
    assert sent.status_code == 202 and job.status_code == 202, (sent.text, job.text)
    await wait_for_record(http, session, headers, "message.delta")
    runtime = server.ctx.runtime
    turn, job_id = sent.json()["turn"], job.json()["job"]
    assert runtime.runs(session, turn) and runtime.runs(session, job_id)
    assert (await http.delete(f"/v1/sessions/{session}", headers=admin)).status_code == 204
    # Nothing of it runs on: a late write would bring the deleted session back (records without metadata).
    assert not runtime.runs(session, turn) and not runtime.runs(session, job_id)
    assert error_code(await http.get(f"/v1/sessions/{session}", headers=admin), 404)
    again = await http.post("/v1/sessions", json={"id": session})
    assert again.status_code == 201, again.text  # the id is free: nothing was written after the delete
    fresh = {"Authorization": f"Bearer {again.json()['token']}"}
    state = (await http.get(f"/v1/sessions/{session}", headers=fresh)).json()
    assert state["seq"] == 1 and state["state"]["turns"] == {} and state["state"]["jobs"] == {}


async def test_metrics_move(http: httpx.AsyncClient) -> None:
    def value(text: str, name: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} missing")

    before = (await http.get("/metrics")).text
    session, headers = await new_session(http)
    await http.post(
        f"/v1/sessions/{session}/records", json={"events": [{"type": "status", "text": "x"}]}, headers=headers
    )
    async with http.stream("GET", f"/v1/sessions/{session}/events", headers=headers) as stream:
        assert stream.status_code == 200
        seen = 0
        async for frame in sse_frames(stream):
            seen += frame.id is not None
            if seen == 2:  # both records came: the stream has caught up and joined its push group
                break
        during = (await http.get("/metrics")).text
    assert (
        value(during, "sessionwire_records_appended_total") >= value(before, "sessionwire_records_appended_total") + 2
    )
    assert value(during, "sessionwire_append_latency_seconds_count") > value(
        before, "sessionwire_append_latency_seconds_count"
    )
    assert value(during, "sessionwire_subscribers") >= 1
    assert value(during, 'sessionwire_streams_open{transport="sse"}') >= 1
    assert value(during, "sessionwire_sse_pushed") >= 1
    assert value(during, "sessionwire_sessions_open") >= 1
    assert "sessionwire_subscribers_lagging" in during


async def test_cors(http: httpx.AsyncClient) -> None:
    allowed = await http.options(
        "/v1/sessions",
        headers={"Origin": "http://ui.example", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.headers.get("access-control-allow-origin") == "http://ui.example"
    denied = await http.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in denied.headers


async def test_cross_site_requests_cannot_change_anything(http: httpx.AsyncClient, server: ThreadServer) -> None:
    session, headers = await new_session(http)
    turns = f"/v1/sessions/{session}/turns"
    evil = {"Origin": "http://evil.example"}
    # A foreign page's POST, JSON or not, changes nothing; nor does its DELETE.
    for path, extra in (("/v1/sessions", {}), (turns, headers)):
        refused = await http.post(path, json={"text": "x"}, headers={**extra, **evil})
        assert error_code(refused, 403) == "origin_not_allowed"
    deleted = await http.delete(f"/v1/sessions/{session}", headers={"Authorization": f"Bearer {ADMIN}", **evil})
    assert error_code(deleted, 403) == "origin_not_allowed"
    # A form or text/plain POST (no preflight in a browser) is not JSON: 415, whatever its origin.
    plain = {"Content-Type": "text/plain"}
    assert error_code(await http.post("/v1/sessions", content=b"{}", headers=plain), 415) == "unsupported_media_type"
    assert error_code(await http.post("/v1/sessions"), 415) == "unsupported_media_type"
    form = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    assert error_code(await http.post(turns, content=b"text=x", headers=form), 415) == "unsupported_media_type"
    # A token in the URL opens the event stream only (EventSource cannot send a header).
    token = headers["Authorization"].split()[1]
    assert error_code(await http.post(turns, json={"text": "x"}, params={"token": token}), 401) == "unauthorized"
    assert error_code(await http.get(f"/v1/sessions/{session}", params={"token": token}), 401) == "unauthorized"
    async with http.stream("GET", f"/v1/sessions/{session}/events", params={"token": token}) as stream:
        assert stream.status_code == 200
    # The server's own origin and an allowed one may; so may a client that sends no Origin.
    for origin in (server.url, "http://ui.example", "HTTP://127.0.0.1:" + server.url.rsplit(":", 1)[1]):
        created = await http.post("/v1/sessions", json={}, headers={"Origin": origin})
        assert created.status_code == 201, (origin, created.text)
    # Addressed by IP address (a published Docker port, an SSH forward): the Host names the server,
    # with the request's scheme; a domain in Host (DNS rebinding) does not.
    forwarded = {"Origin": "http://127.0.0.1:9999", "Host": "127.0.0.1:9999"}
    assert (await http.post("/v1/sessions", json={}, headers=forwarded)).status_code == 201
    for origin, host in (
        ("http://evil.example:9999", "evil.example:9999"),
        ("https://127.0.0.1:9999", "127.0.0.1:9999"),
    ):
        rebound = await http.post("/v1/sessions", json={}, headers={"Origin": origin, "Host": host})
        assert error_code(rebound, 403) == "origin_not_allowed"
    allowed = await http.post("/v1/sessions", json={}, headers={"Origin": "http://ui.example"})
    assert allowed.headers.get("access-control-allow-origin") == "http://ui.example"
    state = await http.get(f"/v1/sessions/{session}", headers=headers)
    assert state.json()["seq"] == 1 and state.json()["state"]["turns"] == {}  # nothing ran


@pytest.mark.parametrize(
    "origin, host",
    [
        ("http://evil.example:{port}", "evil.example:{port}"),  # DNS rebinding: the page's name resolves to us
        ("https://127.0.0.1:{port}", "127.0.0.1:{port}"),  # the right host and port, another scheme
        ("null", "127.0.0.1:{port}"),
    ],
)
async def test_a_websocket_from_a_foreign_origin_is_refused_whatever_its_host(
    server: ThreadServer, origin: str, host: str
) -> None:
    port = server.url.rsplit(":", 1)[1]
    request = (
        f"GET /v1/ws HTTP/1.1\r\nHost: {host.format(port=port)}\r\nOrigin: {origin.format(port=port)}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
    try:
        writer.write(request.encode())
        status = (await asyncio.wait_for(reader.readline(), 10)).decode()
    finally:
        writer.close()
    assert " 101 " not in status and " 403 " in status, status


async def test_docs_schema_health(http: httpx.AsyncClient, server: ThreadServer) -> None:
    assert (await http.get("/healthz")).json() == {"ok": True, "runtime": True}
    schema = (await http.get("/v1/schema")).json()
    assert "message.delta" in str(schema["$defs"])
    doc = (await http.get("/openapi.json")).json()
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    from starlette.routing import Mount, Route, WebSocketRoute

    for route in server.app.routes:
        if isinstance(route, Route) and route.path != "/":
            for method in route.methods or ():
                if method != "HEAD":
                    assert (route.path, method) in documented, route.path
        elif isinstance(route, WebSocketRoute):
            assert (route.path, "GET") in documented
        else:
            assert isinstance(route, (Mount, Route))
    page = await http.get("/")
    assert page.status_code == 200 and "make serve" in page.text


def test_static_ui_served_when_built(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<html><body>sessionwire ui</body></html>")
    with running(settings_for(free_port(), static_dir=str(tmp_path))) as srv:
        page = httpx.get(srv.url + "/")
        assert page.status_code == 200 and "sessionwire ui" in page.text
        assert httpx.get(srv.url + "/healthz").status_code == 200


def test_serve_with_the_openai_agent() -> None:
    """``agent=openai`` talks to an OpenAI-compatible API (a local fake that streams a scripted reply)."""
    import threading

    import uvicorn

    from test_runtime_openai import FakeLLM, text_chunks

    fake = FakeLLM()
    fake.scripts.append(text_chunks("Hello", " from", " the model"))
    llm = uvicorn.Server(uvicorn.Config(fake.app, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=llm.run, kwargs={"sockets": [fake.sock]}, daemon=True)
    thread.start()
    try:
        settings = settings_for(
            free_port(), agent="openai", model="fake-1", openai_base_url=fake.url, openai_api_key="k"
        )
        with running(settings) as srv:
            created = httpx.post(srv.url + "/v1/sessions", json={}).json()
            headers = {"Authorization": f"Bearer {created['token']}"}
            sent = httpx.post(f"{srv.url}/v1/sessions/{created['session']}/turns", json={"text": "hi"}, headers=headers)
            assert sent.status_code == 202
            url = f"{srv.url}/v1/sessions/{created['session']}/events"
            with httpx.stream("GET", url, headers=headers, timeout=20) as stream:
                for line in stream.iter_lines():
                    if (
                        line.startswith("data: ")
                        and '"type":"message.completed"' in line
                        and '"role":"assistant"' in line
                    ):
                        assert "Hello from the model" in line
                        break
        assert fake.requests[0]["model"] == "fake-1"
        assert fake.requests[0]["messages"][-1]["content"] == "hi"
    finally:
        llm.should_exit = True
        thread.join(timeout=10)
        fake.sock.close()
