"""What the client commands share: the ``--url`` and ``--token`` options, a client, errors as clean messages."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import click

from ..client import Client
from ..server.settings import DEFAULT_HOST, DEFAULT_PORT

DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
"""The server the client commands talk to unless ``--url`` or ``SESSIONWIRE_URL`` says otherwise."""

T = TypeVar("T")

url_option = click.option(
    "--url", envvar="SESSIONWIRE_URL", default=DEFAULT_URL, show_default=True, help="The server's URL."
)
token_option = click.option("--token", envvar="SESSIONWIRE_TOKEN", default=None, help="The session's token.")


def make_client(url: str, session: str | None, token: str | None) -> Client:
    """A client of ``url`` that holds ``session``'s token (``--token``, else the remembered one).

    Raises:
        click.UsageError: no token is known for the session.
    """
    from ..tokenstore import TokenStore

    client = Client(url)
    if session is not None:
        known = token or TokenStore().get(url, session)
        if known is None:
            raise click.UsageError(f"no token known for session {session!r} on {url}: pass --token")
        client.tokens[session] = known
    return client


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; what went wrong becomes a one-line error (exit code 1), not a traceback."""
    import httpx

    from ..errors import SessionwireError
    from ..tokenstore import TokenFileError

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
