"""``sessionwire tail`` in a real terminal: a 24-row pseudo-terminal whose screen pyte keeps, against a real server."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyte
import pytest

from conftest import free_port
from server_util import ThreadServer, auth, running, settings_for, wait_until
from sessionwire import Client
from sessionwire.cli.prompt import Answers
from sessionwire.events import Record, to_event
from sessionwire.view import SessionView

ROWS, COLS = 24, 80
SESSIONWIRE = Path(sys.executable).with_name("sessionwire")


class Terminal:
    """A command on a pseudo-terminal of ROWS x COLS; pyte keeps what its screen shows."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
        )
        os.close(slave)
        self.master = master
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)

    def lines(self) -> list[str]:
        """The screen's rows down to the last that is not blank, trailing blanks cut."""
        rows = [row.rstrip() for row in self.screen.display]
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def text(self) -> str:
        """The screen as text."""
        return "\n".join(self.lines())

    def pump(self, timeout: float) -> None:
        """Feed what the command wrote (waiting up to ``timeout`` for some) to the screen."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        while ready:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the command has exited and closed the terminal
                return
            if not data:
                return
            self.stream.feed(data)
            ready, _, _ = select.select([self.master], [], [], 0)

    def wait_for(self, condition: Callable[[str], Any], what: str, timeout: float = 10.0) -> None:
        """Read the output until ``condition(screen text)`` holds; fail (showing the screen) after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not condition(self.text()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{self.text()}")
            if self.process.poll() is not None:
                self.pump(0)
                raise AssertionError(f"the command exited ({self.process.returncode}); the screen:\n{self.text()}")
            self.pump(0.05)

    def type(self, keys: bytes) -> None:
        """Type ``keys`` on the terminal."""
        os.write(self.master, keys)

    def echoes(self) -> bool:
        """Whether the terminal echoes what is typed (it does unless a program turned that off)."""
        return bool(termios.tcgetattr(self.master)[3] & termios.ECHO)

    def interrupt(self) -> int:
        """Interrupt the command as Ctrl-C would; its exit code."""
        self.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        while self.process.poll() is None and time.monotonic() < deadline:
            self.pump(0.05)  # keep reading: a command blocked on a full terminal never exits
        return self.process.wait(timeout=1)

    def close(self) -> None:
        """Stop the command if it still runs and release the terminal."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self.master)


class Session:
    """A session on the test server, driven over plain HTTP."""

    def __init__(self, url: str, title: str) -> None:
        self.url = url
        created = httpx.post(f"{url}/v1/sessions", json={"title": title}).json()
        self.id, self.token = created["session"], created["token"]

    def post(self, path: str, body: Any) -> Any:
        response = httpx.post(f"{self.url}/v1/sessions/{self.id}{path}", json=body, headers=auth(self.token))
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/v1/sessions/{self.id}", headers=auth(self.token))
        return dict(response.json()["state"])

    def tail(self, tmp_path: Path) -> Terminal:
        env = {
            **os.environ,
            "TERM": "xterm",
            "COLUMNS": str(COLS),
            "LINES": str(ROWS),
            "NO_PROXY": "127.0.0.1",
            "SESSIONWIRE_CONFIG_DIR": str(tmp_path / "config"),
        }
        return Terminal([str(SESSIONWIRE), "tail", "--url", self.url, "--token", self.token, self.id], env)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with running(settings_for(free_port(), token_delay_ms=1.0)) as srv:
        yield srv


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def test_a_conversation_taller_than_the_terminal_keeps_the_newest_output_and_the_approval_in_view(
    server: ThreadServer, tmp_path: Path, terminals: list[Terminal]
) -> None:
    session = Session(server.url, "tall")
    terminal = session.tail(tmp_path)
    terminals.append(terminal)
    terminal.wait_for(lambda text: f"session {session.id}" in text, "the live region")
    session.post("/turns", {"text": "/long 400"})
    session.post("/turns", {"text": "/approve deploy"})
    terminal.wait_for(lambda text: "? [y/n]" in text, "the approval's prompt")
    approval = next(iter(session.state()["approvals"]))
    lines = terminal.lines()
    text = terminal.text()
    # The newest output is in view: the end of the long answer (its start scrolled away), then the approval.
    assert "w400" in text and not re.search(r"\bw1\b", text), text
    assert lines[-3].startswith(f"approval {approval} pending: deploy"), lines
    assert lines[-1].startswith(f"approve {approval} (deploy)? [y/n]"), lines
    assert lines[-2].startswith(f"session {session.id} · seq"), lines
    # The event stream goes on while the prompt waits for an answer: a job runs and finishes in view.
    session.post("/jobs", {"title": "side", "prompt": "/long 30"})
    terminal.wait_for(lambda text: re.search(r"job j_\S+ side · completed 30/30", text), "the job's outcome")
    assert terminal.lines()[-1].startswith(f"approve {approval} (deploy)? [y/n]")
    # Answer it from the keyboard: y, then Enter.
    terminal.type(b"y")
    terminal.wait_for(lambda text: "[y/n] y" in text, "the typed answer")
    terminal.type(b"\r")
    wait_until(lambda: session.state()["approvals"][approval]["status"] == "approved", what="the approval")
    terminal.wait_for(lambda text: "Approved, so I did it" in text, "the turn's answer")
    text = terminal.text()
    assert f"approval {approval} approved: deploy" in text and "? [y/n]" not in text, text
    assert text.count("Approved, so I did it") == 1, text
    # Ctrl-C ends it (exit code 130) and gives the terminal back as it was: echoing again.
    assert not terminal.echoes()
    assert terminal.interrupt() == 130
    assert terminal.echoes()


def test_a_message_taller_than_the_terminal_shows_its_last_lines_while_it_streams(
    server: ThreadServer, tmp_path: Path, terminals: list[Terminal]
) -> None:
    session = Session(server.url, "long message")
    words = " ".join(f"x{i}" for i in range(1, 601))
    session.post(
        "/records",
        {
            "events": [
                {"type": "message.started", "message": "m1", "role": "assistant"},
                {"type": "message.delta", "message": "m1", "part": 0, "kind": "reasoning", "text": "pondering"},
                {"type": "message.delta", "message": "m1", "part": 1, "text": words},
            ]
        },
    )
    terminal = session.tail(tmp_path)
    terminals.append(terminal)
    terminal.wait_for(lambda text: "x600" in text, "the end of the streaming message")
    lines = terminal.lines()
    text = terminal.text()
    assert "assistant · streaming" in text and "…" in text and not re.search(r"\bx1\b", text), text
    assert lines[-1].startswith(f"session {session.id} · seq 4"), "\n".join(lines)
    assert "pondering" not in text  # the reasoning is above the last lines: out of view
    session.post("/records", {"events": [{"type": "message.delta", "message": "m1", "part": 1, "text": " x601"}]})
    terminal.wait_for(lambda text: "x601" in text, "the next word")
    session.post(
        "/records",
        {
            "events": [
                {
                    "type": "message.completed",
                    "message": "m1",
                    "role": "assistant",
                    "parts": [{"kind": "reasoning", "text": "pondering"}, {"kind": "text", "text": words + " x601"}],
                }
            ]
        },
    )
    terminal.wait_for(lambda text: "streaming" not in text and "seq 6" in text, "the message to be printed")
    text = terminal.text()
    assert text.count("x601") == 1 and "x600" in text, text


async def test_the_prompt_line_shows_what_is_typed_and_asks_again_on_a_wrong_answer() -> None:
    view = SessionView("s_1")
    view.add(Record("s_1", 1, 0, to_event({"type": "approval.requested", "approval": "a1", "action": "ship it"})))
    changes: list[int] = []
    async with Client("http://127.0.0.1:9") as client:  # nothing is sent: no answer is y or n
        answers = Answers(client, "s_1", view, None, lambda: changes.append(1), lambda message: None)
        assert str(answers.line()) == "approve a1 (ship it)? [y/n] "
        answers.feed("x\x1b[Ab\x7f")  # an arrow key is ignored, Backspace erases
        assert str(answers.line()) == "approve a1 (ship it)? [y/n] x" and len(changes) == 1
        answers.feed("\r")
        assert str(answers.line()) == "approve a1 (ship it)? [y/n]   type y or n, then Enter"
        answers.feed("\r")  # Enter alone: nothing happens
        assert not answers.sent
    view.add(Record("s_1", 2, 0, to_event({"type": "approval.resolved", "approval": "a1", "decision": "approved"})))
    assert answers.line() is None
