"""The Python client: commands over HTTP and ``events()`` that resumes by itself.

async with Client("http://127.0.0.1:8765") as client:
    session = await client.create_session(title="demo")
    sent = await client.send(session.id, "hello")
    async for item in client.events(session.id, after=sent.after):
        print(item)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from typing import Any, Literal

import httpx
import msgspec

from .errors import (
    Conflict,
    CursorAhead,
    Forbidden,
    LifecycleViolation,
    NotFound,
    ServerError,
    SessionExists,
    SessionNotFound,
    SessionwireError,
    TurnRejected,
    Unauthorized,
)
from .events import AnyEvent, Record, encode_event, to_event
from .state import SessionState
from .subscription import Control, Item

_control_decoder = msgspec.json.Decoder(Control)


class CreatedSession(msgspec.Struct, frozen=True):
    """A session the client created: its id and token."""

    id: str
    token: str


class Accepted(msgspec.Struct, frozen=True):
    """A turn or job the server accepted: its id and the seq to subscribe after to see all of it."""

    id: str
    after: int


_BY_CODE: dict[str, type[SessionwireError]] = {
    "session_not_found": SessionNotFound,
    "cursor_ahead": CursorAhead,
    "turn_rejected": TurnRejected,
    "session_exists": SessionExists,
}
_BY_STATUS: dict[int, type[SessionwireError]] = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict}


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        err = response.json()["error"]
        code, message = str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "error", response.text[:200]
    status = response.status_code
    if status == 409 and code in LifecycleViolation.RULES:
        raise LifecycleViolation(code, "", "", message)
    kind = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if kind is None:
        raise ServerError(status, code, message)
    # The server's message already names the ids; keep it as is (the classes' own
    # constructors would rebuild it from ids we don't have).
    exc = kind.__new__(kind)
    Exception.__init__(exc, message)
    raise exc


class Client:
    """An async client of a sessionwire server.

    Args:
        base_url: The server, e.g. ``http://127.0.0.1:8765``.
        token: A token to use for every session (e.g. the admin token) when none is known for it.
        tokens: Known session tokens, by session id; sessions created here are added.
        timeout: Timeout of each request in seconds (streams have no read timeout).
        http: An ``httpx.AsyncClient`` to use instead of a new one.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        tokens: dict[str, str] | None = None,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.tokens: dict[str, str] = dict(tokens or {})
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (if this client opened them)."""
        if self._own_http:
            await self.http.aclose()

    def _headers(self, session: str | None, idempotency_key: str | None = None) -> dict[str, str]:
        headers: dict[str, str] = {}
        token = self.tokens.get(session, self.token) if session else self.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    async def _request(
        self,
        method: str,
        path: str,
        session: str | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        content = None if json is None else msgspec.json.encode(json)
        headers = self._headers(session, idempotency_key)
        if content is not None:
            headers["Content-Type"] = "application/json"
        response = await self.http.request(method, self.base_url + path, content=content, headers=headers)
        _raise_for(response)
        return response.json() if response.content else None

    # ------------------------------------------------------------------ sessions

    async def create_session(
        self, id: str | None = None, title: str | None = None, *, idempotency_key: str | None = None
    ) -> CreatedSession:
        """Create a session; its token is remembered in :attr:`tokens`.

        ``idempotency_key`` (at least 32 characters, say ``str(uuid.uuid4())``: it is the secret
        with which a retry gets the token back) makes a retry return the same session and token.
        """
        body = {k: v for k, v in {"id": id, "title": title}.items() if v is not None}
        data = await self._request("POST", "/v1/sessions", json=body, idempotency_key=idempotency_key)
        self.tokens[data["session"]] = data["token"]
        return CreatedSession(data["session"], data["token"])

    async def sessions(self) -> list[dict[str, Any]]:
        """Every session with its title and last activity (needs the admin token as ``token``)."""
        return list((await self._request("GET", "/v1/sessions"))["sessions"])

    async def state(self, session: str) -> SessionState:
        """The session's folded state (its ``seq`` is the last record it includes)."""
        data = await self._request("GET", f"/v1/sessions/{session}", session)
        return SessionState.from_dict(data["state"])

    async def rotate_token(self, session: str, *, idempotency_key: str | None = None) -> str:
        """Give the session a new token (remembered); the old one stops working.

        With ``idempotency_key`` (at least 32 characters), a retry whose first answer was lost
        (sent with the old token, which this client still holds then) gets the same new token back.
        """
        data = await self._request("POST", f"/v1/sessions/{session}/token", session, None, idempotency_key)
        self.tokens[session] = data["token"]
        return str(data["token"])

    async def rename(self, session: str, title: str, *, idempotency_key: str | None = None) -> int:
        """Rename the session (``session.renamed``, which every subscriber sees); the seq of that record."""
        data = await self._request("POST", f"/v1/sessions/{session}/title", session, {"title": title}, idempotency_key)
        return int(data["seq"])

    async def delete_session(self, session: str) -> None:
        """Delete a session (needs the admin token as ``token``)."""
        await self._request("DELETE", f"/v1/sessions/{session}", None)

    # ------------------------------------------------------------------ commands

    async def send(self, session: str, text: str, *, idempotency_key: str | None = None) -> Accepted:
        """Send a turn; returns its id and the seq to subscribe after to see all of it."""
        data = await self._request("POST", f"/v1/sessions/{session}/turns", session, {"text": text}, idempotency_key)
        return Accepted(data["turn"], data["after"])

    async def start_job(self, session: str, title: str, prompt: str, *, idempotency_key: str | None = None) -> Accepted:
        """Start a background job."""
        data = await self._request(
            "POST", f"/v1/sessions/{session}/jobs", session, {"title": title, "prompt": prompt}, idempotency_key
        )
        return Accepted(data["job"], data["after"])

    async def cancel_turn(self, session: str, turn: str) -> None:
        """Ask a turn to stop (its terminal event says when it did)."""
        await self._request("POST", f"/v1/sessions/{session}/turns/{turn}/cancel", session)

    async def cancel_job(self, session: str, job: str) -> None:
        """Ask a job to stop."""
        await self._request("POST", f"/v1/sessions/{session}/jobs/{job}/cancel", session)

    async def resolve_approval(
        self, session: str, approval: str, decision: Literal["approve", "deny"], by: str | None = None
    ) -> None:
        """Approve or deny a pending approval."""
        body: dict[str, Any] = {"decision": decision}
        if by is not None:
            body["by"] = by
        await self._request("POST", f"/v1/sessions/{session}/approvals/{approval}", session, body)

    async def publish(
        self, session: str, events: Iterable[AnyEvent | dict[str, Any]], *, idempotency_key: str | None = None
    ) -> list[int]:
        """Append events (typed or wire-form dicts) to a session; returns their seqs."""
        wire = [msgspec.json.decode(encode_event(to_event(e))) for e in events]
        data = await self._request(
            "POST", f"/v1/sessions/{session}/records", session, {"events": wire}, idempotency_key
        )
        return list(data["seqs"])

    # ------------------------------------------------------------------ events

    async def events(
        self, session: str, after: int = 0, *, backoff: float = 0.1, max_backoff: float = 5.0
    ) -> AsyncGenerator[Item, None]:
        """The session's records after ``after`` and its control frames, forever, across reconnects.

        Reconnects with exponential backoff and resumes from the last seq it yielded: no seq
        is yielded twice or skipped. When the server's log no longer holds what comes next,
        a ``snapshot`` :class:`Control` frame (the state at ``at``) comes before the tail. Ends
        after an ``ended`` frame whose ``reason`` is ``session_deleted``.

        Raises:
            Unauthorized, Forbidden, SessionNotFound: the session can't be read with this token.
            CursorAhead: ``after`` is beyond the session's last seq.
        """
        last = after
        delay = backoff
        while True:
            try:
                async for item in self._stream(session, last):
                    if isinstance(item, Record):
                        if item.seq <= last:
                            continue
                        last = item.seq
                    elif item.control == "snapshot" and item.at is not None:
                        if item.at <= last:
                            continue
                        last = item.at
                    delay = backoff
                    yield item
                    if isinstance(item, Control) and item.control == "ended" and item.reason == "session_deleted":
                        return  # the session is gone: nothing more will come
            except httpx.TransportError:
                pass  # the connection broke: reconnect
            except ServerError as exc:
                if exc.status < 500:
                    raise  # 5xx: the server is restarting or overloaded; try again
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(max_backoff, delay * 2)

    async def _stream(self, session: str, after: int) -> AsyncIterator[Item]:
        headers = self._headers(session)
        headers["Last-Event-ID"] = str(after)
        headers["Accept"] = "text/event-stream"
        url = f"{self.base_url}/v1/sessions/{session}/events"
        timeout = httpx.Timeout(self.http.timeout.connect, read=None)
        async with self.http.stream("GET", url, headers=headers, timeout=timeout) as response:
            if not response.is_success:
                await response.aread()
                _raise_for(response)
            ident, data = "", ""
            async for line in response.aiter_lines():
                if line == "":
                    if data:
                        item = _decode_frame(ident, data)
                        if item is not None:
                            yield item
                    ident, data = "", ""
                elif line.startswith("data:"):
                    data = line[5:].lstrip(" ")
                elif line.startswith("id:"):
                    ident = line[3:].strip()


def _decode_frame(ident: str, data: str) -> Item | None:
    """A frame with an id is a record; one without is a control frame (None: one this client doesn't know)."""
    if not ident:
        try:
            return _control_decoder.decode(data)
        except msgspec.ValidationError:
            if '"seq"' not in data:
                return None  # a newer server's control frame: readers skip what they don't know
    return Record.from_json(data)


__all__ = ["Accepted", "Client", "CreatedSession", "ServerError"]
