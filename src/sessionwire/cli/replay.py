"""``sessionwire replay``: read a session's records from a log offline, as a transcript, JSON lines or the state."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import click
from rich.console import Console

from ..backends import open_log
from ..backends.base import EventLog
from ..events import Record
from ..view import SessionView
from .common import run

_PAGE = 1024


async def records(log: EventLog, session: str, until: int | None) -> AsyncIterator[Record]:
    """``session``'s records in order, up to seq ``until`` (None: all), read a page at a time."""
    cursor = 0
    while until is None or cursor < until:
        page = await log.read(session, cursor, limit=_PAGE)
        for record in page:
            if until is not None and record.seq > until:
                return
            cursor = record.seq
            yield record
        if len(page) < _PAGE:
            return


@click.command()
@click.argument("db_url")
@click.argument("session")
@click.option("--until", "until", type=int, default=None, help="Stop at this seq.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON lines.")
@click.option("--state", "as_state", is_flag=True, help="Print the folded state as JSON.")
def replay(db_url: str, session: str, until: int | None, as_json: bool, as_state: bool) -> None:
    """Print SESSION's transcript from the log at DB_URL, offline (or its records, or its state).

    The transcript says who said what, tool calls with their arguments and results, jobs and
    their outcome, approvals and their decisions, and errors; reasoning is labelled. What was
    still open at the last record read is listed at the end.
    """
    if as_json and as_state:
        raise click.UsageError("pass --json or --state, not both")
    url = db_url
    if url.startswith("sqlite:") and "mode=" not in url:
        # Offline and read-only: works while a server has the file open.
        url += ("&" if "?" in url else "?") + "mode=ro"
    # Never a live display: the transcript is printed line by line, also into a terminal.
    console = Console(highlight=False, soft_wrap=False)

    async def go() -> None:
        try:
            log = open_log(url)
        except (ValueError, OSError) as exc:
            raise click.ClickException(f"cannot open the log {db_url}: {exc}") from None
        try:
            view, seen = SessionView(session), 0
            async for record in records(log, session, until):
                seen += 1
                if as_json:
                    click.echo(record.to_json())
                elif as_state:
                    view.add(record)
                else:
                    for finished in view.add(record):
                        console.print(finished)
            if not seen and (await log.bounds(session))[1] == 0:
                raise click.ClickException(f"session {session!r} has no records in {db_url}")
            if as_state:
                click.echo(json.dumps(view.state.to_dict(), indent=2))
            elif not as_json and not view.idle:
                console.print(f"— still open at seq {view.state.seq}:", style="dim", markup=False)
                console.print(view.render(console))
        finally:
            await log.aclose()

    run(go())
