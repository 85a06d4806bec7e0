"""A terminal view of a session with rich: messages growing in place, jobs with progress bars, approvals."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .events import Record
from .state import ReasoningPart, SessionState, TextPart, ToolPart, apply
from .subscription import Item

_STATUS_STYLE = {
    "running": "yellow",
    "streaming": "yellow",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
    "interrupted": "magenta",
    "pending": "yellow",
    "approved": "green",
    "denied": "red",
    "expired": "magenta",
}


class SessionView:
    """Folds a session's items into its state and renders it.

    Args:
        session: The session id (for the title).
        max_messages: How many of the latest messages to show.
    """

    def __init__(self, session: str, max_messages: int = 20) -> None:
        self.session = session
        self.max_messages = max_messages
        self.state = SessionState()

    def add(self, item: Item) -> None:
        """Take one record or control frame (a snapshot replaces the state)."""
        if isinstance(item, Record):
            apply(self.state, item)
        elif item.control == "snapshot" and item.state is not None:
            self.state = SessionState.from_dict(item.state)

    @property
    def idle(self) -> bool:
        """Whether nothing runs: no running turn or job and no pending approval."""
        s = self.state
        return (
            all(t.status != "running" for t in s.turns.values())
            and all(j.status != "running" for j in s.jobs.values())
            and all(a.status != "pending" for a in s.approvals.values())
        )

    def render(self) -> RenderableType:
        """The whole view."""
        s = self.state
        parts: list[RenderableType] = [
            Text.assemble((f"session {self.session}", "bold"), f"  seq {s.seq}", f"  {s.title or ''}")
        ]
        for message_id in s.message_order[-self.max_messages :]:
            parts.append(self._message(message_id))
        if s.jobs:
            parts.append(self._jobs())
        pending = [a for a in s.approvals.values() if a.status == "pending"]
        if pending:
            table = Table(title="pending approvals", expand=True)
            table.add_column("approval")
            table.add_column("action")
            for approval in pending:
                table.add_row(Text(approval.id), Text(approval.action))
            parts.append(table)
        if s.status is not None:
            parts.append(Text(f"status: {s.status.text}", style="dim"))
        for error in s.errors[-3:]:
            parts.append(Text(f"error: {error.error}", style="red"))
        return Group(*parts)

    def _message(self, message_id: str) -> RenderableType:
        message = self.state.messages[message_id]
        body = Text()
        for index, part in enumerate(message.parts):
            if index:
                body.append("\n")
            if isinstance(part, TextPart):
                body.append(part.text)
            elif isinstance(part, ReasoningPart):
                body.append(part.text, style="dim italic")
            elif isinstance(part, ToolPart):
                body.append(f"[tool {part.name} {part.status}] {part.args}", style="cyan")
        where = f" job {message.job}" if message.job else (f" turn {message.turn}" if message.turn else "")
        # Ids, titles and actions are data: Text keeps rich from reading "[...]" in them as markup.
        title = Text(f"{message.role}{where} · {message.status}")
        return Panel(body, title=title, title_align="left", border_style=_STATUS_STYLE.get(message.status, "white"))

    def _jobs(self) -> RenderableType:
        table = Table(title="jobs", expand=True)
        table.add_column("job")
        table.add_column("title")
        table.add_column("status")
        table.add_column("progress", ratio=1)
        for job in self.state.jobs.values():
            progress = job.progress
            if progress is not None and progress.total:
                bar: RenderableType = ProgressBar(total=progress.total, completed=progress.done)
                note = f" {progress.done}/{progress.total}"
            else:
                bar, note = Text(""), ""
            table.add_row(
                Text(job.id),
                Text(job.title),
                Text(job.status + note, style=_STATUS_STYLE.get(job.status, "white")),
                bar,
            )
        return table
