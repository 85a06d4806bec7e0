"""The ``sessionwire`` command group and its commands: serve, new, send, schema, bench (the rest beside it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import quote

import click

from ..schema import json_schema
from ..server.settings import DEFAULT_HOST, DEFAULT_PORT
from .common import make_client, run, token_option, url_option
from .control import approve, cancel, deny
from .replay import replay
from .tail import tail


@click.group()
@click.version_option(package_name="sessionwire", prog_name="sessionwire")
def main() -> None:
    """sessionwire: a typed, durable, ordered event channel per agent conversation."""


@main.command()
def schema() -> None:
    """Print the JSON Schema of the records."""
    click.echo(json.dumps(json_schema(), indent=2))


@main.command()
@click.option("--host", default=None, help=f"Interface to listen on [default: {DEFAULT_HOST}].")
@click.option("--port", type=int, default=None, help=f"Port to listen on [default: {DEFAULT_PORT}].")
@click.option("--store", default=None, help="Event log URL [default: a SQLite file in the user's data directory].")
@click.option("--agent", type=click.Choice(["scripted", "openai"]), default=None, help="The agent [default: scripted].")
@click.option("--token-delay-ms", type=float, default=None, help="Scripted agent: ms per token [default: 20].")
@click.option("--log-level", default=None, help="uvicorn log level [default: info].")
@click.option("--admin-token", default=None, help="A token that acts on every session.")
@click.option("--allowed-origin", "allowed_origins", multiple=True, help="An origin allowed by CORS and WebSocket.")
@click.option("--policy", type=click.Choice(["queue", "reject", "interrupt"]), default=None, help="Turn policy.")
@click.option("--model", default=None, help="--agent openai: the model name.")
@click.option("--openai-base-url", default=None, help="--agent openai: the API's base URL.")
@click.option(
    "--max-body", type=int, default=None, help="Largest HTTP body or WebSocket message, in bytes [default: 1 MiB]."
)
@click.option("--public-url", default=None, help="The URL browsers reach the server at (behind a proxy, say).")
def serve(**flags: Any) -> None:
    """Run the server (settings also from SESSIONWIRE_* environment variables)."""
    from ..server import Settings
    from ..server import run as run_server

    try:
        settings = Settings.load(**flags)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _check_store(settings.store_url)
    click.echo(f"sessionwire serving {settings.store_url} at {settings.url}/", err=True)
    run_server(settings)


def _check_store(url: str) -> None:
    """Say clearly, before uvicorn starts, that a SQLite store is already served by another process."""
    if not url.startswith("sqlite:") or "mode=ro" in url:
        return
    from ..backends import open_log
    from ..errors import StoreLocked
    from ..server.app import prepare_store

    prepare_store(url)
    try:
        log = open_log(url)
    except StoreLocked as exc:
        raise click.ClickException(
            f"{exc}. Is another `sessionwire serve` running on it? Choose another file with --store, "
            "or share sessions between processes with a redis:// store"
        ) from None
    asyncio.run(log.aclose())


@main.command()
@url_option
@click.option("--title", default=None, help="The session's title.")
@click.option("--id", "session_id", default=None, help="The session's id [default: a new one].")
def new(url: str, title: str | None, session_id: str | None) -> None:
    """Create a session, remember its token and print its id (on stderr: a link that opens it in the web UI)."""
    from ..tokenstore import TokenFileError, TokenStore

    async def go() -> None:
        async with make_client(url, None, None) as client:
            created = await client.create_session(session_id, title)
        try:
            TokenStore().put(url, created.id, created.token)
        except TokenFileError as exc:
            # The session exists now: don't lose its token with it.
            raise click.ClickException(
                f"session {created.id} was created but its token was not saved ({exc}); "
                f"pass it with --token {created.token}"
            ) from None
        click.echo(created.id)
        click.echo(f"open it in the web UI: {web_link(url, created.id, created.token)}", err=True)
        click.echo(
            "(the link carries the session's token: whoever holds it can read and act in the conversation)", err=True
        )

    run(go())


@main.command()
@url_option
@token_option
@click.argument("session")
@click.argument("text")
@click.option("--follow", is_flag=True, help="Print the reply as it streams, until the turn ends.")
def send(url: str, token: str | None, session: str, text: str, follow: bool) -> None:
    """Send a turn to SESSION; print the turn id (or, with --follow, the reply)."""
    from ..events import Record

    async def go() -> None:
        async with make_client(url, session, token) as client:
            accepted = await client.send(session, text)
            if not follow:
                click.echo(accepted.id)
                return
            async with contextlib.aclosing(client.events(session, after=accepted.after)) as events:
                async for item in events:
                    if not isinstance(item, Record) or getattr(item.event, "turn", None) != accepted.id:
                        continue
                    kind = item.type
                    if kind == "message.delta" and getattr(item.event, "kind", "text") == "text":
                        click.echo(item.event.text, nl=False)  # type: ignore[union-attr]
                    elif kind in ("turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"):
                        click.echo("")
                        if kind != "turn.completed":
                            raise click.ClickException(f"turn {accepted.id} {kind.split('.')[1]}")
                        return

    run(go())


@main.command()
@click.option("--full", is_flag=True, help="The long runs (many minutes) instead of the quick suite (about a minute).")
@click.option("--tiny", is_flag=True, help="A few seconds: proves every part runs; its figures mean nothing.")
@click.option("--out", default="benchmarks/out", show_default=True, help="Folder of report.md and its plots.")
@click.option("--only", multiple=True, help="Run only this part (repeatable): fanout, encode, durable, ...")
def bench(full: bool, tiny: bool, out: str, only: tuple[str, ...]) -> None:
    """Run the benchmark suite; every figure sits beside a baseline measured in the same run."""
    from ..bench import main as bench_main

    argv = ["--out", out]
    if full:
        argv.append("--full")
    if tiny:
        argv.append("--tiny")
    if only:
        argv += ["--only", *only]
    raise SystemExit(bench_main(argv))


def web_link(url: str, session: str, token: str) -> str:
    """The address that opens ``session`` in the web UI served at ``url``, its token in the fragment."""
    return f"{url.rstrip('/')}/#/s/{quote(session, safe='')}?token={quote(token, safe='')}"


for command in (tail, replay, approve, deny, cancel):
    main.add_command(command)
