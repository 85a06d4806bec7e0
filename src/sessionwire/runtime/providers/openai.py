"""``openai``: any OpenAI-compatible Chat Completions endpoint, streaming, with tool calls.

The conversation so far is built from the session's folded state (user and
assistant messages, tool calls and their results; job messages are left out),
after a configurable system prompt. Content inside ``<think>…</think>`` (also
split across chunks) and a ``reasoning_content`` field go to the reasoning lane.
When the model calls tools, they are run (with approval where needed) and the
results sent back, for up to ``max_tool_rounds`` rounds. The ``openai`` package
is imported only when the provider makes its client.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ...events import Usage
from ...state import MessageState, SessionState, TextPart, ToolPart
from .base import ProviderError, Reply
from .think import ThinkSplitter

if TYPE_CHECKING:
    from ..context import RunContext
    from ..messages import MessageStream, ToolCallStream

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer concisely. Use the tools you are given when they help; "
    "start a background job for long work."
)
DEFAULT_JOB_PROMPT = "You are a background worker. Do the task you are given and report the outcome."


@dataclass
class _PendingCall:
    id: str | None = None
    name: str = ""
    held: list[str] = field(default_factory=list)
    stream: ToolCallStream | None = None


class OpenAIProvider:
    """A provider for OpenAI-compatible Chat Completions endpoints.

    Args:
        model: The model name (default: ``$SESSIONWIRE_MODEL`` or ``$OPENAI_MODEL``).
        base_url: The API base URL (default: ``$OPENAI_BASE_URL``, else OpenAI's).
        api_key: The API key (default: ``$OPENAI_API_KEY``; a placeholder for local servers that need none).
        system_prompt: The system message put before the conversation.
        job_prompt: The system message of background jobs.
        max_tool_rounds: Model calls in one turn that may ask for tools before it fails.
        temperature: Sampling temperature, when set.
        timeout: Seconds for one request.
        max_retries: Retries of a request that failed before streaming.
    """

    name = "openai"

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        job_prompt: str = DEFAULT_JOB_PROMPT,
        max_tool_rounds: int = 8,
        temperature: float | None = None,
        timeout: float = 120.0,
        max_retries: int = 1,
    ) -> None:
        self.model = model or os.environ.get("SESSIONWIRE_MODEL") or os.environ.get("OPENAI_MODEL") or ""
        if not self.model:
            raise ValueError("the openai provider needs a model: pass model= or set SESSIONWIRE_MODEL")
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        self.system_prompt = system_prompt
        self.job_prompt = job_prompt
        self.max_tool_rounds = max_tool_rounds
        self.temperature = temperature
        self.timeout = timeout
        self.max_retries = max_retries
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The ``openai.AsyncOpenAI`` client, made on first use."""
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(
                base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=self.max_retries
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def __aenter__(self) -> OpenAIProvider:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ provider

    async def run_turn(self, ctx: RunContext) -> Reply:
        """Answer the conversation so far, running the tools the model calls."""
        messages = [{"role": "system", "content": self.system_prompt}, *conversation(await ctx.session_state())]
        reply, _ = await self._loop(ctx, messages)
        return reply

    async def run_job(self, ctx: RunContext) -> Reply:
        """Do the job's prompt as a one-off conversation, reporting progress in streamed characters."""
        messages = [
            {"role": "system", "content": self.job_prompt},
            {"role": "user", "content": f"{ctx.title}\n\n{ctx.text}" if ctx.title else ctx.text},
        ]
        reply, text = await self._loop(ctx, messages)
        summary = text if len(text) <= 200 else text[:199] + "…"
        return Reply(model=reply.model, usage=reply.usage, summary=summary or None)

    async def _loop(self, ctx: RunContext, messages: list[dict[str, Any]]) -> tuple[Reply, str]:
        import openai

        usage = Usage()
        model: str | None = None
        tools = ctx.tools.openai_tools()
        streamed = 0
        for _ in range(self.max_tool_rounds + 1):
            message = await ctx.message()
            calls: dict[int, _PendingCall] = {}
            splitter = ThinkSplitter()
            kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True}
            kwargs["stream_options"] = {"include_usage": True}
            if tools:
                kwargs["tools"] = tools
            if self.temperature is not None:
                kwargs["temperature"] = self.temperature
            try:
                stream = await self.client.chat.completions.create(**kwargs)
                async for chunk in stream:
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = Usage(
                            input_tokens=usage.input_tokens + (chunk.usage.prompt_tokens or 0),
                            output_tokens=usage.output_tokens + (chunk.usage.completion_tokens or 0),
                        )
                    for choice in chunk.choices:
                        count = await self._delta(message, splitter, calls, choice.delta)
                        if count:
                            streamed += count
                            await ctx.progress(streamed)
            except openai.APIError as exc:
                where = self.base_url or "the OpenAI API"
                raise ProviderError(f"{where} failed: {exc.message}", code="provider_error") from exc
            for lane, text in splitter.flush():
                await (message.reasoning if lane == "reasoning" else message.text)(text)
            pending = [c for _, c in sorted(calls.items())]
            for entry in pending:
                if entry.stream is None:  # a call whose name never came
                    entry.stream = await message.tool_call(entry.name or "unknown", call=entry.id)
                    for text in entry.held:
                        await entry.stream.args(text)
            done = [await c.stream.run() for c in pending if c.stream is not None]
            await message.complete()
            if not done:
                return Reply(model=model, usage=usage), message.text_so_far
            messages.append(_assistant(message.text_so_far, [(c.call, c.name, c.args_text) for c in done]))
            messages.extend(_tool_reply(c.call, c.status, c.result, c.error) for c in done)
        raise ProviderError(
            f"the model asked for tools {self.max_tool_rounds} times in a row; stopping", code="tool_loop"
        )

    async def _delta(
        self,
        message: MessageStream,
        splitter: ThinkSplitter,
        calls: dict[int, _PendingCall],
        delta: Any,
    ) -> int:
        streamed = 0
        extra = getattr(delta, "model_extra", None) or {}
        reasoning = extra.get("reasoning_content") or extra.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            await message.reasoning(reasoning)
            streamed += len(reasoning)
        if delta.content:
            for lane, text in splitter.feed(delta.content):
                await (message.reasoning if lane == "reasoning" else message.text)(text)
            streamed += len(delta.content)
        for tc in delta.tool_calls or ():
            entry = calls.setdefault(tc.index, _PendingCall())
            if tc.id and entry.id is None:
                entry.id = tc.id
            fn = tc.function
            if fn is not None and fn.name and entry.stream is None:
                entry.name += fn.name
            fragment = fn.arguments if fn is not None and fn.arguments else ""
            if entry.stream is None and entry.name and entry.id:
                entry.stream = await message.tool_call(entry.name, call=entry.id)
                for text in entry.held:
                    await entry.stream.args(text)
                entry.held = []
            if fragment:
                if entry.stream is None:
                    entry.held.append(fragment)
                else:
                    await entry.stream.args(fragment)
                streamed += len(fragment)
        return streamed


def conversation(state: SessionState) -> list[dict[str, Any]]:
    """The session's conversation in Chat Completions form: user, assistant and tool messages, in order.

    Job messages are left out; a tool call with no result gets an error reply so the history stays valid.
    """
    out: list[dict[str, Any]] = []
    for message_id in state.message_order:
        message = state.messages[message_id]
        if message.job is not None:
            continue
        out.extend(_chat_messages(message))
    return out


def _chat_messages(message: MessageState) -> list[dict[str, Any]]:
    text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
    if message.role != "assistant":
        return [{"role": message.role, "content": text}] if text else []
    calls = [p for p in message.parts if isinstance(p, ToolPart)]
    if not text and not calls:
        return []
    out = [_assistant(text, [(p.call, p.name, p.args) for p in calls])]
    out.extend(_tool_reply(p.call, p.status, p.result, p.error) for p in calls)
    return out


def _assistant(text: str, calls: list[tuple[str, str, str]]) -> dict[str, Any]:
    entry: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        entry["tool_calls"] = [
            {"id": call, "type": "function", "function": {"name": name, "arguments": args or "{}"}}
            for call, name, args in calls
        ]
    return entry


def _tool_reply(call: str, status: str, result: Any, error: str | None) -> dict[str, Any]:
    content = json.dumps(result) if status == "completed" else f"error: {error or status}"
    return {"role": "tool", "tool_call_id": call, "content": content}
