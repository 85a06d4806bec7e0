"""``sessionwire tail``: follow a session, printing what finished and drawing what is open below it."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable

import click
from rich.console import Console, RenderableType
from rich.text import Text

from ..client import Client
from ..view import SessionView
from .common import make_client, run, token_option, url_option
from .prompt import Answers, keyboard
from .region import LiveRegion

FRAME = 0.05
"""Seconds between two redraws of the live region while output streams."""


class Screen:
    """What finished, printed above a live region of what is open; both written at most once a frame.

    Args:
        region: The live region.
        view: What to draw.
    """

    def __init__(self, region: LiveRegion, view: SessionView) -> None:
        self.region, self.view = region, view
        self.console = region.console
        self.prompt: Callable[[], Text | None] | None = None
        """The prompt line under the region, if any."""
        self._last = 0.0
        self._pending: asyncio.TimerHandle | None = None
        self._queued: list[RenderableType] = []

    def draw(self) -> RenderableType:
        """The live region, cut to the terminal's height (one line to spare)."""
        height = self.console.size.height - 1 if self.console.is_terminal else None
        return self.view.render(self.console, height, self.prompt() if self.prompt else None)

    def show(self, finished: list[RenderableType]) -> None:
        """Print ``finished`` once, above the live region, and redraw it, within a frame."""
        self._queued += finished
        self.soon()

    def say(self, text: str) -> None:
        """Print a note (in red: something went wrong) above the live region."""
        self.show([Text(text, style="red")])

    def soon(self) -> None:
        """Redraw within a frame (at most once a frame, however many calls)."""
        if self._pending is None:
            delay = max(0.0, self._last + FRAME - time.monotonic())
            self._pending = asyncio.get_running_loop().call_later(delay, self.refresh)

    def refresh(self) -> None:
        """Print what finished and redraw now."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._last = time.monotonic()
        queued, self._queued = self._queued, []
        self.region.update(self.draw(), queued)


async def tail_session(
    client: Client,
    session: str,
    after: int,
    console: Console,
    as_json: bool = False,
    stop: Callable[[SessionView], bool] | None = None,
    *,
    answer_fd: int | None = None,
    by: str | None = None,
) -> None:
    """Follow a session until ``stop(view)`` is true, or forever.

    What finished (messages, tool results, jobs, approvals' decisions, errors) is printed once;
    what is open is drawn in a live region under it. With ``as_json``, one record per line instead.

    Args:
        answer_fd: A terminal to read answers to pending approvals from (``y``/``n``, Enter).
        by: Who answers them (recorded with the decision).
    """
    view = SessionView(session)
    # One plain request first: a wrong URL, token or session fails here with a clear error, where
    # events() would keep retrying an unreachable server in silence. Stop only once caught up
    # with where the session stood when the tail began.
    target = (await client.state(session)).seq

    def done() -> bool:
        return stop is not None and view.state.seq >= target and stop(view)

    async with contextlib.aclosing(client.events(session, after=after)) as events:
        if as_json:
            async for item in events:
                view.add(item)
                console.out(item.to_json(), highlight=False)
                if done():
                    return
            return
        with LiveRegion(console) as region:
            screen = Screen(region, view)
            with contextlib.ExitStack() as stack:
                if answer_fd is not None:
                    answers = Answers(client, session, view, by, screen.soon, screen.say)
                    screen.prompt = answers.line
                    stack.enter_context(keyboard(answer_fd, answers.feed))
                screen.refresh()
                try:
                    async for item in events:
                        screen.show(view.add(item))
                        if done():
                            break
                finally:
                    screen.refresh()


@click.command()
@url_option
@token_option
@click.argument("session")
@click.option("--after", type=int, default=0, show_default=True, help="Start after this seq.")
@click.option("--json", "as_json", is_flag=True, help="Print one record per line instead of the live view.")
@click.option("--exit-idle", is_flag=True, help="Exit once no turn or job runs and no approval is pending.")
@click.option("--by", default=None, help="Who answers approvals here (recorded with the decision).")
def tail(url: str, token: str | None, session: str, after: int, as_json: bool, exit_idle: bool, by: str | None) -> None:
    """Follow SESSION live: what finished scrolls by, what is open stays in view.

    Finished messages, tool calls, jobs and decisions are printed once; below them, what is still
    open (the last lines of streaming messages, running jobs with progress, pending approvals)
    stays in view. In a terminal, a pending approval can be answered: y or n, then Enter.
    """

    def idle(view: SessionView) -> bool:
        return bool(view.state.seq > 0 and view.idle)

    interactive = not as_json and sys.stdin.isatty() and sys.stdout.isatty()

    async def go() -> None:
        async with make_client(url, session, token) as client:
            await tail_session(
                client,
                session,
                after,
                Console(),
                as_json,
                idle if exit_idle else None,
                answer_fd=sys.stdin.fileno() if interactive else None,
                by=by,
            )

    run(go())
