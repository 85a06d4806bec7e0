"""JSON responses encoded with msgspec."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

_encoder = msgspec.json.Encoder()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response of ``data`` (anything msgspec encodes)."""
    return Response(_encoder.encode(data), status_code=status, media_type="application/json", headers=headers)


def raw_json_response(body: bytes, status: int = 200) -> Response:
    """A JSON response of already encoded bytes."""
    return Response(body, status_code=status, media_type="application/json")
