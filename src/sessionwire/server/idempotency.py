"""Idempotency-Key: a retried POST gets the first reply back and starts nothing twice, on any process.

The first reply to each key is stored in the backend (:class:`~sessionwire.backends.Replies`:
the SQLite file, Redis with a TTL), for ``ttl`` seconds (default a day), so a retry that
reaches another process, or this one after a restart, gets it back. A request claims its
key before it runs: a retry that arrives meanwhile waits for the first reply (``wait``
seconds at most) and then answers 409 ``idempotency_key_in_use``; it never runs twice.
Only successful (2xx) replies are kept: a request that failed may be retried. The same
key with another body answers 409 ``idempotency_key_reused``.

Keys are scoped by the caller's credential: the stored key is a hash of the route, the
key and the token the request presents, so a key replayed with another token is another
request. A reply that hands out a credential (``POST /v1/sessions``, the token rotation)
goes back to whoever presents its key (and, for the rotation, the token it rotated): for
those routes the key is a secret and must have at least :data:`SECRET_KEY_LENGTH`
characters (a UUID will do). No key is stored in clear, and stored replies are sealed
with a key derived from the Idempotency-Key and the credential, so the store never holds
a usable token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable

from starlette.responses import Response

from ..backends import Replies, Reply
from ..errors import SessionwireError
from .errors import HTTPError

logger = logging.getLogger("sessionwire.server")

SECRET_KEY_LENGTH = 32
"""Least length of an Idempotency-Key on a route whose reply holds a credential."""

_HOLD = 60.0  # seconds a running request's claim lasts (a process that died mid-request frees it)
_POLL = 0.05  # seconds between two looks at a claim another request holds


class Idempotency:
    """Runs each keyed request once, with its first reply stored in the backend's :class:`Replies`.

    Args:
        replies: Where the replies live (the hub's store's), or a function that gives it.
        ttl: Seconds a reply is kept.
        wait: Seconds a retry waits for the first request's reply before answering 409.
        enabled: False: keys are ignored.
    """

    def __init__(
        self, replies: Callable[[], Replies], ttl: float = 86400.0, wait: float = 10.0, enabled: bool = True
    ) -> None:
        if ttl <= 0 or wait < 0:
            raise ValueError(f"ttl is > 0 and wait >= 0 seconds, not {ttl} and {wait}")
        self._replies = replies
        self.ttl = ttl
        self.wait = wait
        self.enabled = enabled
        self.replays = 0

    async def run(
        self,
        scope: str,
        key: str | None,
        credential: str | None,
        fingerprint: bytes,
        handler: Callable[[], Awaitable[Response]],
        secret: bool = False,
    ) -> Response:
        """Run ``handler`` once per (``scope``, ``key``, ``credential``); a retry gets the first reply.

        ``secret``: the reply holds a credential (its key must be long: see the module).

        Raises:
            HTTPError: 422 for a bad key, 409 ``idempotency_key_reused`` (another body) or
                ``idempotency_key_in_use`` (the first request still runs after ``wait``).
        """
        if key is None or not self.enabled:
            return await handler()
        ident, seal = _derive(scope, _checked(key, secret), credential)
        digest = hashlib.sha256(fingerprint).hexdigest()
        replies = self._replies()
        deadline = asyncio.get_running_loop().time() + self.wait
        while (held := await replies.claim(ident, digest, _HOLD)) is not None:
            if held.fingerprint != digest:
                raise _reused()
            if held.status:
                return self._replay(held, seal)
            if asyncio.get_running_loop().time() >= deadline:
                raise HTTPError(409, "idempotency_key_in_use", "a request with this Idempotency-Key is still running")
            await asyncio.sleep(_POLL)
        try:
            response = await handler()
        except BaseException:
            await asyncio.shield(replies.drop(ident))
            raise
        if 200 <= response.status_code < 300:
            nonce = secrets.token_hex(8)  # a keystream of its own, also for a key used again after expiry
            reply = Reply(
                fingerprint=digest,
                status=response.status_code,
                body=_xor(bytes(response.body), seal, nonce),
                media_type=response.media_type or "application/json",
                claim=nonce,
            )
            try:
                await asyncio.shield(replies.finish(ident, reply, self.ttl))
            except SessionwireError as exc:
                # Done, but not remembered: a retry waits out the claim (a minute), then runs again.
                logger.error("the reply to an Idempotency-Key could not be stored: %s", exc)
        else:
            await asyncio.shield(replies.drop(ident))
        return response

    async def replay_done(
        self, scope: str, key: str | None, credential: str | None, fingerprint: bytes, secret: bool = False
    ) -> Response | None:
        """The stored reply of a finished request with this key, credential and fingerprint, else None."""
        if key is None or not self.enabled:
            return None
        ident, seal = _derive(scope, _checked(key, secret), credential)
        held = await self._replies().get(ident)
        if held is None or not held.status or held.fingerprint != hashlib.sha256(fingerprint).hexdigest():
            return None
        return self._replay(held, seal)

    def _replay(self, held: Reply, seal: bytes) -> Response:
        self.replays += 1
        return Response(
            _xor(held.body, seal, held.claim),
            status_code=held.status,
            media_type=held.media_type,
            headers={"Idempotent-Replayed": "true"},
        )


def _checked(key: str, secret: bool) -> str:
    if not 1 <= len(key) <= 255:
        raise HTTPError(422, "invalid", "an Idempotency-Key has 1 to 255 characters")
    if secret and len(key) < SECRET_KEY_LENGTH:
        raise HTTPError(
            422,
            "invalid",
            f"the reply of this route holds a token: its Idempotency-Key is the secret that gets it back "
            f"and has at least {SECRET_KEY_LENGTH} characters (a random UUID will do)",
        )
    return key


def _derive(scope: str, key: str, credential: str | None) -> tuple[str, bytes]:
    """The stored key (a hash) and the sealing key of a request's reply (HMACs of the length-prefixed parts)."""
    parts = [part.encode() for part in (scope, key, credential or "")]
    material = b"".join(len(part).to_bytes(4, "big") + part for part in parts)
    ident = hmac.new(b"sessionwire idempotency key", material, hashlib.sha256).hexdigest()
    return ident, hmac.new(b"sessionwire idempotency seal", material, hashlib.sha256).digest()


def _xor(data: bytes, seal: bytes, nonce: str) -> bytes:
    """``data`` XOR a keystream of SHA-256(seal, nonce, counter): seals and unseals."""
    if not data:
        return data
    blocks = (len(data) + 31) // 32
    base = seal + nonce.encode() + b"\0"
    stream = b"".join(hashlib.sha256(base + i.to_bytes(8, "big")).digest() for i in range(blocks))
    n = len(data)
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream[:n], "big")).to_bytes(n, "big")


def _reused() -> HTTPError:
    # The key is not echoed: on some routes it is the secret that gets a token back.
    return HTTPError(409, "idempotency_key_reused", "this Idempotency-Key was used for a different request")
