"""Idempotency-Key: a retried POST gets the first response back and starts nothing twice.

Responses are remembered in memory, per process, for the last ``capacity`` keys (a
bounded LRU). A retry that reaches another process, or this one after a restart,
is executed again: put one process in front of a session's commands, or give
retries a short life, when that matters.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import msgspec
from starlette.responses import Response

from .errors import HTTPError


class Stored(msgspec.Struct, frozen=True):
    """A remembered response."""

    status: int
    body: bytes
    media_type: str


class IdempotencyStore:
    """Remembers the first response per (route, key) and replays it to retries."""

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, not {capacity}")
        self.capacity = capacity
        self.replays = 0
        self._done: OrderedDict[tuple[str, str], tuple[str, Stored]] = OrderedDict()
        self._running: dict[tuple[str, str], tuple[str, asyncio.Future[Stored]]] = {}

    async def run(
        self, scope: str, key: str | None, fingerprint: bytes, handler: Callable[[], Awaitable[Response]]
    ) -> Response:
        """Run ``handler`` once per ``(scope, key)``; a retry gets the first response (with ``Idempotent-Replayed``).

        Only successful (2xx) responses are remembered: a failed request may be retried.

        Raises:
            HTTPError: 409 when the key was used before with a different request.
        """
        if key is None or self.capacity == 0:
            return await handler()
        if not 1 <= len(key) <= 255:
            raise HTTPError(422, "invalid", "an Idempotency-Key has 1 to 255 characters")
        ident = (scope, key)
        digest = hashlib.sha256(fingerprint).hexdigest()
        done = self._done.get(ident)
        if done is not None:
            self._done.move_to_end(ident)
            return self._replay(ident, digest, *done)
        running = self._running.get(ident)
        if running is not None:
            first_digest, future = running
            stored = await asyncio.shield(future)
            return self._replay(ident, digest, first_digest, stored)
        future = asyncio.get_running_loop().create_future()
        self._running[ident] = (digest, future)
        try:
            response = await handler()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._running[ident]
        stored = Stored(response.status_code, bytes(response.body), response.media_type or "application/json")
        if not future.done():
            future.set_result(stored)
        if 200 <= response.status_code < 300:
            self._done[ident] = (digest, stored)
            while len(self._done) > self.capacity:
                self._done.popitem(last=False)
        return response

    def replay_done(self, scope: str, key: str | None, fingerprint: bytes) -> Response | None:
        """The remembered response of a finished request with this key and fingerprint, else None."""
        if key is None:
            return None
        ident = (scope, key)
        done = self._done.get(ident)
        if done is None or done[0] != hashlib.sha256(fingerprint).hexdigest():
            return None
        self._done.move_to_end(ident)
        return self._replay(ident, done[0], *done)

    def _replay(self, ident: tuple[str, str], digest: str, first_digest: str, stored: Stored) -> Response:
        if digest != first_digest:
            raise HTTPError(
                409, "idempotency_key_reused", f"Idempotency-Key {ident[1]!r} was used for a different request"
            )
        self.replays += 1
        return Response(
            stored.body,
            status_code=stored.status,
            media_type=stored.media_type,
            headers={"Idempotent-Replayed": "true"},
        )
