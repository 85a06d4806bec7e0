"""The ``sessionwire`` command line: serve, new, send, tail, replay, schema."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.live import Live

from .schema import json_schema
from .server.settings import DEFAULT_HOST, DEFAULT_PORT

DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"

url_option = click.option(
    "--url", envvar="SESSIONWIRE_URL", default=DEFAULT_URL, show_default=True, help="The server's URL."
)
token_option = click.option("--token", envvar="SESSIONWIRE_TOKEN", default=None, help="The session's token.")


@click.group()
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
    from .server import Settings, run

    try:
        settings = Settings.load(**flags)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _check_store(settings.store_url)
    click.echo(f"sessionwire serving {settings.store_url} at {settings.url}/", err=True)
    run(settings)


def _check_store(url: str) -> None:
    """Say clearly, before uvicorn starts, that a SQLite store is already served by another process."""
    if not url.startswith("sqlite:") or "mode=ro" in url:
        return
    from .backends import open_log
    from .errors import StoreLocked
    from .server.app import prepare_store

    prepare_store(url)
    try:
        log = open_log(url)
    except StoreLocked as exc:
        raise click.ClickException(
            f"{exc}. Is another `sessionwire serve` running on it? Choose another file with --store, "
            "or share sessions between processes with a redis:// store"
        ) from None
    asyncio.run(log.aclose())


def _client(url: str, session: str | None, token: str | None) -> Any:
    from .client import Client
    from .tokenstore import TokenStore

    client = Client(url)
    if session is not None:
        known = token or TokenStore().get(url, session)
        if known is None:
            raise click.UsageError(f"no token known for session {session!r} on {url}: pass --token")
        client.tokens[session] = known
    return client


def _run(coro: Any) -> Any:
    import httpx

    from .errors import SessionwireError
    from .tokenstore import TokenFileError

    try:
        return asyncio.run(coro)
    except SessionwireError as exc:
        raise click.ClickException(str(exc)) from None
    except httpx.TransportError as exc:
        try:
            where = f"the server at {exc.request.url.scheme}://{exc.request.url.netloc.decode()}"
        except RuntimeError:  # no request attached
            where = "the server"
        raise click.ClickException(f"cannot reach {where}: {exc or type(exc).__name__}") from None
    except TokenFileError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        sys.exit(130)


@main.command()
@url_option
@click.option("--title", default=None, help="The session's title.")
@click.option("--id", "session_id", default=None, help="The session's id [default: a new one].")
def new(url: str, title: str | None, session_id: str | None) -> None:
    """Create a session, remember its token and print its id."""
    from .tokenstore import TokenFileError, TokenStore

    async def go() -> None:
        async with _client(url, None, None) as client:
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

    _run(go())


@main.command()
@url_option
@token_option
@click.argument("session")
@click.argument("text")
@click.option("--follow", is_flag=True, help="Print the reply as it streams, until the turn ends.")
def send(url: str, token: str | None, session: str, text: str, follow: bool) -> None:
    """Send a turn to SESSION; print the turn id (or, with --follow, the reply)."""
    from .events import Record

    async def go() -> None:
        async with _client(url, session, token) as client:
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

    _run(go())


async def tail_session(
    client: Any,
    session: str,
    after: int,
    console: Console,
    as_json: bool = False,
    stop: Callable[[Any], bool] | None = None,
) -> None:
    """Follow a session: a live rich view (or JSON lines) until ``stop(view)`` is true or forever."""
    from .view import SessionView

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


@main.command()
@url_option
@token_option
@click.argument("session")
@click.option("--after", type=int, default=0, show_default=True, help="Start after this seq.")
@click.option("--json", "as_json", is_flag=True, help="Print one record per line instead of the live view.")
@click.option("--exit-idle", is_flag=True, help="Exit once no turn or job runs and no approval is pending.")
def tail(url: str, token: str | None, session: str, after: int, as_json: bool, exit_idle: bool) -> None:
    """Follow SESSION live: messages growing in place, jobs with progress, pending approvals."""

    def idle(view: Any) -> bool:
        return bool(view.state.seq > 0 and view.idle)

    async def go() -> None:
        async with _client(url, session, token) as client:
            await tail_session(client, session, after, Console(), as_json, idle if exit_idle else None)

    _run(go())


@main.command()
@click.argument("db_url")
@click.argument("session")
@click.option("--until", "until", type=int, default=None, help="Stop at this seq.")
@click.option("--json", "as_json", is_flag=True, help="Export the records as JSON lines instead of the state.")
def replay(db_url: str, session: str, until: int | None, as_json: bool) -> None:
    """Fold SESSION's records from the log at DB_URL offline; print the state (or the records)."""
    from .backends import open_log
    from .state import SessionState, apply

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

    _run(go())


@main.command()
@click.option("--full", is_flag=True, help="The long runs (many minutes) instead of the quick suite (about a minute).")
@click.option("--tiny", is_flag=True, help="A few seconds: proves every part runs; its figures mean nothing.")
@click.option("--out", default="benchmarks/out", show_default=True, help="Folder of report.md and its plots.")
@click.option("--only", multiple=True, help="Run only this part (repeatable): fanout, encode, durable, ...")
def bench(full: bool, tiny: bool, out: str, only: tuple[str, ...]) -> None:
    """Run the benchmark suite; every figure sits beside a baseline measured in the same run."""
    from .bench import main as bench_main

    argv = ["--out", out]
    if full:
        argv.append("--full")
    if tiny:
        argv.append("--tiny")
    if only:
        argv += ["--only", *only]
    raise SystemExit(bench_main(argv))


if __name__ == "__main__":
    main()
