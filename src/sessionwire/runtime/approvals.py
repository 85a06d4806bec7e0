"""Approvals: a tool call that waits for a person, with an expiry the runtime writes itself.

The waiting tool call owns the wait: it writes ``approval.requested`` with the
expiry time, waits for :meth:`Approvals.resolve` or the expiry, and on expiry
writes ``approval.resolved`` with decision ``expired`` itself, so nobody has to
call anything for a pending approval to end. The first resolution wins; a second
one raises :class:`~sessionwire.errors.Conflict` and changes nothing.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Literal

from ..errors import Conflict, NotFound
from ..events import ApprovalRequested, ApprovalResolved, Decision
from ..state import SessionState
from .coalesce import Writer

DECISIONS: dict[str, Decision] = {"approve": "approved", "approved": "approved", "deny": "denied", "denied": "denied"}
"""Accepted spellings of a person's decision."""

DecisionInput = Literal["approve", "deny", "approved", "denied"]


class _Waiting:
    __slots__ = ("approval", "decision", "future", "writer")

    def __init__(self, approval: str, writer: Writer) -> None:
        self.approval = approval
        self.writer = writer
        self.decision: Decision | None = None
        self.future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()


class Approvals:
    """The approvals this runtime waits on, by session and id.

    Args:
        timeout: Seconds an approval waits before it expires.
    """

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"the approval timeout is > 0 seconds, not {timeout}")
        self.timeout = timeout
        self._waiting: dict[tuple[str, str], _Waiting] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    async def request(self, writer: Writer, action: str, call: str | None = None) -> Decision:
        """Write ``approval.requested``, wait for a decision or the expiry, and return the decision.

        On expiry (or if the waiting work is cancelled) this writes ``approval.resolved``
        with decision ``expired`` itself.
        """
        approval = "a_" + secrets.token_hex(6)
        key = (writer.session.id, approval)
        waiting = self._waiting[key] = _Waiting(approval, writer)
        expires_at = time.time_ns() // 1_000_000 + int(self.timeout * 1000)
        try:
            await writer.emit(
                ApprovalRequested(
                    approval=approval, action=action, call=call, expires_at=expires_at, turn=writer.turn, job=writer.job
                )
            )
            try:
                async with asyncio.timeout(self.timeout):
                    return await asyncio.shield(waiting.future)
            except TimeoutError:
                pass
            if waiting.decision is None:
                await self._settle(waiting, "expired", None)
            return await waiting.future
        except asyncio.CancelledError:
            if waiting.decision is None:
                await self._settle(waiting, "expired", None)
            raise
        finally:
            del self._waiting[key]

    async def resolve(self, session_id: str, approval: str, decision: str, by: str | None, state: SessionState) -> None:
        """Answer a pending approval of this runtime.

        Args:
            state: The session's folded state, to tell "unknown" from "already resolved".

        Raises:
            ValueError: the decision is not approve or deny.
            NotFound: no such approval in the session.
            Conflict: it was already resolved (or expired), or another runtime waits on it.
        """
        final = DECISIONS.get(decision)
        if final is None:
            raise ValueError(f"a decision is 'approve' or 'deny', not {decision!r}")
        waiting = self._waiting.get((session_id, approval))
        if waiting is None:
            known = state.approvals.get(approval)
            if known is None:
                raise NotFound(f"session {session_id!r} has no approval {approval!r}")
            if known.status != "pending":
                raise Conflict(f"approval {approval!r} of session {session_id!r} is already resolved: {known.status}")
            raise Conflict(f"approval {approval!r} of session {session_id!r} is not waited on by this runtime")
        if waiting.decision is not None:
            raise Conflict(f"approval {approval!r} of session {session_id!r} is already resolved: {waiting.decision}")
        await self._settle(waiting, final, by)

    @staticmethod
    async def _settle(waiting: _Waiting, decision: Decision, by: str | None) -> None:
        # Claimed before the first await, so a concurrent second answer sees it taken.
        waiting.decision = decision
        writer = waiting.writer
        try:
            await writer.emit(
                ApprovalResolved(approval=waiting.approval, decision=decision, by=by, turn=writer.turn, job=writer.job)
            )
        finally:
            if not waiting.future.done():
                waiting.future.set_result(decision)
