"""The ASGI app factory: ``create_app(settings)`` builds a fresh app; nothing lives at module level."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ..channel import ChannelOptions
from ..errors import SessionwireError
from ..events import InvalidEvent
from ..hub import Hub
from ..runtime import AgentRuntime
from ..schema import json_schema
from . import agui, aisdk, commands, metrics, sessions, sse, ws
from .agent import open_runtime
from .context import Context, context
from .errors import HTTPError, error_response, handle_error, handle_http_exception
from .methods import AllowedMethods
from .openapi import openapi
from .origin import CrossSite
from .responses import json_response
from .settings import Settings, default_static_dir
from .static import ui_routes


async def _schema(request: Request) -> Response:
    return json_response(json_schema())


async def _openapi(request: Request) -> Response:
    return json_response(openapi())


async def _healthz(request: Request) -> Response:
    """200 ``{"ok": true, "runtime"}`` while the store answers; 503 with ``reason`` while it does not."""
    ctx = context(request)
    runtime = ctx.runtime is not None
    if ctx.hub is None:
        return json_response({"ok": False, "runtime": runtime, "reason": "the server is not serving"}, status=503)
    try:
        await ctx.hub.log.ping()
    except SessionwireError as exc:
        return json_response({"ok": False, "runtime": runtime, "reason": str(exc)}, status=503)
    return json_response({"ok": True, "runtime": runtime})


async def _internal_error(request: Request, exc: Exception) -> Response:
    return error_response(500, "internal", f"internal error: {type(exc).__name__}")


def create_app(
    settings: Settings | None = None,
    *,
    hub: Hub | None = None,
    runtime: AgentRuntime | Literal[False] | None = None,
    channel_options: ChannelOptions | None = None,
) -> Starlette:
    """Build the sessionwire ASGI app.

    Args:
        settings: Server settings (default: from the environment).
        hub: A hub to serve; by default the app opens one on ``settings.store_url`` for its lifespan.
        runtime: An agent runtime; by default the app runs the one ``settings.agent`` names, on its hub.
            Pass ``False`` to run without one (the command routes then answer 503).
        channel_options: Bounds of each session's channel, for the hub the app opens.

    The app's :class:`~sessionwire.server.context.Context` is ``app.state.wire``; call its
    ``stop_streams()`` at shutdown so open streams end (:func:`sessionwire.server.run` does).
    """
    settings = settings or Settings.load()
    ctx = Context(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if hub is None:
                prepare_store(settings.store_url)
                ctx.hub = await stack.enter_async_context(Hub.open(settings.store_url, channel_options))
            else:
                ctx.hub = hub
            if runtime is None:
                ctx.runtime = await stack.enter_async_context(open_runtime(settings, ctx.hub))
            elif runtime is not False:
                ctx.runtime = runtime
            try:
                yield
            finally:
                ctx.stop_streams()
                ctx.runtime = None
        ctx.hub = None

    api: list[BaseRoute] = [
        *sessions.routes,
        *commands.routes,
        *aisdk.routes,
        *agui.routes,
        *sse.routes,
        *ws.routes,
        *metrics.routes,
        Route("/v1/schema", _schema, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        Route("/healthz", _healthz, methods=["GET"]),
    ]
    routes = [*api, *ui_routes(Path(settings.static_dir) if settings.static_dir else default_static_dir())]
    middleware = []
    if settings.allowed_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.allowed_origins,
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
                expose_headers=["Idempotent-Replayed"],
            )
        )
    # Inside CORS, so that what it refuses to an allowed origin still carries the CORS headers.
    middleware.append(Middleware(AllowedMethods, routes=api))
    middleware.append(Middleware(CrossSite, settings=settings))
    app = App(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            HTTPError: handle_error,
            SessionwireError: handle_error,
            InvalidEvent: handle_error,
            HTTPException: handle_http_exception,
            Exception: _internal_error,
        },
    )
    app.state.wire = ctx
    return app


class App(Starlette):
    """The app: a Starlette app that also hands its endpoints the server's own ``send``.

    An open stream writes its records with it (``scope["sessionwire.send"]``), past the app's
    middleware, which looks at the start of a response only (error pages, CORS and
    cross-site headers): every stream write costs one call, not five. Middleware wrapped
    around the app from outside still sees every write; middleware added to the app itself
    (``add_middleware``) sees a stream's start, not its writes. A caught-up SSE stream's writes
    run in its session's push task, in the stream's context (see :mod:`.push`): a send wrapper
    must not need a task of its own (``asyncio.timeout`` inside it would time that task out).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["sessionwire.send"] = send
        await super().__call__(scope, receive, send)


def prepare_store(url: str) -> None:
    """Create the folder of a SQLite file store if it is missing."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
