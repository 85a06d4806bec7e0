"""Run the app with uvicorn so that open streams end at shutdown.

uvicorn waits for every open response before it shuts down, and an SSE response never
ends by itself: :class:`Server` tells the app to end its streams first.
"""

from __future__ import annotations

import logging
import re
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from .app import create_app
from .context import Context
from .settings import Settings


class Server(uvicorn.Server):
    """A uvicorn server that ends the app's streams at shutdown and exits 0 on SIGTERM."""

    def __init__(self, config: uvicorn.Config, ctx: Context) -> None:
        super().__init__(config)
        self.ctx = ctx

    async def shutdown(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self.ctx.stop_streams()
        await super().shutdown(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # A clean shutdown on SIGTERM/SIGINT: don't re-raise the signal afterwards.
        self._captured_signals.clear()


_TOKEN_IN_QUERY = re.compile(r"(?<=[?&]token=)[^&\s]+")


class RedactTokens(logging.Filter):
    """Hide ``?token=`` values (EventSource's way of authenticating) in access log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN_IN_QUERY.sub("***", a) if isinstance(a, str) else a for a in record.args)
        return True


def make_server(settings: Settings, app: Starlette | None = None) -> Server:
    """A :class:`Server` for ``app`` (default: ``create_app(settings)``) on the settings' host and port."""
    app = app or create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(max(1, settings.shutdown_timeout)),
        ws="websockets-sansio",
        # Records are small JSON already encoded once; compressing each frame per client costs
        # more CPU and memory per connection than it saves on loopback and LANs.
        ws_per_message_deflate=False,
        # A client message is held whole before the app sees it: over the body limit (plus room
        # for its envelope) the socket is closed (1009) without buffering more of it.
        ws_max_size=settings.max_body + 64 * 1024,
        lifespan="on",
    )
    return Server(config, app.state.wire)


def run(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM."""
    logging.getLogger("sessionwire").setLevel(settings.log_level.upper())
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
    make_server(settings).run()
