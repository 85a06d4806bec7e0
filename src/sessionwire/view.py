"""A terminal view of a session: what finished is printed once, what is still open is drawn live.

:meth:`SessionView.add` folds one item and returns what it finished (a message, a job, an
approval's decision, an error...) as renderables to print once, in order, into the scrollback.
:meth:`SessionView.render` draws only what is still open (streaming messages, running jobs with
their progress, pending approvals) for a live region at the bottom of the terminal, cut to a
height so that it always fits: the newest output is always in view.
"""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from . import events as ev
from .events import Record
from .state import JobState, MessageState, ReasoningPart, SessionState, TextPart, ToolPart, apply
from .subscription import Item
from .transcript import (
    INDENT,
    REASONING_LABEL,
    STATUS_STYLE,
    approval_line,
    error_line,
    job_ended_line,
    job_progress,
    job_started_line,
    message_block,
    message_header,
    renamed_line,
    session_line,
    short,
    tool_result_line,
    turn_ended_line,
)

_MESSAGE_EVENTS = (
    ev.MessageStarted,
    ev.MessageDelta,
    ev.MessageCompleted,
    ev.ToolStarted,
    ev.ToolArgsDelta,
    ev.ToolCalled,
    ev.ToolResult,
)
_TURN_ENDS = (ev.TurnCompleted, ev.TurnFailed, ev.TurnCancelled, ev.TurnInterrupted)
_JOB_ENDS = (ev.JobCompleted, ev.JobFailed, ev.JobCancelled, ev.JobInterrupted)


class SessionView:
    """Folds a session's items into its state; tells what finished and draws what is open.

    Args:
        session: The session id (for the headings).
    """

    def __init__(self, session: str) -> None:
        self.session = session
        self.state = SessionState()
        self._printed: set[str] = set()  # keys of what was printed: "m:ID", "j+:ID", "j-:ID", "a+:ID", ...
        self._open_messages: dict[str, None] = {}  # streaming messages, in the order they began
        self._open_jobs: dict[str, None] = {}
        self._pending: dict[str, None] = {}  # pending approvals, oldest first

    # ------------------------------------------------------------------ folding

    def add(self, item: Item) -> list[RenderableType]:
        """Take one record or control frame (a snapshot replaces the state); return what it finished."""
        if isinstance(item, Record):
            if item.seq <= self.state.seq:
                return []  # already folded (the fold would ignore it too)
            apply(self.state, item)
            return self._finished(item)
        if item.control == "snapshot" and item.state is not None:
            self.state = SessionState.from_dict(item.state)
            return self._sweep()
        return []

    @property
    def idle(self) -> bool:
        """Whether nothing runs: no running turn or job and no pending approval."""
        s = self.state
        return (
            all(t.status != "running" for t in s.turns.values())
            and all(j.status != "running" for j in s.jobs.values())
            and all(a.status != "pending" for a in s.approvals.values())
        )

    @property
    def pending(self) -> list[str]:
        """The pending approvals' ids, oldest first."""
        return list(self._pending)

    def _once(self, key: str) -> bool:
        if key in self._printed:
            return False
        self._printed.add(key)
        return True

    def _finished(self, record: Record) -> list[RenderableType]:
        s, e, out = self.state, record.event, list[RenderableType]()
        if isinstance(e, ev.SessionCreated) and self._once("s"):
            out.append(session_line(s, self.session))
        elif isinstance(e, ev.SessionRenamed) and s.title == e.title:  # an auto name after a title is no rename
            out.append(renamed_line(e.title, e.auto))
        elif isinstance(e, _MESSAGE_EVENTS):
            message = s.messages.get(e.message)
            if message is not None and isinstance(e, ev.ToolResult) and f"m:{e.message}" in self._printed:
                part = next((p for p in message.parts if isinstance(p, ToolPart) and p.call == e.call), None)
                if part is not None and part.status == e.status and self._once(f"r:{e.message}:{e.call}"):
                    out.append(tool_result_line(message, part))
            self._message(e.message, out)
        elif isinstance(e, _TURN_ENDS):
            turn = s.turns[e.turn]
            for message_id in turn.messages:
                self._message(message_id, out)
            line = turn_ended_line(turn)
            if line is not None and self._once(f"t-:{turn.id}"):
                out.append(line)
        elif isinstance(e, ev.JobStarted):
            self._job(e.job, out)
        elif isinstance(e, _JOB_ENDS):
            for message_id in s.jobs[e.job].messages:
                self._message(message_id, out)
            self._job(e.job, out)
        elif isinstance(e, ev.ApprovalRequested | ev.ApprovalResolved):
            self._approval(e.approval, out)
        elif isinstance(e, ev.Error):
            out.append(error_line(s.errors[-1]))
        return out

    def _message(self, message_id: str, out: list[RenderableType]) -> None:
        message = self.state.messages.get(message_id)
        if message is None or f"m:{message_id}" in self._printed:
            return
        if message.status == "streaming":
            self._open_messages[message_id] = None
        else:
            self._open_messages.pop(message_id, None)
            self._printed.add(f"m:{message_id}")
            out.append(message_block(message))

    def _job(self, job_id: str, out: list[RenderableType]) -> None:
        job = self.state.jobs[job_id]
        if self._once(f"j+:{job_id}"):
            out.append(job_started_line(job))
        if job.status == "running":
            self._open_jobs[job_id] = None
        else:
            self._open_jobs.pop(job_id, None)
            if self._once(f"j-:{job_id}"):
                out.append(job_ended_line(job))

    def _approval(self, approval_id: str, out: list[RenderableType]) -> None:
        approval = self.state.approvals[approval_id]
        if approval.status == "pending":
            self._pending[approval_id] = None
            if self._once(f"a+:{approval_id}"):
                out.append(approval_line(approval, requested=True))
        else:
            self._pending.pop(approval_id, None)
            if self._once(f"a-:{approval_id}"):
                out.append(approval_line(approval))

    def _sweep(self) -> list[RenderableType]:
        """After a snapshot: print what finished that was not printed yet; find what is open."""
        out: list[RenderableType] = []
        self._open_messages.clear()
        self._open_jobs.clear()
        self._pending.clear()
        for message_id in self.state.message_order:
            self._message(message_id, out)
        for job_id in self.state.jobs:
            self._job(job_id, out)
        for approval_id in self.state.approvals:
            self._approval(approval_id, out)
        return out

    # ------------------------------------------------------------------ drawing

    def render(self, console: Console, height: int | None = None, prompt: Text | None = None) -> RenderableType:
        """What is open, in at most ``height`` lines (None: all of it), with ``prompt`` as the last line.

        Streaming messages show their last lines (the newest message gets the room first), then
        running jobs with progress bars, pending approvals, a line with the session, its seq and
        status, and the prompt.
        """
        width = max(20, console.width)
        limit = height if height is not None else 1 << 30
        share = max(1, limit // 4)  # jobs and approvals each take at most a quarter of the height
        rows: list[RenderableType] = []  # each one line high
        jobs = [self.state.jobs[j] for j in self._open_jobs]
        rows += [_job_row(job, width) for job in jobs[:share]]
        if len(jobs) > share:
            rows.append(_one_line(Text(f"+{len(jobs) - share} more running jobs", style="dim")))
        approvals = [self.state.approvals[a] for a in self._pending]
        rows += [_one_line(approval_line(approval)) for approval in approvals[:share]]
        if len(approvals) > share:
            rows.append(_one_line(Text(f"+{len(approvals) - share} more pending approvals", style="dim")))
        rows.append(self._footer())
        if prompt is not None:
            rows.append(_one_line(prompt))
        rows = rows[max(0, len(rows) - limit) :]  # a tiny terminal: the last rows matter most
        top = self._messages(console, width, limit - len(rows))
        return Group(*top, *rows)

    def _messages(self, console: Console, width: int, room: int) -> list[RenderableType]:
        blocks: list[list[Text]] = []
        for message_id in reversed(self._open_messages):
            if room < 2:
                break
            message = self.state.messages[message_id]
            lines = _tail_lines(console, message, width - len(INDENT), room - 1)
            blocks.append([_one_line(message_header(message)), *lines])
            room -= len(blocks[-1])
        return [line for block in reversed(blocks) for line in block]

    def _footer(self) -> Text:
        s = self.state
        line = Text.assemble((f"session {self.session}", "bold"), f" · seq {s.seq}", style="dim")
        if s.title:
            line.append(f" · {s.title}", style="dim")
        if s.status is not None:
            line.append(f" · {s.status.text}", style="dim italic")
        return _one_line(line)


def _job_row(job: JobState, width: int) -> RenderableType:
    """A running job in one line: id and title, status with progress, a progress bar."""
    row = Table.grid(padding=(0, 1), expand=True)
    row.add_column(no_wrap=True, overflow="ellipsis", width=max(8, width * 2 // 5))
    row.add_column(no_wrap=True, overflow="ellipsis", width=max(8, width // 5))
    row.add_column(ratio=1)
    progress = job.progress
    bar: RenderableType = Text("")
    if progress is not None and progress.total:
        bar = ProgressBar(total=progress.total, completed=progress.done)
    title = Text.assemble(("job ", "bold"), (job.id, "bold"), f" {job.title}")
    row.add_row(title, Text(job_progress(job), style=STATUS_STYLE.get(job.status, "")), bar)
    return row


def _one_line(text: Text) -> Text:
    text.no_wrap, text.overflow, text.end = True, "ellipsis", "\n"
    return text


def _tail_lines(console: Console, message: MessageState, width: int, room: int) -> list[Text]:
    """The last ``room`` lines of a streaming message's body wrapped to ``width`` (the first says how many more)."""
    # Only the end of the body is wrapped: at most room + 1 lines of width characters can show.
    budget = (room + 1) * max(1, width)
    pieces: list[Text] = []
    size = 0
    for part in reversed(message.parts):
        if isinstance(part, TextPart):
            piece = Text(part.text[-budget:])
        elif isinstance(part, ReasoningPart):
            piece = Text.assemble((f"{REASONING_LABEL}: ", "bold dim"), (part.text[-budget:], "dim italic"))
        else:
            name = part.name or "?"
            piece = Text.assemble(("tool ", "cyan"), (name, "bold cyan"), (f"({short(part.args, 200)})", "cyan"))
            piece.append(f" · {part.status}", style=STATUS_STYLE.get(part.status, ""))
        pieces.append(piece)
        size += len(piece)
        if size > budget:
            break
    body = Text("\n").join(reversed(pieces))
    lines = list(body.wrap(console, max(1, width)))
    if len(lines) <= room:
        return [_indent(line) for line in lines]
    kept = lines[len(lines) - room + 1 :] if room > 1 else []
    return [Text(f"{INDENT}…", style="dim"), *(_indent(line) for line in kept)]


def _indent(line: Text) -> Text:
    out = Text(INDENT)
    out.append_text(line)
    out.rstrip()
    return _one_line(out)
