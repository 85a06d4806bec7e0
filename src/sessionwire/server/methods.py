"""Methods: ``OPTIONS`` says what a route takes (204 with ``Allow``); a method it does not take is 405 with ``Allow``.

Without this, the static files mounted at ``/`` (the web UI) answered a ``GET`` on a POST-only
API route 404, and ``OPTIONS`` 405.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response

__all__ = ["AllowedMethods"]


class AllowedMethods:
    """ASGI middleware over the API's routes (``OPTIONS`` preflights with CORS headers are CORS's)."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = [r for r in routes if isinstance(r, Route) and r.methods]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed: set[str] = set()
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                await self.app(scope, receive, send)
                return
            if match == Match.PARTIAL:
                allowed |= route.methods or set()
        if not allowed:
            await self.app(scope, receive, send)  # not an API route: the UI's files, or 404
            return
        allow = ", ".join(sorted(allowed | {"OPTIONS"}))
        if scope["method"] == "OPTIONS":
            response = Response(status_code=204, headers={"Allow": allow})
        else:
            message = f"{scope['method']} is not allowed here; this route takes {allow}"
            response = error_response(405, "method_not_allowed", message, headers={"Allow": allow})
        await response(scope, receive, send)
