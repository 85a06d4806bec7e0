"""The context a provider runs in: one turn or one job, its session and what it may write."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from .. import events as ev
from ..state import SessionState
from .approvals import Approvals
from .coalesce import Writer
from .messages import MessageStream, StartJob, ToolCallStream
from .tools import ToolRegistry

if TYPE_CHECKING:
    from ..events import Role


class RunContext:
    """What a provider sees and does while it runs a turn or a job.

    Attributes:
        session_id: The session it runs in.
        turn: The turn's id (for a turn), else None.
        job: The job's id (for a job), else None.
        text: The user's message (turn) or the job's prompt (job).
        title: The job's title (job only).
        tools: The tools it may call.
        messages: The messages it has opened, in order.
    """

    def __init__(
        self,
        writer: Writer,
        *,
        text: str,
        tools: ToolRegistry,
        approvals: Approvals,
        start_job: StartJob,
        title: str | None = None,
    ) -> None:
        self.writer = writer
        self.session_id = writer.session.id
        self.turn, self.job = writer.turn, writer.job
        self.text = text
        self.title = title
        self._state: SessionState | None = None
        self.tools = tools
        self.approvals = approvals
        self._start_job = start_job
        self.messages: list[MessageStream] = []

    async def session_state(self) -> SessionState:
        """The session's folded state, read on the first call (a turn's includes its user message)."""
        if self._state is None:
            self._state = await self.writer.session.state()
        return self._state

    async def message(self, role: Role = "assistant") -> MessageStream:
        """Open a new message (writes ``message.started``)."""
        stream = MessageStream(self.writer, self.tools, self.approvals, self._start_job, role)
        self.messages.append(stream)
        return await stream.start()

    async def call_tool(self, message: MessageStream, name: str, args: str, chunk: int = 8) -> ToolCallStream:
        """Call a tool in ``message`` with its arguments streamed in chunks of ``chunk`` characters, then run it."""
        call = await message.tool_call(name)
        for i in range(0, len(args), chunk):
            await call.args(args[i : i + chunk])
        return await call.run()

    async def progress(self, done: int, total: int | None = None, note: str | None = None) -> None:
        """Report a job's progress (throttled: at most one record per window). No-op in a turn."""
        if self.job is not None:
            await self.writer.progress(done, total, note)

    async def status(self, text: str) -> None:
        """Write a transient ``status`` line."""
        await self.writer.emit(ev.Status(text=text, turn=self.turn, job=self.job))

    async def start_job(self, title: str, prompt: str) -> str:
        """Start a background job in this session; return its id. It outlives this turn."""
        return await self._start_job(title, prompt)

    def open_messages(self) -> list[MessageStream]:
        """Messages opened and not completed yet."""
        return [m for m in self.messages if not m.completed]

    def close_events(self) -> list[ev.MessageCompleted]:
        """``message.completed`` for every open message, with what it has so far; marks them completed."""
        out = []
        for m in self.open_messages():
            m.completed = True
            out.append(m.completed_event())
        return out


def new_id(prefix: str) -> str:
    """A fresh random id such as ``t_3f9a1c2b7d4e``."""
    return f"{prefix}_{secrets.token_hex(6)}"
