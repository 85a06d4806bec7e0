"""The openai provider against a real local HTTP server speaking the Chat Completions streaming format."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from runtime_util import ends, records_until
from sessionwire import Hub
from sessionwire.channel import Session
from sessionwire.runtime import OpenAIProvider, Runtime
from sessionwire.runtime.providers.openai import conversation
from sessionwire.runtime.providers.think import ThinkSplitter
from sessionwire.state import ReasoningPart, TextPart, ToolPart

DROP = "drop the connection"


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """One ``chat.completion.chunk``."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake-1",
        "choices": choices,
        **extra,
    }


def text_chunks(*pieces: str) -> list[Any]:
    return [chunk({"role": "assistant", "content": ""}), *(chunk({"content": p}) for p in pieces), chunk({}, "stop")]


def tool_chunks(call: str, name: str, *fragments: str) -> list[Any]:
    first = {"tool_calls": [{"index": 0, "id": call, "type": "function", "function": {"name": name, "arguments": ""}}]}
    rest = [chunk({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}) for f in fragments]
    return [chunk({"role": "assistant", "content": None, **first}), *rest, chunk({}, "tool_calls")]


class FakeLLM:
    """A scripted Chat Completions server: each request streams the next script and is recorded."""

    def __init__(self) -> None:
        self.scripts: list[list[Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.completions, methods=["POST"])])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)  # connections wait in the backlog until the server accepts them
        self.port = self.sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def completions(self, request: Request) -> Response:
        self.requests.append(await request.json())
        if not self.scripts:
            return JSONResponse({"error": {"message": "no script left", "type": "test"}}, status_code=400)
        script = self.scripts.pop(0)

        async def stream() -> AsyncIterator[bytes]:
            for item in script:
                if item == DROP:
                    raise ConnectionAbortedError("the test server drops the connection")
                yield f"data: {json.dumps(item)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    fake = FakeLLM()
    config = uvicorn.Config(fake.app, log_level="critical", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[fake.sock]))
    try:
        yield fake
    finally:
        server.should_exit = True
        await task
        fake.sock.close()


@pytest.fixture
async def provider(llm: FakeLLM) -> AsyncIterator[OpenAIProvider]:
    async with OpenAIProvider(model="fake-1", base_url=llm.url, api_key="k", system_prompt="Be brief.") as opened:
        yield opened


async def turn(runtime: Runtime, session: Session, text: str) -> tuple[str, list[Any]]:
    d = await runtime.dispatch(session.id, text)
    return d.turn or "", await records_until(session, d.after, ends("turn", d.turn or ""))


async def test_streams_text_and_splits_think_tags_across_chunks(
    hub: Hub, session: Session, llm: FakeLLM, provider: OpenAIProvider
) -> None:
    usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    llm.scripts.append(
        [
            *text_chunks("<thi", "nk>pondering", " deeply</th", "ink>The answer", " is 42.", "<"),
            chunk(None, usage=usage),
        ]
    )
    async with Runtime(hub, provider, coalesce_ms=0) as runtime:
        turn_id, records = await turn(runtime, session, "what is it?")
    assert records[-1].type == "turn.completed"
    assert records[-1].event.model == "fake-1"
    assert (records[-1].event.usage.input_tokens, records[-1].event.usage.output_tokens) == (11, 7)
    state = await session.state()
    answer = state.messages[state.turns[turn_id].messages[1]]
    assert answer.parts == [ReasoningPart(text="pondering deeply"), TextPart(text="The answer is 42.<")]
    request = llm.requests[0]
    assert request["model"] == "fake-1" and request["stream"] is True
    assert request["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "what is it?"},
    ]
    assert {t["function"]["name"] for t in request["tools"]} == {"echo", "add", "start_job", "perform"}


async def test_reasoning_content_field_goes_to_the_reasoning_lane(
    hub: Hub, session: Session, llm: FakeLLM, provider: OpenAIProvider
) -> None:
    llm.scripts.append([chunk({"reasoning_content": "hmm"}), *text_chunks("ok")])
    async with Runtime(hub, provider) as runtime:
        turn_id, _ = await turn(runtime, session, "hi")
    state = await session.state()
    assert state.messages[state.turns[turn_id].messages[1]].parts == [ReasoningPart(text="hmm"), TextPart(text="ok")]


async def test_tool_calls_run_and_the_conversation_is_built_from_the_folded_state(
    hub: Hub, session: Session, llm: FakeLLM, provider: OpenAIProvider
) -> None:
    llm.scripts.append(tool_chunks("call_1", "add", '{"a"', ": 2, ", '"b": 3}'))
    llm.scripts.append(text_chunks("2 + 3 = ", "5"))
    llm.scripts.append(text_chunks("You're welcome."))
    async with Runtime(hub, provider, coalesce_ms=0) as runtime:
        first, records = await turn(runtime, session, "add 2 and 3")
        tool = [r for r in records if r.type.startswith("tool.")]
        assert [r.type for r in tool] == ["tool.started", *["tool.args.delta"] * 3, "tool.called", "tool.result"]
        assert tool[0].event.call == "call_1" and tool[-1].event.result == 5
        second, _ = await turn(runtime, session, "thanks")
    state = await session.state()
    call_message, answer = (state.messages[m] for m in state.turns[first].messages[1:])
    assert call_message.parts == [
        ToolPart(call="call_1", name="add", args='{"a": 2, "b": 3}', status="completed", result=5)
    ]
    assert answer.parts == [TextPart(text="2 + 3 = 5")]
    assistant_call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}
        ],
    }
    tool_reply = {"role": "tool", "tool_call_id": "call_1", "content": "5"}
    assert llm.requests[1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "add 2 and 3"},
        assistant_call,
        tool_reply,
    ]
    assert llm.requests[2]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "add 2 and 3"},
        assistant_call,
        tool_reply,
        {"role": "assistant", "content": "2 + 3 = 5"},
        {"role": "user", "content": "thanks"},
    ]
    assert state.turns[second].status == "completed"


async def test_a_tool_needing_approval_waits_for_it(
    hub: Hub, session: Session, llm: FakeLLM, provider: OpenAIProvider
) -> None:
    llm.scripts.append(tool_chunks("call_9", "perform", '{"action": "deploy"}'))
    llm.scripts.append(text_chunks("Deployed."))
    async with Runtime(hub, provider) as runtime:
        d = await runtime.dispatch(session.id, "deploy please")
        asked = (await records_until(session, d.after, lambda r: r.type == "approval.requested"))[-1]
        assert asked.event.action == "deploy" and asked.event.call == "call_9"
        await runtime.resolve_approval(session.id, asked.event.approval, "approve", by="ops")
        records = await records_until(session, d.after, ends("turn", d.turn or ""))
    assert records[-1].type == "turn.completed"
    assert json.loads(llm.requests[1]["messages"][-1]["content"]) == "done: deploy"


@pytest.mark.parametrize(
    ("failure", "expected"),
    [({"error": {"message": "upstream overloaded", "type": "server_error"}}, "upstream overloaded"), (DROP, "")],
)
async def test_a_mid_stream_error_fails_the_turn_and_keeps_the_partial_text(
    hub: Hub, session: Session, llm: FakeLLM, provider: OpenAIProvider, failure: Any, expected: str
) -> None:
    llm.scripts.append([chunk({"role": "assistant", "content": "Partial "}), chunk({"content": "answ"}), failure])
    async with Runtime(hub, provider) as runtime:
        turn_id, records = await turn(runtime, session, "go")
    assert records[-1].type == "turn.failed"
    assert records[-1].event.code == "provider_error" and expected in records[-1].event.error
    assert llm.url in records[-1].event.error
    assert records[-2].type == "message.completed"
    state = await session.state()
    assert state.messages[state.turns[turn_id].messages[1]].parts == [TextPart(text="Partial answ")]


async def test_an_http_error_before_streaming_fails_the_turn(
    hub: Hub, session: Session, llm: FakeLLM, provider: OpenAIProvider
) -> None:
    async with Runtime(hub, provider) as runtime:
        _, records = await turn(runtime, session, "nobody scripted this")
    assert records[-1].type == "turn.failed" and "no script left" in records[-1].event.error


async def test_a_job_runs_its_prompt_with_progress(
    hub: Hub, session: Session, llm: FakeLLM, provider: OpenAIProvider
) -> None:
    llm.scripts.append(text_chunks("Report: ", "all ", "good."))
    async with Runtime(hub, provider, progress_ms=0, coalesce_ms=0) as runtime:
        d = await runtime.start_job(session.id, "weekly report", "summarize")
        records = await records_until(session, d.after, ends("job", d.job or ""))
    assert records[-1].type == "job.completed" and records[-1].event.summary == "Report: all good."
    assert [r.event.done for r in records if r.type == "job.progress"][-1] == len("Report: all good.")
    assert llm.requests[0]["messages"][1] == {"role": "user", "content": "weekly report\n\nsummarize"}


def test_settings_come_from_arguments_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SESSIONWIRE_MODEL", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    with pytest.raises(ValueError, match="model"):
        OpenAIProvider()
    monkeypatch.setenv("SESSIONWIRE_MODEL", "m-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    provider = OpenAIProvider()
    assert (provider.model, provider.base_url) == ("m-env", "http://127.0.0.1:9/v1")


def test_conversation_skips_job_messages_and_answers_unfinished_calls() -> None:
    from sessionwire.state import MessageState, SessionState

    state = SessionState(
        messages={
            "u": MessageState(id="u", role="user", parts=[TextPart(text="hi")]),
            "j": MessageState(id="j", role="assistant", job="j_1", parts=[TextPart(text="job output")]),
            "a": MessageState(
                id="a", role="assistant", parts=[ToolPart(call="c", name="echo", status="failed", error="x")]
            ),
        },
        message_order=["u", "j", "a"],
    )
    assert conversation(state) == [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "echo", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c", "content": "error: x"},
    ]


PIECES = st.lists(st.sampled_from(["<think>", "</think>", "a", "b c", "<", ">", "/", "think", "<th"]), max_size=20)


@settings(max_examples=200, deadline=None)
@given(pieces=PIECES, cuts=st.lists(st.integers(0, 200), max_size=8))
def test_think_splitting_does_not_depend_on_where_chunks_break(pieces: list[str], cuts: list[int]) -> None:
    text = "".join(pieces)
    whole = ThinkSplitter()
    expected = whole.feed(text) + whole.flush()
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    split = ThinkSplitter()
    got = [piece for a, b in itertools.pairwise(bounds) for piece in split.feed(text[a:b])] + split.flush()

    def merged(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for lane, t in items:
            if out and out[-1][0] == lane:
                out[-1] = (lane, out[-1][1] + t)
            elif t:
                out.append((lane, t))
        return out

    assert merged(got) == merged(expected) == merged(_reference(text))


def _reference(text: str) -> list[tuple[str, str]]:
    """The lanes by a plain scan of the whole text: reasoning exactly between the tags."""
    out: list[tuple[str, str]] = []
    inside = False
    while True:
        tag = "</think>" if inside else "<think>"
        at = text.find(tag)
        if at < 0:
            return [*out, ("reasoning" if inside else "text", text)]
        out.append(("reasoning" if inside else "text", text[:at]))
        text, inside = text[at + len(tag) :], not inside
