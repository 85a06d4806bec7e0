"""Streaming one message: its text, reasoning and tool-call parts, then its authoritative final.

A provider gets a :class:`MessageStream` from its context, streams fragments into
it and completes it. The stream keeps the full body as it goes, so
``message.completed`` always carries every part in full, also when the work is
cancelled or fails half way (see :meth:`MessageStream.complete`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Union

import msgspec

from .. import events as ev
from ..errors import NotFound
from ..events import Role
from .approvals import Approvals
from .coalesce import Writer
from .tools import ToolError, ToolRegistry

StartJob = Callable[[str, str], Awaitable[str]]
"""``start_job(title, prompt) -> job id``, bound to a session and the work that starts it."""


class _TextPart:
    __slots__ = ("chunks", "kind")

    def __init__(self, kind: Literal["text", "reasoning"]) -> None:
        self.kind = kind
        self.chunks: list[str] = []

    def final(self) -> ev.Part:
        text = "".join(self.chunks)
        return ev.ReasoningPart(text=text) if self.kind == "reasoning" else ev.TextPart(text=text)


class ToolCallStream:
    """One tool call inside a message: stream its arguments, then :meth:`run` it.

    Attributes:
        call: The call's id.
        name: The tool's name.
        status: streaming, called, completed, failed or denied.
        result: The tool's result once completed.
        error: What went wrong, when failed or denied.
        decision: The approval's decision, when the tool needed one.
    """

    def __init__(self, message: MessageStream, part: int, call: str, name: str) -> None:
        self.message = message
        self.part = part
        self.call = call
        self.name = name
        self.chunks: list[str] = []
        self.status: ev.ToolStatus = "streaming"
        self.result: Any = None
        self.error: str | None = None
        self.decision: ev.Decision | None = None

    @property
    def args_text(self) -> str:
        """The arguments streamed so far, as JSON text."""
        return "".join(self.chunks)

    async def args(self, delta: str) -> None:
        """Stream a fragment of the JSON arguments."""
        if self.status != "streaming":
            raise RuntimeError(f"tool call {self.call!r} already has its arguments")
        self.chunks.append(delta)
        m = self.message
        await m.writer.args_delta(self.call, m.id, self.part, delta)

    async def run(self) -> ToolCallStream:
        """Write ``tool.called``, run the tool (after approval if it needs one), write ``tool.result``.

        A tool that is unknown, gets bad arguments, is denied or raises gives an error result;
        the call never raises for those. Returns itself, with ``status``, ``result`` and ``error`` set.
        """
        m = self.message
        writer = m.writer
        self.status = "called"
        args_text = self.args_text
        await writer.emit(
            ev.ToolCalled(
                call=self.call, name=self.name, message=m.id, part=self.part, args=args_text, turn=m.turn, job=m.job
            )
        )
        try:
            tool = m.tools.get(self.name)
            parsed = json.loads(args_text) if args_text.strip() else {}
            args = tool.validate(parsed)
        except (NotFound, ToolError) as exc:
            return await self._finish("failed", error=str(exc))
        except ValueError as exc:
            return await self._finish("failed", error=f"{self.name}: the arguments are not valid JSON: {exc}")
        if tool.needs_approval:
            self.decision = await m.approvals.request(writer, tool.action(args), self.call)
            if self.decision != "approved":
                return await self._finish("denied", error=f"not run: the approval was {self.decision}")
        try:
            result = await tool.fn(args, _ToolCall(m, self.call))
            msgspec.json.encode(result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a tool's failure is the call's result, not the turn's end
            return await self._finish("failed", error=f"{self.name} failed: {exc}")
        return await self._finish("completed", result=result)

    async def _finish(
        self, status: Literal["completed", "failed", "denied"], *, result: Any = None, error: str | None = None
    ) -> ToolCallStream:
        m = self.message
        self.status, self.result, self.error = status, result, error
        await m.writer.emit(
            ev.ToolResult(
                call=self.call,
                message=m.id,
                part=self.part,
                result=result,
                error=error,
                status=status,
                turn=m.turn,
                job=m.job,
            )
        )
        return self

    def final(self) -> ev.Part:
        status, error = self.status, self.error
        if status in ("streaming", "called"):
            status, error = "failed", error or "the call did not finish"
        return ev.ToolPart(
            call=self.call, name=self.name, args=self.args_text, status=status, result=self.result, error=error
        )


class _ToolCall:
    """The :class:`ToolContext` a tool function gets."""

    def __init__(self, message: MessageStream, call: str) -> None:
        self.session_id = message.writer.session.id
        self.turn = message.turn
        self.job = message.job
        self.call = call
        self._start_job = message.start_job

    async def start_job(self, title: str, prompt: str) -> str:
        return await self._start_job(title, prompt)


_Builder = Union[_TextPart, ToolCallStream]


class MessageStream:
    """One message being streamed. Get it from ``await ctx.message()``."""

    def __init__(
        self,
        writer: Writer,
        tools: ToolRegistry,
        approvals: Approvals,
        start_job: StartJob,
        role: Role = "assistant",
    ) -> None:
        self.id = "m_" + secrets.token_hex(6)
        self.role: Role = role
        self.writer = writer
        self.turn, self.job = writer.turn, writer.job
        self.tools = tools
        self.approvals = approvals
        self.start_job = start_job
        self.parts: list[_Builder] = []
        self.completed = False

    async def start(self) -> MessageStream:
        """Write ``message.started``."""
        await self.writer.emit(ev.MessageStarted(message=self.id, role=self.role, turn=self.turn, job=self.job))
        return self

    def _lane(self, kind: Literal["text", "reasoning"]) -> int:
        last = self.parts[-1] if self.parts else None
        if isinstance(last, _TextPart) and last.kind == kind:
            return len(self.parts) - 1
        self.parts.append(_TextPart(kind))
        return len(self.parts) - 1

    async def text(self, delta: str) -> None:
        """Stream visible text (a new text part starts after any other part)."""
        await self._delta("text", delta)

    async def reasoning(self, delta: str) -> None:
        """Stream reasoning (its own part, shown in the reasoning lane)."""
        await self._delta("reasoning", delta)

    async def _delta(self, kind: Literal["text", "reasoning"], delta: str) -> None:
        if self.completed:
            raise RuntimeError(f"message {self.id!r} is already completed")
        if not delta:
            return
        index = self._lane(kind)
        part = self.parts[index]
        if isinstance(part, _TextPart):  # always: _lane made it
            part.chunks.append(delta)
        await self.writer.delta(self.id, index, delta, kind)

    async def tool_call(self, name: str, call: str | None = None) -> ToolCallStream:
        """Begin a tool call as the next part: writes ``tool.started``."""
        stream = ToolCallStream(self, len(self.parts), call or "c_" + secrets.token_hex(6), name)
        self.parts.append(stream)
        await self.writer.emit(
            ev.ToolStarted(call=stream.call, name=name, message=self.id, part=stream.part, turn=self.turn, job=self.job)
        )
        return stream

    @property
    def text_so_far(self) -> str:
        """The visible text streamed so far."""
        return "".join("".join(p.chunks) for p in self.parts if isinstance(p, _TextPart) and p.kind == "text")

    def final_parts(self) -> list[ev.Part]:
        """The message's full parts as they stand."""
        return [p.final() for p in self.parts]

    async def complete(self) -> None:
        """Write ``message.completed`` with every part in full (after any buffered delta). Idempotent."""
        if self.completed:
            return
        self.completed = True
        await self.writer.emit(self.completed_event())

    def completed_event(self) -> ev.MessageCompleted:
        """The ``message.completed`` event of the message as it stands."""
        return ev.MessageCompleted(
            message=self.id, role=self.role, parts=self.final_parts(), turn=self.turn, job=self.job
        )
