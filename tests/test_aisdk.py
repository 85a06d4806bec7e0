# ruff: noqa: F811 (the fixtures imported from cluster_util are parameters here)
"""The Vercel AI SDK's own chat client against a real ``sessionwire serve``: ``ai``'s AbstractChat
over DefaultChatTransport, under Node (``tests/node/aisdk.mjs``, pinned in its lockfile)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cluster_util import ADMIN as PAIR_ADMIN
from cluster_util import Stream, auth, create, node_client, pair, policy, run_client, serving, typed  # noqa: F401 (pair, policy: fixtures)
from conftest import free_port
from server_util import ProcessServer

ADMIN = "aisdk-admin"
pytestmark = node_client("ai")


async def chat(server: ProcessServer, session: str, token: str, *args: str) -> dict[str, Any]:
    """Run one scenario of the AI SDK's client; what its chat holds afterwards."""
    return await run_client("aisdk", server, session, token, *args)


def assistant(result: dict[str, Any]) -> dict[str, Any]:
    return dict(next(m for m in reversed(result["messages"]) if m["role"] == "assistant"))


async def log_text(client: httpx.AsyncClient, server: ProcessServer, session: str, token: str, turn: str) -> str:
    """The text of a turn's assistant messages, as the log's folded state has it."""
    state = (await client.get(f"{server.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
    return "".join(
        part.get("text", "")
        for message in (state["messages"][m] for m in state["message_order"])
        if message["turn"] == turn and message["role"] == "assistant"
        for part in message["parts"]
        if part["kind"] == "text"
    )


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Any:
    with serving(f"sqlite:///{tmp_path / 'wire.db'}", 1, "--admin-token", ADMIN) as (server,):
        yield server


async def test_every_kind_of_turn_comes_through_as_the_sdk_renders_it(sqlite_server: ProcessServer) -> None:
    server = sqlite_server
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, server)
        native = Stream(client, server, session, token)
        texts = ["/think about tea", '/tool add {"a": 2, "b": 3}', "/job 3 crunch", "/fail"]
        result = await chat(server, session, token, "send", *texts)
        users = [m for m in result["messages"] if m["role"] == "user"]
        answers = [m for m in result["messages"] if m["role"] == "assistant"]
        assert [m["text"] for m in users] == texts and len(answers) == 4
        think, tool, job, fail = answers
        assert [p["type"] for p in think["parts"]] == ["step-start", "reasoning", "text"]
        assert think["text"] == "My answer about about tea: it is about tea."
        called = next(p for p in tool["parts"] if p["type"] == "tool-add")
        assert (called["state"], called["input"], called["output"]) == ("output-available", {"a": 2, "b": 3}, 5)
        assert tool["text"] == "add returned 5"
        data = next(p for p in job["parts"] if p["type"] == "data-job")
        assert data["id"].startswith("j_") and data["data"]["title"] == "crunch"
        assert result["status"] == "error" and result["errors"] == ["the scripted provider was asked to fail (/fail)"]
        assert fail["text"] == "This turn is about to fail."
        # The same turns, read by a native subscriber meanwhile: the same text, the user's message ids kept.
        for message in answers:
            await native.wait_for(
                lambda r, t=message["id"]: (
                    r["type"].startswith("turn.") and r.get("turn") == t and r["type"] != "turn.started"
                )
            )
            assert await log_text(client, server, session, token, message["id"]) == message["text"]
        started = [r for r in native.records if r["type"] == "message.started" and r["role"] == "user"]
        assert [r["message"] for r in started] == [m["id"] for m in users]


@pytest.mark.parametrize("answer", ["approve", "deny"])
async def test_an_approval_is_answered_through_the_sdk_and_the_same_turn_goes_on(
    sqlite_server: ProcessServer, answer: str
) -> None:
    server = sqlite_server
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, server)
        result = await chat(server, session, token, "approve", "/approve launch", answer)
        message = assistant(result)
        assert result["before"]["id"] == message["id"]  # the answer's stream continued the same message
        assert any(p.get("state") == "approval-requested" for p in result["before"]["parts"])
        tool = next(p for p in message["parts"] if p["type"] == "tool-perform")
        if answer == "approve":
            assert tool["state"] == "output-available" and tool["output"] == "done: launch"
            assert message["text"] == "Approved, so I did it: done: launch"
        else:
            assert tool["state"] == "output-denied"
            assert message["text"] == "Denied, so I did not launch."
        state = (await client.get(f"{server.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
        assert [t["status"] for t in state["turns"].values()] == ["completed"]  # one turn, nothing dispatched twice
        assert [a["status"] for a in state["approvals"].values()] == ["approved" if answer == "approve" else "denied"]


async def test_resume_replays_a_turn_started_through_the_sdk_from_its_beginning(sqlite_server: ProcessServer) -> None:
    server = sqlite_server
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, server)
        stopped = await chat(server, session, token, "stop", "/long 400", "40")
        cut = assistant(stopped)
        assert 40 <= len(cut["text"]) < len("".join(f" w{i}" for i in range(1, 401)))
        resumed = await chat(server, session, token, "resume")  # a reloaded page
        whole = assistant(resumed)
        assert whole["id"] == cut["id"] and whole["text"].startswith(cut["text"][:40])
        assert whole["text"] == " ".join(f"w{i}" for i in range(1, 401))
        assert whole["text"] == await log_text(client, server, session, token, whole["id"])
        # Nothing runs now: 204, and the client is ready with nothing new.
        idle = await chat(server, session, token, "resume")
        assert idle["messages"] == [] and idle["status"] == "ready"


async def test_resume_follows_a_turn_started_through_the_native_api_on_another_process(
    pair: tuple[ProcessServer, ProcessServer],
) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        sent = await client.post(
            f"{a.url}/v1/sessions/{session}/turns", json={"text": "/long 300"}, headers=auth(token)
        )
        turn = sent.json()["turn"]
        await Stream(client, a, session, token).wait_for(typed("message.delta", turn=turn))
        result = await chat(b, session, token, "resume")
        message = assistant(result)
        assert message["id"] == turn and message["text"] == " ".join(f"w{i}" for i in range(1, 301))
        assert message["text"] == await log_text(client, a, session, token, turn)


async def test_a_turn_cancelled_through_the_native_api_ends_the_sdk_stream_with_abort(
    sqlite_server: ProcessServer,
) -> None:
    server = sqlite_server
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, server)
        result = await chat(server, session, token, "cancel", "/long 3000", "30")
        message = assistant(result)
        assert result["cancel"] == 202 and result["status"] == "ready" and not result["errors"]
        assert 30 <= len(message["text"]) < 5000
        state = (await client.get(f"{server.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
        assert state["turns"][message["id"]]["status"] == "cancelled"
        assert message["text"] == await log_text(client, server, session, token, message["id"])


async def test_regenerate_sends_the_last_user_text_again_as_a_new_turn(sqlite_server: ProcessServer) -> None:
    server = sqlite_server
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, server)
        result = await chat(server, session, token, "regenerate", "/think again")
        again = assistant(result)
        assert [m["role"] for m in result["messages"]] == ["user", "assistant"]
        assert again["id"] != result["first"]["id"] and again["text"] == result["first"]["text"]
        state = (await client.get(f"{server.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
        assert sorted(state["turns"]) == sorted([again["id"], result["first"]["id"]])
        assert all(t["status"] == "completed" for t in state["turns"].values())


async def test_the_same_message_sent_twice_at_once_runs_one_turn(sqlite_server: ProcessServer) -> None:
    server = sqlite_server
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, server)
        body = {
            "id": session,
            "messages": [{"id": "u_once", "role": "user", "parts": [{"type": "text", "text": "/long 30"}]}],
        }

        async def post() -> list[dict[str, Any]]:
            async with client.stream("POST", f"{server.url}/v1/aisdk/chat", json=body, headers=auth(token)) as answer:
                assert answer.status_code == 200 and answer.headers["x-vercel-ai-ui-message-stream"] == "v1"
                lines = [line[6:] async for line in answer.aiter_lines() if line.startswith("data: ")]
            assert lines[-1] == "[DONE]"
            return [json.loads(line) for line in lines[:-1]]

        # Behind a running turn, the message's turn is queued: nothing of it is in the log yet.
        base = f"{server.url}/v1/sessions/{session}"
        running = (await client.post(f"{base}/turns", json={"text": "/long 100000"}, headers=auth(token))).json()
        both = asyncio.gather(post(), post())
        await asyncio.sleep(0.3)
        await client.post(f"{base}/turns/{running['turn']}/cancel", headers=auth(token))
        first, second = await both
        later = await post()
        assert first == second == later  # a retry, at once or later, streams the same turn again
        assert first[0]["type"] == "start" and first[-1] == {"type": "finish", "finishReason": "stop"}
        state = (await client.get(base, headers=auth(token))).json()["state"]
        assert sorted(state["turns"]) == sorted([running["turn"], first[0]["messageId"]])


async def sse_lines(response: httpx.Response) -> list[str]:
    return [line[6:] async for line in response.aiter_lines() if line.startswith("data: ")]


async def test_a_rotated_token_and_a_stopping_server_end_the_stream_with_an_error(tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'w.db'}", 1) as (server,):
        async with httpx.AsyncClient(timeout=30) as client:
            session, token = await create(client, server)
            message = {"role": "user", "parts": [{"type": "text", "text": "/long 100000"}]}
            url, body = f"{server.url}/v1/aisdk/chat", {"id": session, "messages": [{**message, "id": "u1"}]}
            async with client.stream("POST", url, json=body, headers=auth(token)) as answer:
                lines = answer.aiter_lines()
                assert (await anext(lines)).startswith("data: {")
                rotated = await client.post(f"{server.url}/v1/sessions/{session}/token", headers=auth(token))
                token = rotated.json()["token"]
                async with asyncio.timeout(5):
                    rest = [line async for line in lines if line.startswith("data: ")]
            assert json.loads(rest[-2][6:])["type"] == "error" and rest[-1] == "data: [DONE]"
            # The turn goes on; a server that stops tells the client, which can resume elsewhere.
            resumed = client.stream("GET", f"{url}/{session}/stream", headers=auth(token))
            async with resumed as answer:
                lines = answer.aiter_lines()
                assert (await anext(lines)).startswith("data: {")
                assert server.process is not None
                server.process.terminate()
                async with asyncio.timeout(10):
                    rest = [line async for line in lines if line.startswith("data: ")]
            assert json.loads(rest[-2][6:])["type"] == "error" and rest[-1] == "data: [DONE]"


async def test_the_same_message_on_two_processes_at_once_runs_one_turn(
    pair: tuple[ProcessServer, ProcessServer],
) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        text = {"type": "text", "text": "/long 20"}
        body = {"id": session, "messages": [{"id": "u_both", "role": "user", "parts": [text]}]}

        async def post(server: ProcessServer) -> list[str]:
            async with asyncio.timeout(20):
                async with client.stream("POST", f"{server.url}/v1/aisdk/chat", json=body, headers=auth(token)) as r:
                    assert r.status_code == 200, await r.aread()
                    return await sse_lines(r)

        on_a, on_b = await asyncio.gather(post(a), post(b))
        assert on_a == on_b and on_a[-1] == "[DONE]"
        state = (await client.get(f"{a.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
        assert list(state["turns"]) == [json.loads(on_a[0])["messageId"]]
        # Deleted and created again, the session runs the same message id anew.
        assert (await client.delete(f"{a.url}/v1/sessions/{session}", headers=auth(PAIR_ADMIN))).status_code == 204
        created = await client.post(f"{a.url}/v1/sessions", json={"id": session})
        token = created.json()["token"]
        again = await post(b)
        assert again[-1] == "[DONE]" and json.loads(again[0])["messageId"] != json.loads(on_a[0])["messageId"]
        state = (await client.get(f"{a.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
        # An id that names another kind of message (the assistant's) is not a user's: 409.
        answer_id = next(m for m in state["messages"].values() if m["role"] == "assistant")["id"]
        taken = {"id": session, "messages": [{"id": answer_id, "role": "user", "parts": [text]}]}
        refused = await client.post(f"{a.url}/v1/aisdk/chat", json=taken, headers=auth(token))
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "message_exists"


async def test_bad_requests_get_an_error_and_no_stream(sqlite_server: ProcessServer) -> None:
    server = sqlite_server
    url = f"{server.url}/v1/aisdk/chat"
    body = {"id": "", "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, server)
        other, other_token = await create(client, server)
        cases = [
            ({**body, "id": "s_nope"}, auth(ADMIN), 404),
            ({**body, "id": "s_nope"}, auth(token), 403),  # a session's token says nothing of other sessions
            ({**body, "id": session}, {}, 401),
            ({**body, "id": session}, auth("sw1.wrong.token"), 401),
            ({**body, "id": session}, auth(other_token), 403),
            ({"id": session}, auth(token), 422),
            ({**body, "id": session, "messages": [{"role": "assistant", "parts": []}]}, auth(token), 422),
            ({**body, "id": session, "messages": [{"id": "u2", "role": "user", "parts": []}]}, auth(token), 422),
            ({**body, "id": session, "messages": [{"id": "u3", "role": "user", "parts": "hi"}]}, auth(token), 422),
            ({**body, "id": session, "messages": ["hi"]}, auth(token), 422),
            ({**body, "id": session, "messages": [{"role": "assistant", "parts": ["x", 5, None]}]}, auth(token), 422),
            ({**body, "id": session, "messages": [{"role": "assistant", "parts": "xyz"}]}, auth(token), 422),
            ({**body, "id": session, "messages": []}, auth(token), 422),
            ({**body, "id": session, "messages": [{**body["messages"][0], "id": "u" * 201}]}, auth(token), 422),
        ]
        for payload, headers, status in cases:
            answer = await client.post(url, json=payload, headers=headers)
            assert answer.status_code == status, (payload, answer.text)
            assert answer.headers["content-type"].startswith("application/json") and "error" in answer.json()
        malformed = await client.post(url, content=b"{", headers={**auth(token), "content-type": "application/json"})
        assert malformed.status_code == 400
        plain = await client.post(
            url, content=json.dumps({**body, "id": session}), headers={**auth(token), "content-type": "text/plain"}
        )
        assert plain.status_code == 415
        foreign = await client.post(
            url, json={**body, "id": session}, headers={**auth(token), "origin": "http://evil.example"}
        )
        assert foreign.status_code == 403
        options = await client.options(url)
        assert options.status_code == 204 and "POST" in options.headers["allow"]
        for path, status in ((f"/v1/aisdk/chat/{session}/stream", 401), ("/v1/aisdk/chat/s_nope/stream", 401)):
            assert (await client.get(server.url + path)).status_code == status
        assert (await client.get(f"{server.url}/v1/aisdk/chat/s_nope/stream", headers=auth(ADMIN))).status_code == 404
        assert (
            await client.get(f"{server.url}/v1/aisdk/chat/{session}/stream", headers=auth(token))
        ).status_code == 204
        state = (await client.get(f"{server.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
        assert state["turns"] == {} and other


def test_a_translation_that_fails_is_logged_and_ends_the_stream_with_an_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from server_util import running, settings_for
    from sessionwire.server import aisdk

    def broken(self: aisdk.UIMessageChunks, record: Any) -> list[bytes]:
        raise RuntimeError("a translator bug")

    monkeypatch.setattr(aisdk.UIMessageChunks, "feed", broken)
    with running(settings_for(free_port())) as server:
        created = httpx.post(server.url + "/v1/sessions", json={}).json()
        hi = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
        body = {"id": created["session"], "messages": [hi]}
        with httpx.stream("POST", server.url + "/v1/aisdk/chat", json=body, headers=auth(created["token"])) as answer:
            lines = [line[6:] for line in answer.iter_lines() if line.startswith("data: ")]
    assert json.loads(lines[-2]) == {"type": "error", "errorText": "the stream failed: resume to follow it"}
    assert lines[-1] == "[DONE]"
    assert "a translator bug" in caplog.text
