"""A turn: the agent's answer to one user message, and the per-session lane turns wait in."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from .. import events as ev
from ..backends import Membership
from ..channel import Session
from ..errors import LogUnavailable, SessionwireError
from .coalesce import Writer
from .context import RunContext, new_id
from .providers.base import Reply
from .work import Services, Work

logger = logging.getLogger("sessionwire.runtime")


class Turn(Work):
    """One turn: ``turn.started``, the user's message, the answer, one terminal.

    A queued turn waits for the turn before it to end, then opens. Until it has ended,
    it is marked admitted in the session's metadata (see :mod:`.admitted`), so recovery
    can end it even if a crash comes before it wrote anything.
    """

    kind = "turn"

    def __init__(
        self,
        services: Services,
        session: Session,
        turn_id: str,
        text: str,
        previous: Turn | None,
        queued: bool = False,
        elsewhere: bool = False,
        message: str | None = None,
    ) -> None:
        self.previous = previous
        self.message = message or new_id("m")  # the user's message
        self.marked = previous is not None or queued
        self.elsewhere = elsewhere  # queued behind another process's turn: it watches the line
        super().__init__(services, session, turn_id, text)
        if self.marked:
            services.marks.add(session.id, turn_id)

    def _writer(self) -> Writer:
        s = self.services
        return Writer(self.session, s.window, progress_window=s.progress_window, turn=self.id, fence=self.fence)

    async def before(self) -> None:
        previous, self.previous = self.previous, None  # don't keep a chain of ended turns alive
        if previous is not None:
            await previous.wait()  # which left the line before it ended
        if self.elsewhere:
            await self._first_in_line()

    async def _first_in_line(self) -> None:
        """Wait until this turn heads its session's line: the turns of other processes admitted before it ended."""
        membership, session = self.services.membership, self.session
        while True:
            try:
                line = await membership.line(session.id)
            except LogUnavailable:
                logger.warning("turn %s of session %s waits for the store to see its line", self.id, session.id)
                await asyncio.sleep(_LINE_POLL * 10)
                continue
            if not line or line[0][0] == self.id or all(turn != self.id for turn, _ in line):
                return  # first (or out of the line: the session was deleted, say; the log decides)
            head, owner = line[0]
            if await stale_entry(session, membership, head, owner):
                await membership.leave(session.id, head)
                continue
            await asyncio.sleep(_LINE_POLL)

    def start_events(self) -> list[ev.Event]:
        user = self.message
        return [
            ev.TurnStarted(turn=self.id, owner=self.services.owner),
            ev.MessageStarted(message=user, role="user", turn=self.id),
            ev.MessageCompleted(message=user, role="user", parts=[ev.TextPart(text=self.text)], turn=self.id),
        ]

    async def body(self, ctx: RunContext) -> Reply:
        return await self.services.provider.run_turn(ctx)

    def completed(self, reply: Reply) -> ev.Event:
        return ev.TurnCompleted(turn=self.id, model=reply.model, usage=reply.usage)

    def failed(self, error: str, code: str | None) -> ev.Event:
        return ev.TurnFailed(turn=self.id, error=error, code=code)

    def stopped(self) -> ev.Event:
        if self.stop_kind == "interrupted":
            return ev.TurnInterrupted(turn=self.id, reason=self.stop_reason)
        return ev.TurnCancelled(turn=self.id, reason=self.stop_reason)

    async def after_end(self) -> None:
        try:
            await self.services.membership.leave(self.session.id, self.id)
        except Exception:  # its terminal is written: the next turn finds it ended and takes it out
            logger.warning(
                "could not take turn %s of session %s out of its line", self.id, self.session.id, exc_info=True
            )
        if not self.marked:
            return
        marks = self.services.marks
        marks.discard(self.session.id, self.id)
        try:
            await marks.sync(self.session.id)
        except Exception:  # its terminal is written: a stale mark only costs recovery a look
            logger.warning("could not unmark turn %s of session %s", self.id, self.session.id, exc_info=True)


_LINE_POLL = 0.05  # seconds between two looks at a session's line while another process's turn heads it


async def stale_entry(session: Session, membership: Membership, turn: str, owner: str) -> bool:
    """Whether a turn in a session's line will never leave it by itself.

    It ended (its process wrote its terminal but could not take it out, or died and a
    survivor ended it), or it never started and its process is gone (its lease is not held).
    When the store does not answer, it is not: the entry stays until it can be told.
    """
    status = await session.work_status("turn", turn)
    if status is None:
        try:
            return not await membership.held(owner)
        except SessionwireError:
            return False
    return status != "running"


class Lane:
    """A session's turns that have not ended: the running one first, then the queued ones."""

    def __init__(self) -> None:
        self.turns: deque[Turn] = deque()

    def prune(self) -> None:
        """Forget the turns that have ended."""
        self.turns = deque(t for t in self.turns if not t.done)

    @property
    def last(self) -> Turn | None:
        """The turn a new one would queue behind."""
        self.prune()
        return self.turns[-1] if self.turns else None
