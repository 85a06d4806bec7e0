"""The HTTP, SSE and WebSocket server: ``create_app(settings)`` and ``run(settings)``."""

from __future__ import annotations

from .app import create_app
from .runner import Server, make_server, run
from .settings import Settings

__all__ = ["Server", "Settings", "create_app", "make_server", "run"]
