# ruff: noqa: F811 (the fixtures imported from cluster_util are parameters here)
"""AG-UI's own client against a real ``sessionwire serve``: ``@ag-ui/client``'s HttpAgent (its event
verification on) under Node (``tests/node/agui.mjs``, pinned in its lockfile)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cluster_util import Stream, auth, create, node_client, pair, policy, run_client, serving  # noqa: F401 (pair, policy: fixtures)
from server_util import ProcessServer

ADMIN = "agui-admin"
pytestmark = node_client("@ag-ui/client")


async def agent(server: ProcessServer, session: str, token: str, *args: str) -> dict[str, Any]:
    """Run one scenario of AG-UI's client; its messages, its runs and any warning it printed."""
    result = await run_client("agui", server, session, token, *args)
    assert result["warnings"] == [], result["warnings"]
    return result


async def turn_texts(client: httpx.AsyncClient, server: ProcessServer, session: str, token: str) -> list[str]:
    """Each turn's assistant text, as the log's folded state has it, in order."""
    state = (await client.get(f"{server.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
    texts: dict[str, str] = {}
    for message in (state["messages"][m] for m in state["message_order"]):
        if message["role"] == "assistant" and message["turn"]:
            text = "".join(p.get("text", "") for p in message["parts"] if p["kind"] == "text")
            texts[message["turn"]] = texts.get(message["turn"], "") + text
    return list(texts.values())


@pytest.fixture
def server(tmp_path: Path) -> Any:
    with serving(f"sqlite:///{tmp_path / 'wire.db'}", 1, "--admin-token", ADMIN) as (one,):
        yield one


async def test_every_kind_of_turn_comes_through_verified_runs_in_one_thread(server: ProcessServer) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, server)
        native = Stream(client, server, session, token)
        texts = ["/think about tea", '/tool add {"a": 2, "b": 3}', "/job 3 crunch", "hello there", "/fail"]
        result = await agent(server, session, token, "send", *texts)
        runs = result["runs"]
        assert len(runs) == 5 and all(r["events"][0] == "RUN_STARTED" for r in runs)
        assert [r["events"][-1] for r in runs] == ["RUN_FINISHED"] * 4 + ["RUN_ERROR"]
        assert [r.get("outcome", {}).get("outcome") for r in runs[:4]] == ["success"] * 4
        assert runs[4]["error"] == {
            "message": "the scripted provider was asked to fail (/fail)",
            "code": "scripted_failure",
        }
        assert "REASONING_MESSAGE_CONTENT" in runs[0]["events"] and "THINKING_START" not in runs[0]["events"]
        messages = result["messages"]
        reasoning = [m for m in messages if m["role"] == "reasoning"]
        assert [m["content"] for m in reasoning] == ["Thinking about about tea, step by step."]
        calls = [c for m in messages for c in (m.get("toolCalls") or [])]
        assert [(c["name"], json.loads(c["arguments"])) for c in calls][:1] == [("add", {"a": 2, "b": 3})]
        results = {m["toolCallId"]: m["content"] for m in messages if m["role"] == "tool"}
        assert results[calls[0]["id"]] == "5"
        job = runs[2]["custom"]
        assert {c["name"] for c in job} == {"sessionwire.job"} and job[0]["value"]["title"] == "crunch"
        assert job[0]["value"]["status"] == "running"
        # The same turns, read by a native subscriber: the same text, turn by turn.
        agui_texts: list[str] = []
        for message in messages:
            if message["role"] == "user":
                agui_texts.append("")
            elif message["role"] == "assistant" and isinstance(message.get("content"), str):
                agui_texts[-1] += message["content"]
        await native.wait_for(lambda r: r["type"] == "turn.failed")
        assert agui_texts == await turn_texts(client, server, session, token)
        users = [m["id"] for m in messages if m["role"] == "user"]
        started = [r["message"] for r in native.records if r["type"] == "message.started" and r["role"] == "user"]
        assert started == users  # the client's message ids are the log's


@pytest.mark.parametrize("answer", ["approve", "deny"])
async def test_an_interrupt_is_answered_with_resume_and_the_same_turn_goes_on(
    pair: tuple[ProcessServer, ProcessServer], answer: str
) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        result = await agent(b, session, token, "approve", "/approve launch", answer)
        first, second = result["runs"]
        interrupt = first["outcome"]["interrupts"][0]
        assert first["outcome"]["outcome"] == "interrupt" and interrupt["reason"] == "approval"
        assert interrupt["id"].startswith("a_") and interrupt["toolCallId"].startswith("c_")
        assert second["outcome"] == {"outcome": "success"}
        assistant = [m["content"] for m in result["messages"] if m["role"] == "assistant" and m.get("content")]
        expected = "Approved, so I did it: done: launch" if answer == "approve" else "Denied, so I did not launch."
        assert assistant == [expected]
        state = (await client.get(f"{a.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
        assert [t["status"] for t in state["turns"].values()] == ["completed"]
        assert state["approvals"][interrupt["id"]]["status"] == ("approved" if answer == "approve" else "denied")


async def test_a_turn_cancelled_through_the_native_api_finishes_the_run_cancelled(server: ProcessServer) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, server)
        result = await agent(server, session, token, "cancel", "/long 3000", "30")
        (run,) = result["runs"]
        assert run["outcome"] == {"outcome": "cancelled"} and run["events"][-1] == "RUN_FINISHED"
        text = next(m["content"] for m in result["messages"] if m["role"] == "assistant")
        assert [text] == await turn_texts(client, server, session, token)
        assert 30 <= len(text) < 5000


async def test_a_resume_naming_an_unknown_interrupt_answers_none(server: ProcessServer) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, server)
        base = f"{server.url}/v1/sessions/{session}"
        await client.post(f"{base}/turns", json={"text": "/approve launch"}, headers=auth(token))
        stream = Stream(client, server, session, token)
        approval = (await stream.wait_for(lambda r: r["type"] == "approval.requested"))["approval"]
        resume = [{"interruptId": approval, "status": "resolved", "payload": {"decision": "approve"}}]
        resume.append({"interruptId": "a_nope", "status": "resolved"})
        body = {"threadId": session, "runId": "r2", "messages": [], "resume": resume}
        answer = await client.post(f"{server.url}/v1/agui", json=body, headers=auth(token))
        assert answer.status_code == 404
        state = (await client.get(base, headers=auth(token))).json()["state"]
        assert state["approvals"][approval]["status"] == "pending"  # nothing answered


async def test_bad_runs_get_an_error_and_no_stream(server: ProcessServer) -> None:
    url = f"{server.url}/v1/agui"
    body = {"threadId": "", "runId": "r1", "messages": [{"id": "u1", "role": "user", "content": "hi"}], "tools": []}
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, server)
        _, other_token = await create(client, server)
        cases = [
            ({**body, "threadId": "s_nope"}, auth(ADMIN), 404),
            ({**body, "threadId": session}, {}, 401),
            ({**body, "threadId": session}, auth("sw1.wrong.token"), 401),
            ({**body, "threadId": session}, auth(other_token), 403),
            ({"threadId": session}, auth(token), 422),
            ({**body, "threadId": session, "messages": "hi"}, auth(token), 422),
            ({**body, "threadId": session, "messages": [{"role": "assistant", "content": "x"}]}, auth(token), 422),
            (
                {**body, "threadId": session, "resume": [{"interruptId": "a_nope", "status": "resolved"}]},
                auth(token),
                404,
            ),
            ({**body, "threadId": session, "messages": [{"id": "u2", "role": "user", "content": 5}]}, auth(token), 422),
            (
                {**body, "threadId": session, "messages": [{"id": "u" * 201, "role": "user", "content": "x"}]},
                auth(token),
                422,
            ),
        ]
        for payload, headers, status in cases:
            answer = await client.post(url, json=payload, headers=headers)
            assert answer.status_code == status, (payload, answer.text)
            assert answer.headers["content-type"].startswith("application/json") and "error" in answer.json()
        headers = {**auth(token), "content-type": "application/json"}
        assert (await client.post(url, content=b"{", headers=headers)).status_code == 400
        plain = {**auth(token), "content-type": "text/plain"}
        assert (
            await client.post(url, content=json.dumps({**body, "threadId": session}), headers=plain)
        ).status_code == 415
        foreign = {**auth(token), "origin": "http://evil.example"}
        assert (await client.post(url, json={**body, "threadId": session}, headers=foreign)).status_code == 403
        options = await client.options(url)
        assert options.status_code == 204 and "POST" in options.headers["allow"]
        state = (await client.get(f"{server.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
        assert state["turns"] == {}
