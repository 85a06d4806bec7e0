"""The terminal view: what finished is returned once, what is open is drawn within a height."""

from __future__ import annotations

import io
import re
from typing import Any

from rich.console import Console, RenderableType

from sessionwire.events import Record, to_event
from sessionwire.subscription import Control
from sessionwire.view import SessionView

SESSION = "s_view"


class Feed:
    """Records for one session, numbered as they are made."""

    def __init__(self) -> None:
        self.seq = 0
        self.all: list[Record] = []

    def __call__(self, **event: Any) -> Record:
        self.seq += 1
        record = Record(SESSION, self.seq, 1000 + self.seq, to_event(event))
        self.all.append(record)
        return record


def text_of(renderables: list[RenderableType], width: int = 80) -> str:
    out = io.StringIO()
    console = Console(width=width, file=out, color_system=None)
    for renderable in renderables:
        console.print(renderable)
    return out.getvalue()


def drawn(view: SessionView, height: int | None, width: int = 60, prompt: Any = None) -> list[str]:
    out = io.StringIO()
    console = Console(width=width, height=height or 24, file=out, color_system=None)
    console.print(view.render(console, height, prompt))
    return out.getvalue().splitlines()


def test_each_finished_thing_is_returned_once_in_order() -> None:
    feed, view = Feed(), SessionView(SESSION)
    out: list[RenderableType] = []
    for record in [
        feed(type="session.created", title="demo"),
        feed(type="turn.started", turn="t1"),
        feed(type="message.started", message="u1", role="user", turn="t1"),
        feed(type="message.completed", message="u1", role="user", turn="t1", parts=[{"kind": "text", "text": "hi"}]),
        feed(type="message.started", message="m1", role="assistant", turn="t1"),
        feed(type="message.delta", message="m1", turn="t1", part=0, kind="reasoning", text="hmm"),
        feed(type="message.delta", message="m1", turn="t1", part=1, text="hello"),
        feed(type="tool.started", message="m1", turn="t1", part=2, call="c1", name="add"),
        feed(type="tool.called", message="m1", turn="t1", part=2, call="c1", name="add", args='{"a": 1}'),
        feed(
            type="message.completed",
            message="m1",
            role="assistant",
            turn="t1",
            parts=[
                {"kind": "reasoning", "text": "hmm"},
                {"kind": "text", "text": "hello"},
                {"kind": "tool", "call": "c1", "name": "add", "args": '{"a": 1}', "status": "called"},
            ],
        ),
        feed(type="tool.result", message="m1", turn="t1", part=2, call="c1", result=3),
        feed(type="approval.requested", approval="a1", action="deploy", turn="t1"),
        feed(type="approval.resolved", approval="a1", decision="denied", by="bob", turn="t1"),
        feed(type="approval.resolved", approval="a1", decision="approved", turn="t1"),  # the first one wins
        feed(type="job.started", job="j1", title="index"),
        feed(type="job.progress", job="j1", done=2, total=4),
        feed(type="job.failed", job="j1", error="disk full", code="io"),
        feed(type="job.completed", job="j1"),  # too late: the job has ended
        feed(type="error", error="something broke", turn="t1"),
        feed(type="turn.failed", turn="t1", error="gave up", code="nope"),
    ]:
        out += view.add(record)
    assert text_of(out).splitlines() == [
        "session s_view · demo",
        "user · turn t1",
        "  hi",
        "assistant · turn t1",
        "  thinking: hmm",
        "  hello",
        '  tool add({"a": 1}) · called',
        '  ↳ tool add({"a": 1}) · completed: 3 · turn t1',
        "approval a1 requested: deploy · turn t1",
        "approval a1 denied: deploy · by bob · turn t1",
        "job j1 started: index",
        "job j1 index · failed 2/4: disk full (io)",
        "error: something broke · turn t1",
        "turn t1 failed: gave up (nope)",
    ]
    assert view.idle and view.pending == []
    # Nothing is returned twice, even when the records come again.
    assert all(view.add(record) == [] for record in feed.all)


def test_what_is_open_is_drawn_within_the_height_newest_lines_last() -> None:
    feed, view = Feed(), SessionView(SESSION)
    view.add(feed(type="session.created", title="tall"))
    view.add(feed(type="message.started", message="m1", role="assistant"))
    view.add(feed(type="message.delta", message="m1", part=0, text=" ".join(f"w{i}" for i in range(1, 2001))))
    for job in range(8):
        view.add(feed(type="job.started", job=f"j{job}", title=f"job number {job}"))
    view.add(feed(type="job.progress", job="j0", done=1, total=2))
    view.add(feed(type="approval.requested", approval="a1", action="deploy"))
    view.add(feed(type="status", text="working"))
    for height in (23, 12, 6, 3):
        lines = drawn(view, height)
        assert len(lines) <= height, (height, lines)
        assert lines[-1].startswith(f"session {SESSION} · seq") and "tall · working" in lines[-1]
    lines = drawn(view, 23)
    assert lines[0] == "assistant · streaming" and lines[1] == "  …"
    assert len(lines) == 23  # a 24-row terminal, one row to spare (what the tail asks for)
    # The message's last line, then 5 jobs (a quarter of the height), the 3 others counted, the approval.
    assert lines[-9].endswith("w2000")
    assert lines[-8].startswith("job j0 job number 0") and re.search(r"running 1/2 +━", lines[-8])
    assert lines[-3] == "+3 more running jobs"
    assert lines[-2] == "approval a1 pending: deploy"
    # Without a height (the end of a replay), everything open is drawn.
    everything = drawn(view, None)
    assert "w1 w2 w3" in everything[1] and sum("job j" in line for line in everything) == 8


def test_a_snapshot_prints_what_finished_before_it_and_keeps_what_is_open() -> None:
    feed, view = Feed(), SessionView(SESSION)
    state = SessionView(SESSION)
    for record in [
        feed(type="session.created", title="snap"),
        feed(type="message.started", message="m1", role="assistant"),
        feed(type="message.completed", message="m1", role="assistant", parts=[{"kind": "text", "text": "done"}]),
        feed(type="message.started", message="m2", role="assistant"),
        feed(type="message.delta", message="m2", part=0, text="still going"),
        feed(type="approval.requested", approval="a1", action="ship"),
    ]:
        state.add(record)
    snapshot = Control(control="snapshot", session=SESSION, at=feed.seq, state=state.state.to_dict())
    assert text_of(view.add(snapshot)).splitlines() == [
        "assistant",
        "  done",
        "approval a1 requested: ship",
    ]
    assert view.pending == ["a1"]
    assert drawn(view, 10)[:2] == ["assistant · streaming", "  still going"]


def test_a_rename_is_printed_once_and_an_ignored_auto_name_not_at_all() -> None:
    view, feed = SessionView(SESSION), Feed()
    out = [view.add(feed(type="session.created"))]
    out.append(view.add(feed(type="session.renamed", title="Plan the trip", auto=True)))
    out.append(view.add(feed(type="session.renamed", title="Lisbon, May")))
    out.append(view.add(feed(type="session.renamed", title="a second first message", auto=True)))  # ignored
    lines = [text_of(o).strip() for o in out]
    assert lines[1] == "renamed Plan the trip (after the first message)"
    assert lines[2] == "renamed Lisbon, May"
    assert lines[3] == ""
    assert view.state.title == "Lisbon, May"
