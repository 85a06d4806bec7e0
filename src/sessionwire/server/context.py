"""What the handlers of one app share: settings, hub, runtime, idempotency memory, shutdown signal."""

from __future__ import annotations

import asyncio

from starlette.requests import HTTPConnection

from ..backends import SessionMeta
from ..hub import Hub
from ..runtime import AgentRuntime
from .errors import HTTPError
from .idempotency import Idempotency
from .push import Pushers
from .settings import Settings


class Context:
    """The state of one app instance (no module-level state: one per :func:`create_app`).

    Attributes:
        settings: The server settings.
        hub: The hub, set while the app runs (lifespan).
        runtime: The agent runtime, set while the app runs, or None when none is available.
        idempotency: The first replies to Idempotency-Keys, kept in the store.
        streams: Open SSE streams and WebSocket connections, by transport.
        pushers: The push groups that write caught-up SSE streams, one per session.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.hub: Hub | None = None
        self.runtime: AgentRuntime | None = None
        self.idempotency = Idempotency(
            lambda: self.require_hub().store.replies,
            ttl=settings.idempotency_ttl,
            enabled=settings.idempotency_keys > 0,
        )
        self.streams = {"sse": 0, "ws": 0}
        self.pushers = Pushers(settings.heartbeat)
        self._stopping: asyncio.Event | None = None
        self._stop_requested = False

    @property
    def stopping(self) -> asyncio.Event:
        """Set when the server shuts down: every open stream ends."""
        if self._stopping is None:
            self._stopping = asyncio.Event()
            if self._stop_requested:
                self._stopping.set()
        return self._stopping

    def stop_streams(self) -> None:
        """End every open stream now (called at shutdown, before uvicorn waits for connections)."""
        self._stop_requested = True
        if self._stopping is not None:
            self._stopping.set()

    def require_hub(self) -> Hub:
        """The hub; 503 when the app is not running."""
        if self.hub is None:
            raise HTTPError(503, "unavailable", "the server is not running (its lifespan has not started)")
        return self.hub

    def require_runtime(self) -> AgentRuntime:
        """The runtime; 503 when this server runs without one."""
        if self.runtime is None:
            raise HTTPError(503, "no_runtime", "this server runs no agent runtime")
        return self.runtime

    async def authorize(self, session_id: str, token: str | None) -> SessionMeta:
        """Check a token against a session (or the admin token); raises 401/403/404 errors."""
        return await self.require_hub().authorize(session_id, token, self.settings.admin_token)


def context(conn: HTTPConnection) -> Context:
    """The :class:`Context` of the app serving ``conn``."""
    ctx: Context = conn.app.state.wire
    return ctx


def request_token(conn: HTTPConnection, query: bool = False) -> str | None:
    """The token of a request: ``Authorization: Bearer <token>``, else (``query``) ``?token=``.

    ``?token=`` is for the event stream only, where EventSource cannot send a header: a token
    in a URL leaks into logs and histories, and a link must not be able to act.
    """
    header = conn.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return (conn.query_params.get("token") or None) if query else None
