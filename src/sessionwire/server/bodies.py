"""Request bodies: read within the size limit, decode and validate with msgspec.

Malformed JSON is a 400, a missing or invalid field a 422, a body over the limit a 413.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar, Union

import msgspec
from starlette.requests import Request

from ..events import AnyEvent, Id, InvalidEvent, to_event
from .errors import HTTPError

T = TypeVar("T")

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]
Title = Annotated[str, msgspec.Meta(max_length=500)]


class CreateSession(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /v1/sessions``."""

    id: Union[Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")], None] = None
    title: Union[Title, None] = None


class Rename(msgspec.Struct):
    """``POST /v1/sessions/{id}/title``."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class SendTurn(msgspec.Struct):
    """``POST /v1/sessions/{id}/turns``."""

    text: Text


class StartJob(msgspec.Struct):
    """``POST /v1/sessions/{id}/jobs``."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    prompt: Text


class ResolveApproval(msgspec.Struct):
    """``POST /v1/sessions/{id}/approvals/{approval}``."""

    decision: Literal["approve", "deny"]
    by: Union[Id, None] = None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes; 413 beyond."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise HTTPError(400, "bad_request", f"Content-Length {length!r} is not a number") from None
        if declared > limit:
            raise HTTPError(413, "body_too_large", f"the body has {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, "body_too_large", f"the body has more than {limit} bytes, the limit")
        chunks.append(chunk)
    return b"".join(chunks)


def decode(body: bytes, kind: type[T], empty_ok: bool = False) -> T:
    """Decode a JSON body into ``kind``: 400 if it is not JSON, 422 if it does not fit."""
    if not body.strip():
        if empty_ok:
            return msgspec.convert({}, kind)
        raise HTTPError(422, "invalid", "a JSON body is required")
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise HTTPError(422, "invalid", str(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise HTTPError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None


def decode_any(body: bytes) -> Any:
    """Decode a JSON body of any shape: 400 if it is not JSON."""
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise HTTPError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None


def events_of(items: list[Any]) -> list[AnyEvent]:
    """A batch of events in wire form, typed; one bad event rejects the batch (422 naming its index)."""
    if not items:
        raise HTTPError(422, "invalid", "the batch holds no event")
    events: list[AnyEvent] = []
    for index, item in enumerate(items):
        try:
            events.append(to_event(item))
        except InvalidEvent as exc:
            raise HTTPError(422, "invalid_event", f"event {index}: {exc}") from None
    return events


async def read(request: Request, kind: type[T], limit: int, empty_ok: bool = False) -> tuple[T, bytes]:
    """Read and decode a body; returns the value and the raw bytes (for idempotency fingerprints)."""
    body = await read_body(request, limit)
    return decode(body, kind, empty_ok), body
