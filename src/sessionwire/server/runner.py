"""Run the app with uvicorn so that open streams end at shutdown.

uvicorn waits for every open response before it shuts down, and an SSE response never
ends by itself: :class:`Server` tells the app to end its streams first.
"""

from __future__ import annotations

import logging
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
        lifespan="on",
    )
    return Server(config, app.state.wire)


def run(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM."""
    logging.getLogger("sessionwire").setLevel(settings.log_level.upper())
    make_server(settings).run()
