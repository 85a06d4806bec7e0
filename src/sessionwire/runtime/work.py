"""One unit of work, a turn or a job, run as a task that always ends with one terminal record.

Whatever happens inside (success, the provider's error, a cancellation, the
runtime closing), :meth:`Work.run` completes every open message with what it
has, then appends exactly one terminal, in the same batch as the last deltas.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

from .. import events as ev
from ..backends import Fence, Membership
from ..channel import Session
from ..errors import Fenced, InvalidEvent, LifecycleViolation, SessionwireError
from .admitted import AdmittedMarks
from .approvals import Approvals
from .coalesce import Writer
from .context import RunContext
from .providers.base import Provider, Reply
from .tools import ToolRegistry

logger = logging.getLogger("sessionwire.runtime")

StopKind = Literal["cancelled", "interrupted"]
Outcome = Literal["completed", "failed", "cancelled", "interrupted"]

JobStarter = Callable[[Session, str, str, "str | None"], Awaitable[str]]
"""``start(session, title, prompt, turn) -> job id``: how work starts a background job."""


@dataclass(frozen=True)
class Services:
    """What every turn and job of a runtime shares."""

    provider: Provider
    tools: ToolRegistry
    approvals: Approvals
    owner: str
    window: float
    progress_window: float
    start_job: JobStarter
    marks: AdmittedMarks
    membership: Membership
    fence: Callable[[], Fence | None]
    """The fence work started now appends with (its owner's lease generation), if any."""
    unwritten: set[str]
    """Sessions whose work ended without writing its end (the log's): the cluster writes it, if nobody did."""


class Work(abc.ABC):
    """A turn or a job: its id, its session, its task and how it was asked to stop."""

    kind: ClassVar[Literal["turn", "job"]]

    def __init__(self, services: Services, session: Session, work_id: str, text: str) -> None:
        self.services = services
        self.session = session
        self.id = work_id
        self.text = text
        self.stop_kind: StopKind = "cancelled"
        self.stop_reason: str | None = None
        self.started = False
        self.entered = False
        self.stop_requested = False
        self.outcome: Outcome | None = None
        """How it ends, set once its terminal is decided (it can't be stopped any more then)."""
        self.task: asyncio.Task[None] | None = None
        self.opened = asyncio.Event()
        """Set once its opening records are in the log (or it ended without them)."""
        self.fence = services.fence()
        self.writer = self._writer()

    @abc.abstractmethod
    def _writer(self) -> Writer:
        """The writer its records go through (scoped to the turn or the job)."""

    @property
    def done(self) -> bool:
        """Whether its task has ended (its terminal is written)."""
        return self.task is not None and self.task.done()

    def stop(self, kind: StopKind, reason: str) -> bool:
        """Ask it to end as ``cancelled`` or ``interrupted`` with ``reason``; see :meth:`wait`.

        Returns:
            False if it is too late: it has ended, or its end is decided (:attr:`outcome`).
        """
        if self.task is None or self.task.done() or self.outcome is not None:
            return False
        if self.stop_reason is None:
            self.stop_kind, self.stop_reason = kind, reason
        self.stop_requested = True
        if self.entered:
            self.task.cancel()
        # else: cancelling a task before its first step would skip run() and its terminal;
        # run() sees stop_requested as it enters instead.
        return True

    async def wait(self) -> None:
        """Wait until its task has ended; never raises its outcome."""
        if self.task is not None:
            await asyncio.wait({self.task})

    # ------------------------------------------------------------------ to be defined per kind

    @abc.abstractmethod
    def start_events(self) -> list[ev.Event]:
        """The records that open it."""

    async def before(self) -> None:
        """What to wait for before it opens (a queued turn waits for the one before); nothing by default."""
        return None

    @abc.abstractmethod
    async def body(self, ctx: RunContext) -> Reply:
        """Run the provider."""

    @abc.abstractmethod
    def completed(self, reply: Reply) -> ev.Event:
        """Its terminal when the provider finished."""

    @abc.abstractmethod
    def failed(self, error: str, code: str | None) -> ev.Event:
        """Its terminal when it failed."""

    @abc.abstractmethod
    def stopped(self) -> ev.Event:
        """Its terminal when it was stopped (:attr:`stop_kind`, :attr:`stop_reason`)."""

    async def after_end(self) -> None:
        """What to do once its terminal is written; nothing by default."""
        return None

    # ------------------------------------------------------------------ the run

    def context(self) -> RunContext:
        s = self.services
        return RunContext(
            self.writer,
            text=self.text,
            tools=s.tools,
            approvals=s.approvals,
            start_job=self._start_job,
        )

    async def _start_job(self, title: str, prompt: str) -> str:
        return await self.services.start_job(self.session, title, prompt, self.writer.turn)

    async def run(self) -> None:
        """The task's body: open, run the provider, end with exactly one terminal."""
        try:
            await self._run()
        finally:
            self.opened.set()  # opened, or it never will be

    async def _run(self) -> None:
        ctx: RunContext | None = None
        end: list[ev.Event]
        try:
            self.entered = True
            if self.stop_requested:
                raise asyncio.CancelledError
            await self.before()
            self.started = True
            await self.writer.emit(*self.start_events())
            self.opened.set()
            ctx = self.context()
            reply = await self.body(ctx)
            end = [*ctx.close_events(), self.completed(reply)]
            self.outcome = "completed"
        except Fenced as exc:
            await self._fenced(exc)
            return
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            end = [*(ctx.close_events() if ctx else []), self.stopped()]
            self.outcome = self.stop_kind
        except Exception as exc:
            if isinstance(exc, SessionwireError) and not isinstance(exc, InvalidEvent):
                error, code = str(exc), exc.code
            else:
                # A bug (an invalid event built by a provider or a tool included): say it loudly.
                logger.exception("%s %s of session %s failed", self.kind, self.id, self.session.id)
                error, code = f"{type(exc).__name__}: {exc}", "internal_error"
            end = [*(ctx.close_events() if ctx else []), self.failed(error, code)]
            self.outcome = "failed"
        if not self.started:
            self.started = True
            end = [*self.start_events(), *end]
        try:
            await _uncancellable(self._end(end))
        except Exception:
            # Its end could not be written: the cluster writes turn.failed / job.failed for it
            # once the log takes it (see Cluster.close_unwritten). The error goes on to be logged.
            self.services.unwritten.add(self.session.id)
            raise

    async def _end(self, events: list[ev.Event]) -> None:
        if await self.session.work_status(self.kind, self.id) not in (None, "running"):
            # Another process already ended it (our lease lapsed while this loop stalled, and a
            # survivor wrote `interrupted`): a second terminal would break "exactly one".
            logger.warning(
                "%s %s of session %s was ended elsewhere; its end is dropped", self.kind, self.id, self.session.id
            )
            self.outcome = "interrupted"
            await self.writer.aclose()
            await self.after_end()
            return
        try:
            await self.writer.emit(*events, final=True)
            await self.writer.aclose()
        except (Fenced, LifecycleViolation) as exc:
            # Fenced, or ended by another process between the look above and this append:
            # the log refused a second terminal, and nothing of this work may land after it.
            await self._fenced(exc)
            return
        await self.after_end()  # only once the terminal is written

    async def _fenced(self, exc: Fenced | LifecycleViolation) -> None:
        # Our runtime stalled past its lease and another process ended this work (it wrote the
        # terminal): nothing more of it may land, so it stops here, writing nothing.
        logger.warning("%s %s of session %s stops: %s", self.kind, self.id, self.session.id, exc)
        self.outcome = "interrupted"
        await self.writer.abandon()
        # Should the member that fenced us have stopped before writing its end, ours writes one.
        self.services.unwritten.add(self.session.id)
        await self.after_end()


async def _uncancellable(coro: Awaitable[None]) -> None:
    # The terminal must be written: a further cancel (say, the runtime closing) waits for it.
    task = asyncio.ensure_future(coro)
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
    task.result()
