"""Cross-site requests: which origins may change state, and which bodies a browser form cannot forge.

A browser sends ``Origin`` with every cross-origin request, with every POST, and with every
WebSocket upgrade. A request that carries one must come from an allowed origin
(``--allowed-origin``) or from the server's own: ``--public-url``, else ``http://<host>:<port>``
from the settings, with the loopback names when it listens on loopback or on every interface.
The server's origin never comes from a ``Host`` header that names a domain, which a
DNS-rebinding page controls; one that names an IP address or ``localhost`` (a published Docker
port, an SSH forward, a LAN address) does count, with the request's scheme. Requests without
``Origin`` (curl, the CLI, the Python and Node clients) pass.

A POST with a body, and every ``POST /v1/sessions``, must say ``Content-Type:
application/json``: a cross-site form or ``text/plain`` POST (sent without a preflight) cannot.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response
from .settings import Settings

__all__ = ["CrossSite", "origin_allowed", "own_origins"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_EVERY = ("0.0.0.0", "::", "")
_CHANGES = (b"POST", b"PUT", b"PATCH", b"DELETE")


def normalized(origin: str) -> str | None:
    """``scheme://host:port`` in lower case with the port explicit; None if it is not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}:{port or (443 if parts.scheme == 'https' else 80)}"


def own_origins(settings: Settings) -> set[str]:
    """The origins of the server itself, from its settings only."""
    hosts = [settings.host] if settings.host not in _EVERY else []
    if settings.host in _LOOPBACK or settings.host in _EVERY:
        hosts += _LOOPBACK
    origins = {normalized(f"http://{f'[{h}]' if ':' in h else h}:{settings.port}") for h in hosts}
    if settings.public_url:
        origins.add(normalized(settings.public_url))
    return {o for o in origins if o is not None}


def addressed_origin(scope: Scope) -> str | None:
    """The origin a request was addressed to, when its ``Host`` names an IP address or ``localhost``.

    That origin is the server's own (Docker's published ports, SSH forwards, a LAN address):
    a DNS-rebinding page, which must use a domain name of its own, cannot produce it.
    """
    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
    value = normalized(f"{scheme}://{host}") if host else None
    if value is None:
        return None
    name = urlsplit(value).hostname or ""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return value if name == "localhost" else None
    return value


def origin_allowed(
    settings: Settings, origin: str | None, own: Iterable[str] | None = None, scope: Scope | None = None
) -> bool:
    """Whether a request with this ``Origin`` header may change state (or open a WebSocket)."""
    if origin is None:
        return True
    allowed = settings.allowed_origins
    if "*" in allowed or origin in allowed:
        return True
    value = normalized(origin)
    if value is None:
        return False  # "null" (a sandboxed page, a file) and anything that is not an origin
    if value in {normalized(a) for a in allowed}:
        return True
    if scope is not None and value == addressed_origin(scope):
        return True
    return value in (own_origins(settings) if own is None else own)


class CrossSite:
    """ASGI middleware: refuse state-changing requests from foreign origins (403) and non-JSON POST bodies (415)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.own = own_origins(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"].encode() not in _CHANGES:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        if not origin_allowed(self.settings, None if origin is None else origin.decode("latin-1"), self.own, scope):
            response = error_response(
                403,
                "origin_not_allowed",
                "this server does not take requests from that origin (see --allowed-origin and --public-url)",
            )
            await response(scope, receive, send)
            return
        if scope["method"] == "POST" and (_has_body(headers) or scope["path"] == "/v1/sessions"):
            media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
            if media != b"application/json":
                response = error_response(
                    415, "unsupported_media_type", "a POST body is JSON: send Content-Type: application/json"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return b"transfer-encoding" in headers
