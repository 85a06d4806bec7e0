"""How the parts of a conversation read in a terminal: messages, tool calls, jobs, approvals, errors.

Each function turns one piece of a :class:`~sessionwire.state.SessionState` into a rich
:class:`~rich.text.Text`. ``sessionwire tail`` prints finished pieces once above its live region
and ``sessionwire replay`` prints a whole transcript with the same functions. Ids, titles,
actions and results are data: they go into ``Text`` as plain strings, never as markup.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.text import Text

from .state import (
    ApprovalState,
    ErrorEntry,
    JobState,
    MessageState,
    PartState,
    ReasoningPart,
    SessionState,
    TextPart,
    ToolPart,
    TurnState,
)

STATUS_STYLE = {
    "running": "yellow",
    "streaming": "yellow",
    "called": "yellow",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
    "interrupted": "magenta",
    "pending": "yellow",
    "approved": "green",
    "denied": "red",
    "expired": "magenta",
}
"""The colour of each turn, message, tool, job and approval status."""

ROLE_STYLE = {"user": "bold cyan", "assistant": "bold green", "system": "bold yellow"}
"""The colour of each role in a message's header."""

REASONING_LABEL = "thinking"
"""The label that tells the model's reasoning from its answer."""

INDENT = "  "
"""What a message's body is indented by, under its header."""

MAX_VALUE = 400
"""Longest tool argument or result shown, in characters (the rest is cut with an ellipsis)."""


def short(value: Any, limit: int = MAX_VALUE) -> str:
    """``value`` as one line of JSON (a string as it is), cut to ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def where(turn: str | None, job: str | None) -> str:
    """`` · job J`` or `` · turn T`` (the job wins: its messages belong to it), or nothing."""
    return f" · job {job}" if job else (f" · turn {turn}" if turn else "")


def session_line(state: SessionState, session: str) -> Text:
    """The session's id and title, as a heading."""
    line = Text.assemble(("session ", "bold"), (session, "bold"))
    if state.title:
        line.append(f" · {state.title}")
    return line


def renamed_line(title: str, auto: bool) -> Text:
    """A rename of the conversation (by a person, or by the server after the first message)."""
    line = Text.assemble(("renamed ", "dim"), (title, "bold"))
    if auto:
        line.append(" (after the first message)", style="dim")
    return line


def message_header(message: MessageState) -> Text:
    """``role · turn T`` (with the status unless it completed)."""
    header = Text(message.role, style=ROLE_STYLE.get(message.role, "bold"))
    header.append(where(message.turn, message.job), style="dim")
    if message.status != "completed":
        header.append(f" · {message.status}", style=STATUS_STYLE.get(message.status, ""))
    header.no_wrap, header.overflow = True, "ellipsis"
    return header


def part_text(part: PartState) -> Text:
    """One part: the text as it is, reasoning under its label, a tool call with its args and result."""
    if isinstance(part, TextPart):
        return Text(part.text)
    if isinstance(part, ReasoningPart):
        return Text.assemble((f"{REASONING_LABEL}: ", "bold dim"), (part.text, "dim italic"))
    return tool_text(part)


def tool_text(part: ToolPart) -> Text:
    """``tool NAME(ARGS) · STATUS: RESULT`` (or the error)."""
    line = Text.assemble(("tool ", "cyan"), (part.name or "?", "bold cyan"), (f"({short(part.args)})", "cyan"))
    line.append(f" · {part.status}", style=STATUS_STYLE.get(part.status, ""))
    if part.error is not None:
        line.append(f": {short(part.error)}", style="red")
    elif part.status == "completed":
        line.append(f": {short(part.result)}")
    return line


def message_body(message: MessageState) -> Text:
    """Every part of the message, one after the other."""
    body = Text()
    for index, part in enumerate(message.parts):
        if index:
            body.append("\n")
        body.append_text(part_text(part))
    return body


def message_block(message: MessageState) -> RenderableType:
    """A finished message: its header, then its body indented under it."""
    return Group(message_header(message), Indented(message_body(message)))


class Indented:
    """Text wrapped to the width left after an indent, every line indented (and no trailing blanks).

    Args:
        text: The text.
        indent: What each line starts with.
    """

    def __init__(self, text: Text, indent: str = INDENT) -> None:
        self.text, self.indent = text, indent

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.text.wrap(console, max(1, options.max_width - len(self.indent))):
            line.rstrip()
            out = Text(self.indent, end="\n", no_wrap=True, overflow="crop")
            out.append_text(line)
            yield out


def tool_result_line(message: MessageState, part: ToolPart) -> Text:
    """A tool's outcome that came after its message was printed."""
    line = Text(f"{INDENT}↳ ", style="dim")
    line.append_text(tool_text(part))
    line.append(where(message.turn, message.job), style="dim")
    return line


def job_progress(job: JobState) -> str:
    """``running 3/10`` (the status, with the progress when it has one)."""
    progress = job.progress
    if progress is None:
        return job.status
    total = f"/{progress.total}" if progress.total is not None else ""
    return f"{job.status} {progress.done}{total}"


def job_started_line(job: JobState) -> Text:
    """A job began."""
    line = Text.assemble(("job ", "bold"), (job.id, "bold"), f" started: {job.title}")
    if job.turn:
        line.append(f" · turn {job.turn}", style="dim")
    return line


def job_ended_line(job: JobState) -> Text:
    """A job's outcome: completed with its summary, failed with its error, cancelled or interrupted with why."""
    line = Text.assemble(("job ", "bold"), (job.id, "bold"), f" {job.title} · ")
    line.append(job_progress(job), style=STATUS_STYLE.get(job.status, ""))
    detail = job.summary if job.status == "completed" else job.error if job.status == "failed" else job.reason
    if detail:
        line.append(f": {detail}")
    if job.code:
        line.append(f" ({job.code})", style="dim")
    return line


def turn_ended_line(turn: TurnState) -> Text | None:
    """A turn that did not complete: failed with its error, cancelled or interrupted with why (else None)."""
    if turn.status in ("running", "completed"):
        return None
    line = Text.assemble(("turn ", "bold"), (turn.id, "bold"), " ")
    line.append(turn.status, style=STATUS_STYLE.get(turn.status, ""))
    detail = turn.error if turn.status == "failed" else turn.reason
    if detail:
        line.append(f": {detail}")
    if turn.code:
        line.append(f" ({turn.code})", style="dim")
    return line


def approval_line(approval: ApprovalState, requested: bool = False) -> Text:
    """An approval: what it is for and where it stands (with who decided, once resolved).

    With ``requested``, the line that it was asked for (what the transcript says when it came).
    """
    line = Text.assemble(("approval ", "bold"), (approval.id, "bold"), " ")
    status = "requested" if requested else approval.status
    line.append(status, style=STATUS_STYLE.get(approval.status, ""))
    line.append(f": {approval.action}")
    if approval.by:
        line.append(f" · by {approval.by}", style="dim")
    line.append(where(approval.turn, approval.job), style="dim")
    return line


def error_line(error: ErrorEntry) -> Text:
    """An ``error`` record."""
    line = Text(f"error: {error.error}", style="red")
    if error.code:
        line.append(f" ({error.code})", style="dim")
    line.append(where(error.turn, error.job), style="dim")
    return line
