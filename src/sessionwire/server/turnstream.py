"""One turn of a session as another protocol's response stream (the AI SDK's, AG-UI's).

A :class:`TurnStream` subscribes to the session from a seq, feeds every record to a
:class:`Translator` (which keeps those of its turn and of the jobs its turn started, and
says what to send), and ends once the translator is done: the turn ended, or it waits for
an approval its client has to answer. The turn itself runs on in the session whatever the
stream does: a client that goes away cancels nothing. Also here: finding where a turn (or
an approval) starts in the log, for a replay from its beginning.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from collections.abc import Callable
from typing import Protocol

from starlette.types import Send

from ..backends import EventLog, Reply
from ..channel import Control, Session
from ..errors import Conflict, CursorExpired
from ..events import Record
from ..subscription import Subscription
from .context import Context
from .errors import HTTPError
from .sse import SubscriptionStream

logger = logging.getLogger("sessionwire.server")


class Translator(Protocol):
    """Turns a session's records into one protocol's frames for one turn."""

    done: bool
    """The response is complete (the turn ended, or waits for an answer from the client)."""

    waiting: str | None
    """The approval the turn waits for, once the translator met its request (the stream checks it)."""

    def opening(self) -> list[bytes]:
        """The frames that open the response."""
        ...

    def feed(self, record: Record) -> list[bytes]:
        """The frames a record of the session makes (none for other turns' records)."""
        ...

    def pause(self) -> list[bytes]:
        """The frames that end the response while the turn waits for :attr:`waiting`."""
        ...

    def closing(self) -> list[bytes]:
        """The frames after the last one (an end-of-stream marker), when the response completes."""
        ...

    def broken(self, reason: str) -> list[bytes]:
        """The frames that end a response cut short (the server stops, the session was deleted)."""
        ...


class TurnStream(SubscriptionStream):
    """An SSE response: the frames a :class:`Translator` makes of a session's records after ``after``."""

    def __init__(
        self,
        ctx: Context,
        session: Session,
        after: int,
        translator: Translator,
        headers: dict[str, str],
        credential: str | None = None,
    ) -> None:
        super().__init__(ctx, session, after, credential, list(headers.items()))
        self.translator = translator
        self.failed = False

    def opening(self) -> bytes:
        return b"".join(self.translator.opening())

    def tail(self) -> bytes:
        translator = self.translator
        if translator.done:
            return b"".join(translator.closing())
        # Cut short (the server stops, the session went, the translation failed): the client hears
        # it (an error it can resume after), never a clean end of a cut answer.
        reason = "the stream failed" if self.failed else "the stream ended before its turn"
        return b"".join(translator.broken(reason))

    async def pump(self, sub: Subscription, send: Send) -> None:
        try:
            await self._translate(sub, send)
        except OSError:
            raise  # the client is gone
        except Exception:
            logger.exception("the %s stream of session %s failed", type(self.translator).__name__, self.session.id)
            self.failed = True

    async def _translate(self, sub: Subscription, send: Send) -> None:
        translator, session = self.translator, self.session
        heartbeat = self.ctx.settings.heartbeat
        while not translator.done:
            batch = await sub.next_batch(heartbeat)
            if not batch:
                if sub.closed:
                    return
                await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
                continue
            frames: list[bytes] = []
            for item in batch:
                if isinstance(item, Control):
                    if item.control == "ended":
                        return  # the session was deleted (or the token rotated): nothing more comes
                    continue
                frames += translator.feed(item)
                if translator.waiting is not None:
                    approval = (await session.state()).approvals.get(translator.waiting)
                    if approval is not None and approval.status == "pending":
                        frames += translator.pause()
                    translator.waiting = None
                if translator.done:
                    break
            if frames:
                await send({"type": "http.response.body", "body": b"".join(frames), "more_body": True})


_PAGE = 1024  # records per read of seq_before


async def seq_before(
    log: EventLog, session: str, match: Callable[[Record], bool], first: Callable[[Record], bool] | None = None
) -> int | None:
    """The seq just before the first record of ``session`` that ``match`` accepts; None if none does.

    Read from the newest records back, and no further than a record that ``first`` accepts and
    nothing ``match`` accepts can precede (the runtime's ``turn.started``: the turn's id is new
    then; an approval's one request): finding
    what happened lately costs what happened since, not the session's whole history. Where
    retention dropped the older records, the first one kept that ``match`` accepts.
    """
    found: int | None = None
    floor, high = 0, (await log.bounds(session))[1]
    while high > floor:
        low = max(floor, high - _PAGE)
        try:
            page = await log.read(session, low, high - low)
        except CursorExpired as exc:  # older records are gone: look no further than the first one kept
            if exc.first - 1 <= floor:
                raise  # read from the first kept record, and expired all the same: never loop on it
            floor = exc.first - 1
            continue
        for record in reversed(page):
            if match(record):
                found = record.seq
                if first is not None and first(record):
                    return found - 1
        high = low
    return None if found is None else found - 1


_ADMITTING: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
_ADMISSION_TTL = 86400.0  # seconds a frontend message id keeps its turn (a retry within it streams that turn)
_ADMISSION_WAIT = 10.0  # seconds a request waits for another process admitting the same message


async def admit(ctx: Context, session: Session, message: str | None, text: str) -> tuple[str, int | None]:
    """The turn of a frontend's user message: ``(turn, after)`` of a new one, ``(turn, None)`` if it had one.

    A message id gets one turn, on every process: the first request to claim it in the store
    (the replies of :class:`~sessionwire.backends.Replies`, kept a day) dispatches it, and any
    other (a retry, the same request sent twice, to another process) streams that turn, even
    while it is queued and nothing of it is in the log yet.

    Raises:
        HTTPError: 422 for an id the log cannot hold; 409 for the id of another kind of message.
    """
    if message is None:
        dispatched = await ctx.require_runtime().dispatch(session.id, text)
        assert dispatched.turn is not None
        return dispatched.turn, dispatched.after
    if len(message) > 200:
        raise HTTPError(422, "invalid", "a message id has at most 200 characters")
    seen = (await session.state()).messages.get(message)
    if seen is not None and (seen.role != "user" or seen.turn is None):
        raise HTTPError(409, "message_exists", f"message {message!r} of session {session.id!r} is not a user's turn")
    replies = ctx.require_hub().store.replies
    key = hashlib.sha256(f"frontend message\0{session.id}\0{message}".encode()).hexdigest()
    lock = _ADMITTING.get(session.id)
    if lock is None:
        lock = _ADMITTING[session.id] = asyncio.Lock()
    async with lock:  # one claim at a time here; the store decides between processes
        deadline = asyncio.get_running_loop().time() + _ADMISSION_WAIT
        while (held := await replies.claim(key, "turn", _ADMISSION_WAIT)) is not None and not held.status:
            if asyncio.get_running_loop().time() > deadline:
                raise Conflict(f"message {message!r} is being admitted elsewhere; try again")
            await asyncio.sleep(0.02)  # another process admits it now
        if held is not None:
            turn = held.body.decode()
            if turn in (await session.state()).turns or any(
                entry == turn for entry, _ in await ctx.require_hub().store.membership.line(session.id)
            ):
                return turn, None
            # Its turn is nowhere (the session was deleted and created again): the id is free.
            await replies.drop(key)
            if await replies.claim(key, "turn", _ADMISSION_WAIT) is not None:
                raise Conflict(f"message {message!r} is being admitted elsewhere; try again")
        try:
            dispatched = await ctx.require_runtime().dispatch(session.id, text, message=message)
        except BaseException:
            await replies.drop(key)
            raise
        assert dispatched.turn is not None
        await replies.finish(key, Reply(fingerprint="turn", status=200, body=dispatched.turn.encode()), _ADMISSION_TTL)
        return dispatched.turn, dispatched.after


async def turn_start(ctx: Context, session: Session, turn: str) -> int:
    """The seq to stream ``turn`` from: just before its first record (now, if it has none: it is queued).

    Its first record is its ``turn.started``, unless retention dropped that: then whatever of it
    the log still holds, so a stream of a turn that ended still gets its end.
    """
    now = session.last_seq  # read first: a queued turn may start while the log is searched
    after = await seq_before(
        ctx.require_hub().log,
        session.id,
        lambda r: getattr(r.event, "turn", None) == turn,
        first=lambda r: r.type == "turn.started",  # of that turn: where the runtime's turns begin
    )
    return now if after is None else after
