"""The Redis command bus: a command reaches the process that runs the work, over pub/sub.

The asker publishes on ``<p>:commands``; every other serving process runs it with
its handler and answers on the asker's channel ``<p>:answers:<id>``: done, "not
mine" (the handler raised NotFound, Conflict or ValueError), or failed (any other
error, with its code). ``PUBLISH`` says how many processes listen, so the asker
knows when every one answered "not mine" without waiting out its timeout. A
command with ``every`` set waits for every answer (say, ``close_session``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from ...errors import Conflict, LogUnavailable, NotFound, SessionwireError
from ..base import Command, CommandHandler
from .log import TRANSIENT, RedisLog

__all__ = ["RedisCommandBus"]

logger = logging.getLogger("sessionwire.backends.redis")

_POLL = 0.5  # seconds a wait for a pub/sub message lasts before the listener looks at its flag


class _Request(msgspec.Struct, frozen=True):
    id: str
    origin: str
    command: Command


class _Answer(msgspec.Struct, frozen=True):
    id: str
    ok: bool
    error: str | None = None
    failed: bool = False  # the process that runs the work failed to do it (not "not mine")
    code: str | None = None


class _Pending:
    __slots__ = ("answers", "done", "every", "expected", "future")

    def __init__(self, future: asyncio.Future[bool], every: bool) -> None:
        self.future = future
        self.every = every
        self.expected: int | None = None
        self.answers = 0
        self.done = False


class RedisCommandBus:
    """One process's command inbox and outbox on the store's Redis.

    Args:
        log: The store's log (its client and keys).
        timeout: Seconds to wait for the other processes' answers.
    """

    def __init__(self, log: RedisLog, timeout: float = 30.0) -> None:
        if timeout <= 0:
            raise ValueError(f"the command timeout is > 0 seconds, not {timeout}")
        self.timeout = timeout
        self.id = "bus_" + secrets.token_hex(6)
        self._log = log
        self._keys = log.keys
        self._answers = log.keys.answers(self.id)
        self._handler: CommandHandler | None = None
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._pubsub: Any = None
        self._lock = asyncio.Lock()
        self._closing = False

    async def send(self, command: Command) -> bool:
        """Ask the other processes; True once the one that runs the work did it (``every``: all answered).

        Raises:
            LogUnavailable: Redis does not answer (also while this process starts listening).
        """
        try:
            await self._listen()
        except (*TRANSIENT, TimeoutError) as exc:
            raise LogUnavailable(f"the command bus cannot listen on redis at {self._log.url}: {exc}") from exc
        request = _Request(id=secrets.token_hex(8), origin=self.id, command=command)
        pending = _Pending(asyncio.get_running_loop().create_future(), command.every)
        self._pending[request.id] = pending
        try:
            data = msgspec.json.encode(request)
            # Retried on a lost connection (LogUnavailable after the log's window): a command that
            # reaches its process twice is refused the second time (the work has ended).
            receivers = int(await self._log.with_retry(lambda: self._log.client.publish(self._keys.commands, data)))
            pending.expected = receivers - 1  # we listen too
            if not pending.future.done() and pending.answers >= pending.expected:
                return pending.done  # every other process answered "not mine" (or none listens)
            async with asyncio.timeout(self.timeout):
                return await pending.future  # also an owner's failure, however early it came
        except TimeoutError:
            logger.warning(
                "no answer to %s %r of session %s in %g s", command.op, command.target, command.session, self.timeout
            )
            return pending.done
        finally:
            del self._pending[request.id]

    @contextlib.asynccontextmanager
    async def serve(self, handler: CommandHandler) -> AsyncIterator[None]:
        """Carry out the other processes' commands with ``handler`` while the context is open."""
        self._handler = handler
        await self._listen()
        try:
            yield
        finally:
            self._handler = None

    async def _listen(self) -> None:
        async with self._lock:
            if self._listener is not None:
                return
            if self._pubsub is not None:  # a listener that stopped: its connection goes too
                with contextlib.suppress(*TRANSIENT):
                    await self._pubsub.aclose()
            pubsub = self._log.client.pubsub()
            await pubsub.subscribe(self._keys.commands, self._answers)
            # Only once Redis confirmed both subscriptions does a PUBLISH count this process in,
            # and reach it with the answers to its own commands.
            async with asyncio.timeout(self.timeout):
                confirmed = 0
                while confirmed < 2:
                    message = await pubsub.get_message(timeout=self.timeout)
                    if message is not None and message.get("type") == "subscribe":
                        confirmed += 1
            self._pubsub = pubsub
            self._listener = asyncio.create_task(self._receive(pubsub), name="sessionwire redis commands")
            self._listener.add_done_callback(self._stopped)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        if self._listener is task:
            self._listener = None  # the next send or serve listens again
        if not task.cancelled() and task.exception() is not None:
            logger.error("command bus %s stopped listening", self.id, exc_info=task.exception())

    async def _receive(self, pubsub: Any) -> None:
        delay = 0.02
        while not self._closing:
            try:
                # Polled, not blocking: redis-py's pub/sub can swallow a cancellation that arrives
                # while it reconnects after a Redis restart; the flag still ends this loop.
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_POLL)
            except TRANSIENT:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            delay = 0.02
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"].decode()
            try:
                if channel == self._answers:
                    self._answered(msgspec.json.decode(message["data"], type=_Answer))
                else:
                    request = msgspec.json.decode(message["data"], type=_Request)
                    if request.origin != self.id:
                        self._spawn(self._serve(request))
            except (msgspec.DecodeError, msgspec.ValidationError):
                logger.warning("command bus %s ignored a malformed message on %s", self.id, channel)
            except Exception:
                # One bad message must not stop this process's commands.
                logger.exception("command bus %s failed to take a message on %s", self.id, channel)

    def _answered(self, answer: _Answer) -> None:
        pending = self._pending.get(answer.id)
        if pending is None or pending.future.done():
            return
        if answer.failed:
            error = LogUnavailable if answer.code == LogUnavailable.code else SessionwireError
            pending.future.set_exception(error(answer.error or f"command {answer.id} failed"))
            return
        pending.answers += 1
        pending.done = pending.done or answer.ok
        if (answer.ok and not pending.every) or (pending.expected is not None and pending.answers >= pending.expected):
            pending.future.set_result(pending.done)

    async def _serve(self, request: _Request) -> None:
        command, handler = request.command, self._handler
        answer = _Answer(id=request.id, ok=False)
        if handler is not None:
            try:
                await handler(command)
                answer = _Answer(id=request.id, ok=True)
            except (NotFound, Conflict, ValueError) as exc:
                answer = _Answer(id=request.id, ok=False, error=str(exc))
            except Exception as exc:
                # Answer anyway: the asker would wait out its timeout and then hear "not found".
                logger.exception("failed to %s %r of session %s", command.op, command.target, command.session)
                code = exc.code if isinstance(exc, SessionwireError) else None
                error = f"failed to {command.op} {command.target!r}: {exc}"
                answer = _Answer(id=request.id, ok=False, failed=True, code=code, error=error)
        try:
            await self._log.client.publish(self._keys.answers(request.origin), msgspec.json.encode(answer))
        except TRANSIENT as exc:
            logger.warning("command bus %s could not answer %s: %s", self.id, request.id, exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Stop listening and answering; commands still waiting for answers end now."""
        self._closing = True
        tasks = [*self._tasks, *([self._listener] if self._listener is not None else [])]
        self._listener = None
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_result(pending.done)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._pubsub is not None:
            with contextlib.suppress(*TRANSIENT):
                await self._pubsub.aclose()
            self._pubsub = None
