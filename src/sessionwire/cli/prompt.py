"""Answering pending approvals from the keyboard while ``sessionwire tail`` keeps streaming."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import re
from collections.abc import Callable, Iterator
from typing import Literal

import click
import httpx
from rich.text import Text

from ..client import Client
from ..errors import SessionwireError
from ..view import SessionView
from .control import resolve

Decision = Literal["approve", "deny"]

_ANSWERS: dict[str, Decision] = {"y": "approve", "yes": "approve", "n": "deny", "no": "deny"}
_ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|O.|.)?")
"""The sequences keys like the arrows send (CSI and SS3), and a lone Escape."""


class Answers:
    """A prompt line for the oldest pending approval: type ``y`` or ``n``, then Enter.

    What is typed is drawn in the prompt line (the terminal's echo is off); the answer is sent
    in the background, so the event stream never waits for the keyboard or the request.

    Args:
        client: The client that resolves approvals.
        session: The session whose approvals are answered.
        view: The view whose pending approvals are offered.
        by: Who decides (recorded with the decision), if named.
        changed: Called when the prompt line changed (to redraw it).
        failed: Called with a message when an answer could not be sent.
    """

    def __init__(
        self,
        client: Client,
        session: str,
        view: SessionView,
        by: str | None,
        changed: Callable[[], None],
        failed: Callable[[str], None],
    ) -> None:
        self.client, self.session, self.view, self.by = client, session, view, by
        self.changed, self.failed = changed, failed
        self.typed = ""
        self.hint = ""
        self.sent: dict[str, Decision] = {}  # answers on their way (or sent) whose decision has not come back
        self._tasks: set[asyncio.Task[None]] = set()

    def _target(self) -> str | None:
        return next((a for a in self.view.pending if a not in self.sent), None)

    def line(self) -> Text | None:
        """The prompt line (None when no approval waits for an answer from here)."""
        target = self._target()
        if target is None:
            self.typed, self.hint = "", ""
            sending = next((a for a in self.view.pending if a in self.sent), None)
            if sending is None:
                return None
            verb = "approving" if self.sent[sending] == "approve" else "denying"
            return Text(f"{verb} {sending}…", style="yellow")
        action = self.view.state.approvals[target].action
        line = Text.assemble((f"approve {target}", "bold yellow"), f" ({action})", ("? [y/n] ", "bold yellow"))
        line.append(self.typed)
        if self.hint:
            line.append(f"  {self.hint}", style="dim")
        return line

    def feed(self, keys: str) -> None:
        """Take typed characters: y/n and Enter answer, Backspace erases (arrows and the like are ignored)."""
        for key in _ESCAPES.sub("", keys):
            if key in "\r\n":
                self._enter()
            elif key in "\x7f\b":
                self.typed = self.typed[:-1]
            elif key.isprintable() and len(self.typed) < 16:
                self.typed += key
        self.changed()

    def _enter(self) -> None:
        answer, self.typed = self.typed.strip().lower(), ""
        target = self._target()
        if target is None or not answer:
            return
        decision = _ANSWERS.get(answer)
        if decision is None:
            self.hint = "type y or n, then Enter"
            return
        self.hint = ""
        self.sent[target] = decision
        task = asyncio.get_running_loop().create_task(self._send(target, decision))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, approval: str, decision: Decision) -> None:
        try:
            await resolve(self.client, self.session, approval, decision, self.by)
        except click.ClickException as exc:
            self.failed(exc.message)
        except (SessionwireError, httpx.HTTPError) as exc:
            self.failed(f"cannot {decision} {approval}: {exc or type(exc).__name__}")
        except Exception as exc:  # anything else is shown too: a task's error is never left unseen
            self.failed(f"cannot {decision} {approval}: {type(exc).__name__}: {exc}")
        else:
            return  # the approval leaves the pending ones once its decision comes back as a record
        self.sent.pop(approval, None)
        self.changed()


@contextlib.contextmanager
def keyboard(fd: int, typed: Callable[[str], None]) -> Iterator[None]:
    """Hand what is typed on the terminal ``fd`` to ``typed`` as it comes, in the running event loop.

    The terminal gives keys as they are pressed and does not echo them, until the block ends.
    """
    import termios

    saved = termios.tcgetattr(fd)
    mode = termios.tcgetattr(fd)
    mode[3] &= ~(termios.ECHO | termios.ICANON)  # lflag: keys at once, not echoed; Ctrl-C still interrupts
    mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
    termios.tcsetattr(fd, termios.TCSANOW, mode)
    loop = asyncio.get_running_loop()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def readable() -> None:
        try:
            data = os.read(fd, 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the terminal is gone: stop listening, keep tailing
            loop.remove_reader(fd)
            return
        typed(decoder.decode(data))

    loop.add_reader(fd, readable)
    try:
        yield
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
