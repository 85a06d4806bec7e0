"""HTTP errors: every failure becomes ``{"error": {"code", "message"}}`` with a fitting status."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import (
    Conflict,
    CursorAhead,
    CursorExpired,
    Forbidden,
    LogBehind,
    LogClosed,
    NotFound,
    SessionExists,
    SessionNotFound,
    SessionwireError,
    Unauthorized,
)
from ..events import InvalidEvent

_STATUS: list[tuple[type[BaseException], int]] = [
    (Unauthorized, 401),
    (Forbidden, 403),
    (SessionNotFound, 404),
    (NotFound, 404),
    (SessionExists, 409),
    (CursorAhead, 409),
    (CursorExpired, 409),
    (Conflict, 409),
    (LogClosed, 503),
    (LogBehind, 503),  # the store lost writes and they could not be put back at once: try again
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    503: "unavailable",
}

_encoder = msgspec.json.Encoder()


class HTTPError(Exception):
    """An error with its HTTP status and stable code, raised by handlers."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_body(code: str, message: str) -> bytes:
    """The JSON body of an error."""
    return _encoder.encode({"error": {"code": code, "message": message}})


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """A JSON error response."""
    return Response(error_body(code, message), status_code=status, media_type="application/json", headers=headers)


def to_http_error(exc: BaseException) -> HTTPError:
    """Translate an exception of the hub, the runtime or the protocol into an :class:`HTTPError`."""
    if isinstance(exc, HTTPError):
        return exc
    if isinstance(exc, InvalidEvent):
        return HTTPError(422, "invalid_event", str(exc))
    if isinstance(exc, SessionwireError):
        for kind, status in _STATUS:
            if isinstance(exc, kind):
                return HTTPError(status, exc.code, str(exc))
        return HTTPError(409, exc.code, str(exc))
    if isinstance(exc, ValueError):
        return HTTPError(422, "invalid", str(exc))
    raise exc


async def handle_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for sessionwire errors and :class:`HTTPError`."""
    err = to_http_error(exc)
    return error_response(err.status, err.code, err.message)


async def handle_http_exception(request: Request, exc: Any) -> Response:
    """Starlette's own HTTP errors (unknown route, wrong method) in our error shape."""
    if not isinstance(exc, HTTPException):
        raise exc
    status = exc.status_code
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if status == 404:
        message = f"no route for {request.method} {request.url.path}"
    return error_response(status, _HTTP_CODES.get(status, "error"), message, headers=dict(exc.headers or {}))
