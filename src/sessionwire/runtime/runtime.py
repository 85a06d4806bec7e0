"""The Runtime: runs an agent for the sessions of a hub and owns every task it starts.

``dispatch`` admits a user message and returns at once with the turn's id and
``after``, the session's last seq at admission: everything of the turn (also of a
queued one) is appended after it. The turn runs as a task of the runtime, never
of the caller, and ends with exactly one terminal record. A second message while
a turn runs follows the runtime's policy: ``queue`` it behind, ``reject`` it, or
``interrupt`` the running turn and start. Jobs run beside the turns, as long as
they work. Closing the runtime ends every turn and job it runs as
``interrupted`` (and expires their approvals) before it returns; a call that
needs a running runtime then raises :class:`RuntimeClosed`. A queued turn is
marked in its session's metadata until it ends (see :mod:`.admitted`), so crash
recovery can end it too. Before a session is deleted, :meth:`Runtime.close_session`
ends the work the runtime runs in it.

Dispatching to a session that has no ``session.created`` record raises
:class:`~sessionwire.errors.SessionNotFound`: the runtime never creates sessions
(the server does, with :meth:`Hub.create_session`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from types import TracebackType
from typing import Literal, NoReturn, cast

from ..backends import Command
from ..channel import Session
from ..errors import Conflict, NotFound, RuntimeClosed, SessionNotFound, TurnRejected
from ..hub import Hub
from ..titles import auto_title, rename
from .admitted import AdmittedMarks
from .api import POLICIES, Decision, Dispatched, Policy
from .approvals import Approvals
from .context import new_id
from .jobs import Job
from .providers.base import Provider
from .recovery import LocalOwnership, Ownership, Recovered, recover
from .tools import ToolRegistry
from .turns import Lane, Turn, stale_entry
from .work import Services, Work

logger = logging.getLogger("sessionwire.runtime")

INTERRUPTED = "interrupted by a new message"

__all__ = ["Dispatched", "Policy", "Runtime", "RuntimeClosed"]


class Runtime:
    """Runs turns and jobs for the sessions of ``hub``, with ``provider``. An async context manager.

    Args:
        hub: The hub whose sessions it writes to.
        provider: What answers turns and runs jobs (``ScriptedProvider``, ``OpenAIProvider``).
        tools: The tools the agent may call (default: :meth:`ToolRegistry.default`).
        policy: What a message does while a turn runs: ``queue``, ``reject`` or ``interrupt``.
        coalesce_ms: Window over which token deltas are merged into one record (0: none).
        approval_timeout: Seconds before an unanswered approval expires.
        owner: This instance's id, written on ``turn.started``/``job.started`` (default: random).
        ownership: Which owners are alive, for crash recovery (default: only this one).
        progress_ms: Least time between two ``job.progress`` records (default: ``coalesce_ms``).
        recover: Close work that dead runtimes left open when it starts.
    """

    def __init__(
        self,
        hub: Hub,
        provider: Provider,
        *,
        tools: ToolRegistry | None = None,
        policy: Policy = "queue",
        coalesce_ms: float = 30.0,
        approval_timeout: float = 300.0,
        owner: str | None = None,
        ownership: Ownership | None = None,
        progress_ms: float | None = None,
        recover: bool = True,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy is one of {', '.join(POLICIES)}, not {policy!r}")
        if coalesce_ms < 0:
            raise ValueError(f"coalesce_ms is >= 0, not {coalesce_ms}")
        self.hub = hub
        self.provider = provider
        self.tools = tools if tools is not None else ToolRegistry.default()
        self._policy: Policy = policy
        self._owner = owner or new_id("rt")
        self.ownership: Ownership = ownership or LocalOwnership(self._owner)
        self.approvals = Approvals(approval_timeout)
        self._recover = recover
        self.recovered = Recovered()
        self._marks = AdmittedMarks(hub, self.owner)
        window = coalesce_ms / 1000
        self._services = Services(
            provider=provider,
            tools=self.tools,
            approvals=self.approvals,
            owner=self.owner,
            window=window,
            progress_window=window if progress_ms is None else progress_ms / 1000,
            start_job=self._launch_job,
            marks=self._marks,
            membership=hub.store.membership,
            fence=lambda: self.ownership.fence(),
            unwritten=hub.log.unwritten,
        )
        self._admitting: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._naming: set[asyncio.Task[None]] = set()
        self._known: set[str] = set()
        # Sessions being deleted, by the channel they had when close_session was called: refused
        # until the hub hands out another channel (the session was deleted and reopened, or evicted).
        self._deleting: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()
        self._lanes: dict[str, Lane] = {}
        self._turns: dict[tuple[str, str], Turn] = {}
        self._jobs: dict[tuple[str, str], Job] = {}
        self._running = False
        self._closing = False

    @property
    def owner(self) -> str:
        """This instance's id, written on ``turn.started``/``job.started``."""
        return self._owner

    @property
    def policy(self) -> Policy:
        """What a message does while a turn of its session runs."""
        return self._policy

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Close what dead runtimes left open (see :mod:`.recovery`), then accept work."""
        if self._running:
            return
        if self._recover:
            self.recovered = await recover(self.hub, self.ownership)
        self._running = True

    async def aclose(self) -> None:
        """End every turn and job it runs as ``interrupted``, waiting for their terminal records."""
        if self._closing:
            return
        self._closing = True
        works: list[Work] = [*self._turns.values(), *self._jobs.values()]
        for work in works:
            work.stop("interrupted", "the runtime was closed")
        for work in works:
            await work.wait()
        if self._naming:
            await asyncio.gather(*self._naming, return_exceptions=True)  # each logs its own failure
        self._running = False

    def _check_open(self) -> None:
        if self._closing:
            raise RuntimeClosed(f"runtime {self.owner} is not running: it is closed")
        if not self._running:
            raise RuntimeClosed(f"runtime {self.owner} is not running (use `async with Runtime(...)`)")

    async def _session(self, session_id: str) -> Session:
        # A session exists once it has its session.created record; checked once per session,
        # then only "has records" (cheap), which also catches a session deleted meanwhile.
        session = await self.hub.session(session_id)
        self._check_open()  # it may have closed meanwhile: then it would never stop what it starts now
        self._refuse_deleted(session)
        if session.last_seq == 0:
            self._known.discard(session_id)
            raise SessionNotFound(session_id)
        if session_id not in self._known:
            if (await session.state()).created_at is None:  # set by session.created only
                raise SessionNotFound(session_id)
            self._known.add(session_id)
            self._check_open()
            self._refuse_deleted(session)
        return session

    def _refuse_deleted(self, session: Session) -> None:
        # ``session`` may be a channel the hub evicted meanwhile (a running turn's): also look at the open one.
        closing = self._deleting.get(session.id)
        if closing is not None and (closing is session or closing is self.hub.open_session(session.id)):
            raise SessionNotFound(session.id)

    # ------------------------------------------------------------------ turns

    async def dispatch(self, session_id: str, text: str, *, message: str | None = None) -> Dispatched:
        """Admit a user message: start a turn (or queue it) and return at once.

        ``message`` is the id the user's message gets in the log (default: a new one): a
        frontend's own message id, so it can tell which of its messages were sent.

        Raises:
            SessionNotFound: the session has no ``session.created`` record.
            TurnRejected: a turn runs and the policy is ``reject``.
        """
        self._check_open()
        session = await self._session(session_id)  # checks again that the runtime runs, after its awaits
        # One admission at a time per session here, so this process's lane and the session's line
        # (shared by every process) take its turns in the same order.
        lock = self._admitting.get(session_id)
        if lock is None:
            lock = self._admitting[session_id] = asyncio.Lock()
        async with lock:
            lane = self._lanes.setdefault(session_id, Lane())
            previous = lane.last
            if previous is not None and self._policy == "reject":
                raise TurnRejected(f"session {session_id!r} is running turn {previous.id!r} and the policy is 'reject'")
            turn_id = new_id("t")
            ahead = await self._enter_line(session, turn_id)
            try:
                self._check_open()
                self._refuse_deleted(session)
                if self._policy == "interrupt":
                    for turn in lane.turns:
                        turn.stop("interrupted", INTERRUPTED)
                    await self._interrupt_elsewhere(session_id, [t for t, owner in ahead if owner != self.owner])
            except BaseException:
                # No turn will leave the line for it: out now, or it would hold up the session.
                await asyncio.shield(self._services.membership.leave(session_id, turn_id))
                raise
            after = session.last_seq
            # Behind another process's turn, it waits in the line; behind its own, in its lane.
            elsewhere = any(owner != self.owner for _, owner in ahead)
            turn = Turn(
                self._services,
                session,
                turn_id,
                text,
                previous,
                queued=bool(ahead),
                elsewhere=elsewhere,
                message=message,
            )
            # Read before the turn runs (it writes turn.started): the session's first turn names it.
            first = previous is None and not ahead and session.untitled
            lane.turns.append(turn)
            self._spawn(turn, self._turns)
        if first:
            # Beside the turn, not before it: admission stays one in-memory step (and one write at most).
            naming = asyncio.create_task(self._name_after(session_id, text), name=f"sessionwire name {session_id}")
            self._naming.add(naming)
            naming.add_done_callback(self._naming.discard)
        if turn.marked:
            # Queued: nothing names it in the log until it starts. Its mark is stored before its id
            # is handed out, so recovery can end it after a crash (see .admitted).
            try:
                await self._marks.sync(session_id)
            except Exception:
                turn.stop("cancelled", "its admission could not be stored")
                raise
        return Dispatched(turn=turn.id, after=after)

    async def _name_after(self, session_id: str, text: str) -> None:
        """Name an untitled session after its first message."""
        title = auto_title(text)
        if title is None:
            return
        try:
            await rename(self.hub, session_id, title, auto=True)
        except Exception as exc:
            # The turn runs all the same; the conversation stays untitled, which is not worth failing it.
            logger.error("session %s: could not name it after its first message: %s", session_id, exc)

    async def cancel_turn(self, session_id: str, turn: str) -> None:
        """Stop a turn (running or queued); returns once ``turn.cancelled`` is written.

        Raises:
            NotFound: the session has no such turn.
            Conflict: the turn has already ended (also when it was ending as this was called:
                it completed, failed or was interrupted), or another runtime runs it.
        """
        await self._cancel("turn", session_id, turn)

    async def interrupt_turn(self, session_id: str, turn: str, reason: str = "interrupted by a new message") -> None:
        """End a turn this runtime runs (or queues) as ``turn.interrupted``; returns once that is written.

        What the ``interrupt`` policy does to the turns of another process (see :meth:`dispatch`).

        Raises:
            NotFound: this runtime does not run that turn.
        """
        work = self._turns.get((session_id, turn))
        if work is None or work.done:
            raise NotFound(f"this runtime does not run turn {turn!r} of session {session_id!r}")
        work.stop("interrupted", reason)
        await work.wait()

    async def _enter_line(self, session: Session, turn_id: str) -> list[tuple[str, str]]:
        """Put a turn in its session's line (every process's turns); the entries ahead of it.

        Raises:
            TurnRejected: the policy is ``reject`` and another turn of the session runs (anywhere).
        """
        membership = self._services.membership
        if self._policy != "reject":
            return await membership.enter(session.id, turn_id, self.owner) or []
        for _ in range(2):
            ahead = await membership.enter(session.id, turn_id, self.owner, alone=True)
            if ahead is None:
                return []
            live = [entry for entry in ahead if not await stale_entry(session, membership, *entry)]
            if live:
                raise TurnRejected(f"session {session.id!r} is running turn {live[0][0]!r} and the policy is 'reject'")
            for turn, _ in ahead:  # ended turns whose process could not take them out: out now
                await membership.leave(session.id, turn)
        raise TurnRejected(f"session {session.id!r} has a turn starting elsewhere and the policy is 'reject'")

    async def _interrupt_elsewhere(self, session_id: str, turns: list[str]) -> None:
        """Have the processes running ``turns`` end them as interrupted (they may have ended already)."""
        bus = self.hub.store.commands

        async def interrupt(turn: str) -> None:
            command = Command(op="interrupt_turn", session=session_id, target=turn, args={"reason": INTERRUPTED})
            try:
                await bus.send(command)
            except Exception as exc:
                # The new turn still waits for that one to leave the line (its process ends it, or dies).
                logger.warning("could not interrupt turn %s of session %s: %s", turn, session_id, exc)

        await asyncio.gather(*(interrupt(turn) for turn in turns))

    # ------------------------------------------------------------------ jobs

    async def start_job(self, session_id: str, title: str, prompt: str) -> Dispatched:
        """Start a background job in a session and return at once with ``job`` and ``after``.

        Raises:
            SessionNotFound: the session has no ``session.created`` record.
        """
        self._check_open()
        session = await self._session(session_id)
        after = session.last_seq
        job = await self._launch_job(session, title, prompt, None)
        return Dispatched(job=job, after=after)

    async def _launch_job(self, session: Session, title: str, prompt: str, turn: str | None) -> str:
        self._check_open()
        self._refuse_deleted(session)
        job = Job(self._services, session, new_id("j"), title, prompt, turn)
        self._spawn(job, self._jobs)
        # Its id goes out once `job.started` is in the log: an external producer that learns it
        # cannot open the job first, and the turn that starts it cannot end before it.
        await job.opened.wait()
        return job.id

    async def cancel_job(self, session_id: str, job: str) -> None:
        """Stop a job; returns once ``job.cancelled`` is written.

        Raises:
            NotFound: the session has no such job.
            Conflict: the job has already ended (also when it was ending as this was called),
                or another runtime runs it.
        """
        await self._cancel("job", session_id, job)

    async def _cancel(self, kind: Literal["turn", "job"], session_id: str, work_id: str) -> None:
        work: Work | None = (self._turns if kind == "turn" else self._jobs).get((session_id, work_id))
        if work is None or work.done:
            await self._not_running(session_id, kind, work_id)
        stopped = work.stop("cancelled", "cancelled on request")
        await work.wait()
        # Too late (its end was decided: completed, failed, interrupted) or ended otherwise (say,
        # interrupted as the runtime closes): nothing was cancelled. "failed" after the stop is
        # its way of stopping (e.g. the log failed as it wrote its end).
        if not stopped or work.outcome not in ("cancelled", "failed"):
            raise Conflict(f"{kind} {work_id!r} of session {session_id!r} has already ended: {work.outcome}")

    # ------------------------------------------------------------------ sessions

    async def close_session(self, session_id: str) -> None:
        """End this runtime's work in a session that is about to be deleted; call it before deleting.

        Its turns (running and queued) and jobs end ``cancelled`` (the approvals they wait on
        expire) before this returns, so none of it writes to the session afterwards (a write
        would bring a deleted session back). From now until the session is deleted (the hub
        hands out a new channel for it), ``dispatch`` and ``start_job`` in it raise
        :class:`~sessionwire.errors.SessionNotFound`. Only this runtime's work is ended: with
        several processes on one log, each must close the session.
        """
        self._deleting[session_id] = await self.hub.session(session_id)
        while works := [
            w for (s, _), w in [*self._turns.items(), *self._jobs.items()] if s == session_id and not w.done
        ]:
            for work in works:
                work.stop("cancelled", "the session is being deleted")
            for work in works:
                await work.wait()

    # ------------------------------------------------------------------ approvals

    async def resolve_approval(self, session_id: str, approval: str, decision: Decision, by: str | None = None) -> None:
        """Approve or deny a pending approval; the waiting tool call goes on.

        Raises:
            ValueError: the decision is not ``approve`` or ``deny``.
            NotFound: the session has no such approval.
            Conflict: it was already resolved or expired.
        """
        session = await self.hub.session(session_id)
        await self.approvals.resolve(session_id, approval, decision, by, await session.state())

    # ------------------------------------------------------------------ bookkeeping

    def _spawn(self, work: Work, registry: dict[tuple[str, str], Turn] | dict[tuple[str, str], Job]) -> None:
        key = (work.session.id, work.id)
        table = cast("dict[tuple[str, str], Work]", registry)
        table[key] = work
        work.task = asyncio.create_task(work.run(), name=f"sessionwire {work.kind} {work.id}")
        work.task.add_done_callback(lambda task: self._ended(table, key, task))

    def _ended(self, table: dict[tuple[str, str], Work], key: tuple[str, str], task: asyncio.Task[None]) -> None:
        table.pop(key, None)
        lane = self._lanes.get(key[0])
        if lane is not None:
            lane.prune()
            if not lane.turns:
                del self._lanes[key[0]]
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s of session %s ended with an error", key[1], key[0], exc_info=task.exception())

    async def _not_running(self, session_id: str, kind: Literal["turn", "job"], work_id: str) -> NoReturn:
        state = await (await self.hub.session(session_id)).state()
        known = state.turns.get(work_id) if kind == "turn" else state.jobs.get(work_id)
        if known is None:
            raise NotFound(f"session {session_id!r} has no {kind} {work_id!r}")
        if known.status != "running":
            raise Conflict(f"{kind} {work_id!r} of session {session_id!r} has already ended: {known.status}")
        raise Conflict(f"{kind} {work_id!r} of session {session_id!r} is run by runtime {known.owner}, not this one")

    def runs(self, session_id: str, work_id: str) -> bool:
        """Whether this runtime runs (or queues) that turn or job right now."""
        key = (session_id, work_id)
        return key in self._turns or key in self._jobs

    def works(self, session_id: str) -> list[str]:
        """Ids of the turns and jobs this runtime runs (or queues) in a session right now."""
        return [w for (s, w) in [*self._turns, *self._jobs] if s == session_id]

    def statistics(self) -> dict[str, int]:
        """Turns and jobs running, and approvals waiting, in this runtime."""
        return {"turns": len(self._turns), "jobs": len(self._jobs), "approvals": len(self.approvals)}
