"""``sessionwire replay``: fold a session's records from a log offline."""

from __future__ import annotations

import json

import click

from ..backends import open_log
from ..state import SessionState, apply
from .common import run


@click.command()
@click.argument("db_url")
@click.argument("session")
@click.option("--until", "until", type=int, default=None, help="Stop at this seq.")
@click.option("--json", "as_json", is_flag=True, help="Export the records as JSON lines instead of the state.")
def replay(db_url: str, session: str, until: int | None, as_json: bool) -> None:
    """Fold SESSION's records from the log at DB_URL offline; print the state (or the records)."""
    url = db_url
    if url.startswith("sqlite:") and "mode=" not in url:
        # Offline and read-only: works while a server has the file open.
        url += ("&" if "?" in url else "?") + "mode=ro"

    async def go() -> None:
        try:
            log = open_log(url)
        except (ValueError, OSError) as exc:
            raise click.ClickException(f"cannot open the log {db_url}: {exc}") from None
        try:
            state, cursor = SessionState(), 0
            while until is None or cursor < until:
                records = await log.read(session, cursor, limit=1024)
                for record in records:
                    if until is not None and record.seq > until:
                        break
                    cursor = record.seq
                    if as_json:
                        click.echo(record.to_json())
                    else:
                        apply(state, record)
                if len(records) < 1024 or (records and until is not None and records[-1].seq >= until):
                    break
            if cursor == 0 and (await log.bounds(session))[1] == 0:
                raise click.ClickException(f"session {session!r} has no records in {db_url}")
            if not as_json:
                click.echo(json.dumps(state.to_dict(), indent=2))
        finally:
            await log.aclose()

    run(go())
