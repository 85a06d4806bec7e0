"""``sessionwire tail``: follow a session live."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import click
from rich.console import Console
from rich.live import Live

from ..client import Client
from ..view import SessionView
from .common import make_client, run, token_option, url_option


async def tail_session(
    client: Client,
    session: str,
    after: int,
    console: Console,
    as_json: bool = False,
    stop: Callable[[SessionView], bool] | None = None,
) -> None:
    """Follow a session: a live rich view (or JSON lines) until ``stop(view)`` is true or forever."""
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
        with Live(view.render(), console=console, refresh_per_second=10, transient=False) as live:
            async for item in events:
                view.add(item)
                live.update(view.render())
                if done():
                    return


@click.command()
@url_option
@token_option
@click.argument("session")
@click.option("--after", type=int, default=0, show_default=True, help="Start after this seq.")
@click.option("--json", "as_json", is_flag=True, help="Print one record per line instead of the live view.")
@click.option("--exit-idle", is_flag=True, help="Exit once no turn or job runs and no approval is pending.")
def tail(url: str, token: str | None, session: str, after: int, as_json: bool, exit_idle: bool) -> None:
    """Follow SESSION live: messages growing in place, jobs with progress, pending approvals."""

    def idle(view: SessionView) -> bool:
        return bool(view.state.seq > 0 and view.idle)

    async def go() -> None:
        async with make_client(url, session, token) as client:
            await tail_session(client, session, after, Console(), as_json, idle if exit_idle else None)

    run(go())
