"""The web UI at ``/``: the built files when they exist, else how to build them."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

_NOT_BUILT = """<!doctype html>
<html><head><meta charset="utf-8"><title>sessionwire</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>sessionwire</h1>
<p>The server runs, but the web UI is not built (no <code>{index}</code>).</p>
<p>Build it with <code>make serve</code> or <code>scripts/setup.sh</code>, then reload.</p>
<p>The API is at <a href="/openapi.json">/openapi.json</a>; the records' schema at
<a href="/v1/schema">/v1/schema</a>.</p>
</body></html>
"""


def ui_routes(directory: Path) -> list[BaseRoute]:
    """Serve ``directory`` at ``/`` when it holds ``index.html``; else a page that says how to build it."""
    if (directory / "index.html").is_file():
        return [Mount("/", app=StaticFiles(directory=directory, html=True), name="ui")]

    async def not_built(request: Request) -> Response:
        return HTMLResponse(_NOT_BUILT.format(index=directory / "index.html"))

    return [Route("/", not_built, methods=["GET"])]
