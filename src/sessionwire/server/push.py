"""Live SSE streams written by one task per session, not woken one by one.

A stream that has caught up with its session joins the session's push group. On each
delivery the group's one task takes the new records of every member through the member's
own subscription (its cursor moves as for a batch), encodes each batch's frames once, and
writes them to every member's connection. A member that has had nothing for a heartbeat
interval leaves for its own task to write the heartbeat, and joins again.

A member leaves, and its stream's own task pulls again as before, when its subscription
cannot take from the plain live path at once (it lags, the feed is behind, it was ended,
the session closed), when a write fails, or when a write would have to wait for its
client: that write is finished by a task of its own, so one slow client never holds up
the others, and the stream goes on only once it is done.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from types import CoroutineType
from typing import Any

from starlette.types import Message, Send

from ..channel import Subscription
from ..subscription import Source
from .frames import HEARTBEAT, encode_frames

logger = logging.getLogger("sessionwire.server")


def body(chunk: bytes) -> Message:
    """The ASGI message that writes ``chunk`` to an open response."""
    return {"type": "http.response.body", "body": chunk, "more_body": True}


class Member:
    """One stream in a push group: its subscription, its ``send``, and why it left."""

    __slots__ = ("context", "failed", "last", "left", "quiet", "send", "sub", "timer", "writing")

    def __init__(self, sub: Subscription, send: Send, left: asyncio.Future[None]) -> None:
        self.sub, self.send, self.left = sub, send, left
        # Its writes run in its stream's context (a copy), as they would in the stream's own task.
        self.context = contextvars.copy_context()
        self.failed: BaseException | None = None
        self.writing: asyncio.Future[None] | None = None  # a write that had to wait for its client
        self.quiet = False  # it left for a heartbeat, which its own task writes
        self.last = 0.0  # the loop's time of its last write
        self.timer: asyncio.TimerHandle | None = None


class Pushers:
    """The push groups of one app's SSE streams, one per session with members."""

    def __init__(self, heartbeat: float) -> None:
        self.heartbeat = heartbeat
        self._groups: dict[Source, _Group] = {}

    @property
    def members(self) -> int:
        """Streams written by a push group now."""
        return sum(len(group.members) for group in self._groups.values())

    @property
    def groups(self) -> int:
        """Push groups (sessions with members, or whose task is still ending)."""
        return len(self._groups)

    async def follow(self, sub: Subscription, send: Send) -> None:
        """Write ``sub``'s records to ``send`` from its session's group until it must pull again.

        Raises what a write raised (the client is gone).
        """
        while await self._follow(sub, send):
            # Nothing for a whole heartbeat interval: the stream's own task writes the heartbeat.
            await send(body(HEARTBEAT))

    async def _follow(self, sub: Subscription, send: Send) -> bool:
        """One stay in the group; True if it left for a heartbeat."""
        source = sub.source
        group = self._groups.get(source)
        if group is None:
            group = self._groups[source] = _Group(source, self)
        member = Member(sub, send, asyncio.get_running_loop().create_future())
        try:
            group.join(member)
        except BaseException:
            group.leave(member)
            if group.task is None:
                self._drop(group)
            raise
        if group.task is None:  # it left at once (it must pull): no group was started for it
            self._drop(group)
        try:
            await member.left
        except BaseException:
            # The stream ends (the client went, the server stops): a write still waiting goes too.
            group.leave(member)
            if member.writing is not None:
                member.writing.cancel()
                await asyncio.gather(member.writing, return_exceptions=True)
            raise
        if member.writing is not None:
            await member.writing  # its client took it (or went: this raises what the write raised)
        if member.failed is not None:
            raise member.failed
        return member.quiet

    def _drop(self, group: _Group) -> None:
        if self._groups.get(group.source) is group:
            del self._groups[group.source]


class _Group:
    """The members of one session's channel and the task that writes to them."""

    def __init__(self, source: Source, pushers: Pushers) -> None:
        self.source = source
        self.pushers = pushers
        self.members: dict[Member, None] = {}
        self.task: asyncio.Task[None] | None = None
        self.loop = asyncio.get_running_loop()

    def join(self, member: Member) -> None:
        self.members[member] = None
        member.last = self.loop.time()
        member.timer = self.loop.call_at(member.last + self.pushers.heartbeat, self._beat, member)
        self._serve(member, {}, member.last)  # what it has not taken yet, at once
        if member in self.members and self.task is None:
            # A context of its own, not a copy of the first member's request: each write runs in
            # its own member's (see _write), and the task outlives the stream that started it.
            self.task = self.loop.create_task(self._run(), context=contextvars.Context())
            self.task.add_done_callback(self._ended)

    def leave(self, member: Member) -> None:
        self.members.pop(member, None)
        if member.timer is not None:
            member.timer.cancel()
            member.timer = None
        if not member.left.done():
            member.left.set_result(None)

    async def _run(self) -> None:
        source = self.source
        try:
            while True:
                # First what came since the members joined (before this task first ran), then
                # each delivery: serving and waiting again happen in one step, so none is missed.
                frames: dict[tuple[int, int], bytes] = {}
                now = self.loop.time()
                for member in list(self.members):
                    self._serve(member, frames, now)
                if not self.members:
                    return
                waiter = source.waiter()
                try:
                    await waiter
                finally:
                    source.forget(waiter)
        finally:
            # In the same step as the last check: a stream that joins later starts a new group.
            self.task = None
            self.pushers._drop(self)

    def _serve(self, member: Member, frames: dict[tuple[int, int], bytes], now: float) -> None:
        """Write what ``member`` can take at once; it leaves if it must pull (or its write waits or fails)."""
        sub = member.sub
        while True:
            records = sub.poll()
            if records is None:
                self.leave(member)
                return
            if not records:
                return
            key = (records[0].seq, records[-1].seq)
            chunk = frames.get(key)
            if chunk is None:
                chunk = frames[key] = encode_frames(records)  # once for every member in step
            # A message of its own: middleware around the app may change a message it is given.
            if not self._write(member, body(chunk), now) or sub.cursor >= self.source.last_seq:
                return

    def _write(self, member: Member, message: Message, now: float) -> bool:
        """Run ``send`` for ``member`` as far as it goes without waiting; False if it left.

        The write runs in the member's context, in this task: a send that needs a task of its
        own (``asyncio.timeout`` inside it) would time this task out, not the write.
        """
        context = member.context
        write = context.run(member.send, message)
        if type(write) is not CoroutineType:  # not an async def's: it runs as it will
            member.writing = asyncio.ensure_future(write)
            self.leave(member)
            return False
        try:
            waiting = context.run(write.send, None)
        except StopIteration:
            member.last = now
            return True
        except Exception as exc:
            member.failed = exc
            self.leave(member)
            return False
        member.writing = self.loop.create_task(_finish(write, waiting), context=context)
        self.leave(member)
        return False

    def _beat(self, member: Member) -> None:
        """A member's heartbeat timer: it leaves for a heartbeat once it has had nothing for a whole interval."""
        if member not in self.members:
            return
        due = member.last + self.pushers.heartbeat
        if self.loop.time() >= due - 0.001:
            member.quiet = True
            self.leave(member)
        else:
            member.timer = self.loop.call_at(due, self._beat, member)

    def _ended(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            logger.error("the push task of session %s failed", self.source.id, exc_info=error)
        for member in list(self.members):
            member.failed = error  # or, cancelled with the loop: its stream pulls again
            self.leave(member)


async def _finish(write: Coroutine[Any, Any, None], waiting: object) -> None:
    """Run a write that had to wait for its client to its end, as a task of its own would have."""
    while True:
        if waiting is not None and not isinstance(waiting, asyncio.Future):
            write.close()
            raise RuntimeError(f"a write yielded {waiting!r}, which is not an asyncio future")
        try:
            if waiting is None:
                await asyncio.sleep(0)  # a bare yield
            else:
                await _settled(waiting)
        except BaseException as exc:  # cancelled: the write gets the cancellation
            try:
                waiting = write.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting = write.send(None)
        except StopIteration:
            return


async def _settled(future: asyncio.Future[Any]) -> None:
    """Until ``future`` is done. It was yielded by the write, not awaited here: the write awaits it."""
    done = asyncio.get_running_loop().create_future()

    def settle(_: asyncio.Future[Any]) -> None:
        if not done.done():
            done.set_result(None)

    future.add_done_callback(settle)
    try:
        await done
    finally:
        future.remove_done_callback(settle)
