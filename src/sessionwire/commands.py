"""Commands routed to the process that runs the work (cancel a turn or job, resolve an approval).

With several processes on one Redis, an HTTP call may reach a process that does not
run the work it names. :class:`RoutedRuntime` tries its own runtime first and, when
that does not run it, :class:`Commands` asks every other process over a pub/sub
channel (``<prefix>:commands``); the owner acts and answers on the asker's channel
(``<prefix>:answers:<owner>``). Every other process answers "not mine", so the asker
knows when nobody runs it without waiting out its timeout; an owner that fails to
act answers with its error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import Conflict, NotFound, SessionwireError
from .log.redis import LogUnavailable

if TYPE_CHECKING:
    from .log.redis import RedisLog
    from .runtime import Runtime

__all__ = ["Commands", "Op", "RoutedRuntime"]

logger = logging.getLogger("sessionwire.leases")

_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)
Op = Literal["cancel_turn", "cancel_job", "resolve_approval"]


class _Command(msgspec.Struct, frozen=True):
    id: str
    origin: str
    op: Op
    session: str
    target: str
    decision: str | None = None
    by: str | None = None


class _Answer(msgspec.Struct, frozen=True):
    id: str
    ok: bool
    error: str | None = None
    failed: bool = False  # the runtime that runs the work failed to do it (not "not mine")
    code: str | None = None


class _Pending:
    __slots__ = ("expected", "future", "misses")

    def __init__(self, future: asyncio.Future[bool]) -> None:
        self.future = future
        self.expected: int | None = None
        self.misses = 0


class Commands:
    """One process's command inbox and outbox on the log's Redis.

    Args:
        log: The Redis log shared by the processes.
        owner: This process's runtime owner id (its answers channel).
        command_timeout: Seconds to wait for another process to answer a command.
    """

    def __init__(self, log: RedisLog, owner: str, command_timeout: float) -> None:
        self.log = log
        self.owner = owner
        self.command_timeout = command_timeout
        self.runtime: Runtime | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self._pending: dict[str, _Pending] = {}
        self._commands = f"{log.prefix}:commands"
        self._answers = f"{log.prefix}:answers:{owner}"

    @property
    def channels(self) -> tuple[str, str]:
        """The pub/sub channels to listen on: every process's commands, this one's answers."""
        return (self._commands, self._answers)

    async def command(
        self, op: Op, session: str, target: str, decision: str | None = None, by: str | None = None
    ) -> bool:
        """Ask the other members to run a command; True once the one that runs the work did it."""
        request = _Command(
            id=secrets.token_hex(8), origin=self.owner, op=op, session=session, target=target, decision=decision, by=by
        )
        pending = _Pending(asyncio.get_running_loop().create_future())
        self._pending[request.id] = pending
        try:
            receivers = int(await self.log.client.publish(self._commands, msgspec.json.encode(request)))
            pending.expected = receivers - 1  # we listen too
            if pending.expected <= pending.misses:
                return False
            async with asyncio.timeout(self.command_timeout):
                return await pending.future
        except TimeoutError:
            return False
        finally:
            del self._pending[request.id]

    async def listen(self, pubsub: Any) -> None:
        """Take commands and answers off ``pubsub`` (subscribed to :attr:`channels`) until cancelled."""
        delay = 0.02
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            except _TRANSIENT:
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
                    request = msgspec.json.decode(message["data"], type=_Command)
                    if request.origin != self.owner:
                        self._spawn(self._serve(request))
            except msgspec.DecodeError:
                logger.warning("runtime %s ignored a malformed message on %s", self.owner, channel)

    def _answered(self, answer: _Answer) -> None:
        pending = self._pending.get(answer.id)
        if pending is None or pending.future.done():
            return
        if answer.ok:
            pending.future.set_result(True)
            return
        if answer.failed:
            error = LogUnavailable if answer.code == LogUnavailable.code else SessionwireError
            pending.future.set_exception(error(answer.error or f"command {answer.id} failed"))
            return
        pending.misses += 1
        if pending.expected is not None and pending.misses >= pending.expected:
            pending.future.set_result(False)

    async def _serve(self, request: _Command) -> None:
        ok, error, failed, code = False, None, False, None
        runtime = self.runtime
        if runtime is not None:
            try:
                if request.op == "cancel_turn":
                    await runtime.cancel_turn(request.session, request.target)
                elif request.op == "cancel_job":
                    await runtime.cancel_job(request.session, request.target)
                else:
                    decision: Any = request.decision
                    await runtime.resolve_approval(request.session, request.target, decision, by=request.by)
                ok = True
            except (NotFound, Conflict, ValueError) as exc:
                error = str(exc)
            except Exception as exc:
                # Answer anyway: the caller would wait out its timeout and then hear "not found".
                logger.exception(
                    "runtime %s failed to %s %s of session %s", self.owner, request.op, request.target, request.session
                )
                error, failed = f"runtime {self.owner} failed to {request.op} {request.target!r}: {exc}", True
                code = exc.code if isinstance(exc, SessionwireError) else None
        answer = _Answer(id=request.id, ok=ok, error=error, failed=failed, code=code)
        with contextlib.suppress(*_TRANSIENT):
            await self.log.client.publish(f"{self.log.prefix}:answers:{request.origin}", msgspec.json.encode(answer))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class RoutedRuntime:
    """A runtime whose commands reach the process that runs the work. Everything else is the runtime's."""

    def __init__(self, runtime: Runtime, commands: Commands) -> None:
        self.runtime = runtime
        self.commands = commands

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runtime, name)

    async def _routed(self, local: Callable[[], Awaitable[None]], op: Op, session: str, target: str, **kw: Any) -> None:
        try:
            await local()
        except (NotFound, Conflict) as exc:
            # Not ours (or not known here yet): the process that runs it acts, if there is one.
            if not await self.commands.command(op, session, target, **kw):
                raise exc from None

    async def cancel_turn(self, session_id: str, turn: str) -> None:
        """Stop a turn, in whichever process runs it."""
        await self._routed(lambda: self.runtime.cancel_turn(session_id, turn), "cancel_turn", session_id, turn)

    async def cancel_job(self, session_id: str, job: str) -> None:
        """Stop a job, in whichever process runs it."""
        await self._routed(lambda: self.runtime.cancel_job(session_id, job), "cancel_job", session_id, job)

    async def resolve_approval(
        self, session_id: str, approval: str, decision: Literal["approve", "deny"], by: str | None = None
    ) -> None:
        """Approve or deny an approval, in whichever process waits on it."""
        await self._routed(
            lambda: self.runtime.resolve_approval(session_id, approval, decision, by),
            "resolve_approval",
            session_id,
            approval,
            decision=decision,
            by=by,
        )
