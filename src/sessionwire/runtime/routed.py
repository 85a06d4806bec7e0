"""A runtime whose commands reach the process that runs the work, whichever process receives them.

With several processes on one store, a request may reach a process that does not
run the work it names. :class:`RoutedRuntime` tries its own runtime first and, when
that does not run it (NotFound, Conflict), sends the command over the store's
:class:`~sessionwire.backends.CommandBus`; the process that runs it carries it out
with :meth:`RoutedRuntime.carry_out`. ``close_session`` goes to every process: each
ends its own work in the session. Every operation of :class:`~.api.AgentRuntime` is
an explicit method here: nothing falls through to the local runtime unrouted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..backends import Command, CommandBus
from ..errors import Conflict, NotFound
from .api import AgentRuntime, Decision, Dispatched, Policy

__all__ = ["RoutedRuntime"]


class RoutedRuntime:
    """``runtime`` with its commands carried to the process that runs the work.

    Args:
        runtime: This process's runtime.
        bus: The store's command bus.
    """

    def __init__(self, runtime: AgentRuntime, bus: CommandBus) -> None:
        self.runtime = runtime
        self.bus = bus

    @property
    def owner(self) -> str:
        """The local runtime's owner id."""
        return self.runtime.owner

    @property
    def policy(self) -> Policy:
        """The local runtime's policy."""
        return self.runtime.policy

    async def dispatch(self, session_id: str, text: str, *, message: str | None = None) -> Dispatched:
        """Admit a message here: the turn runs in this process."""
        return await self.runtime.dispatch(session_id, text, message=message)

    async def start_job(self, session_id: str, title: str, prompt: str) -> Dispatched:
        """Start a job here: it runs in this process."""
        return await self.runtime.start_job(session_id, title, prompt)

    async def cancel_turn(self, session_id: str, turn: str) -> None:
        """Stop a turn, in whichever process runs it."""
        await self._routed(
            lambda: self.runtime.cancel_turn(session_id, turn),
            Command(op="cancel_turn", session=session_id, target=turn),
        )

    async def interrupt_turn(self, session_id: str, turn: str, reason: str = "interrupted by a new message") -> None:
        """End a turn as interrupted, in whichever process runs it."""
        await self._routed(
            lambda: self.runtime.interrupt_turn(session_id, turn, reason),
            Command(op="interrupt_turn", session=session_id, target=turn, args={"reason": reason}),
        )

    async def cancel_job(self, session_id: str, job: str) -> None:
        """Stop a job, in whichever process runs it."""
        await self._routed(
            lambda: self.runtime.cancel_job(session_id, job), Command(op="cancel_job", session=session_id, target=job)
        )

    async def resolve_approval(self, session_id: str, approval: str, decision: Decision, by: str | None = None) -> None:
        """Approve or deny an approval, in whichever process waits on it."""
        command = Command(
            op="resolve_approval", session=session_id, target=approval, args={"decision": decision, "by": by}
        )
        await self._routed(lambda: self.runtime.resolve_approval(session_id, approval, decision, by), command)

    async def close_session(self, session_id: str) -> None:
        """End the work of every process in a session about to be deleted."""
        await self.runtime.close_session(session_id)
        await self.bus.send(Command(op="close_session", session=session_id, every=True))

    def runs(self, session_id: str, work_id: str) -> bool:
        """Whether this process's runtime runs that turn or job."""
        return self.runtime.runs(session_id, work_id)

    def works(self, session_id: str) -> list[str]:
        """The turns and jobs this process's runtime runs in a session."""
        return self.runtime.works(session_id)

    def statistics(self) -> dict[str, int]:
        """This process's runtime's statistics."""
        return self.runtime.statistics()

    async def _routed(self, local: Callable[[], Awaitable[None]], command: Command) -> None:
        try:
            await local()
        except (NotFound, Conflict) as exc:
            # Not ours (or not known here yet): the process that runs it acts, if there is one.
            if not await self.bus.send(command):
                raise exc from None

    async def carry_out(self, command: Command) -> None:
        """Carry out another process's command with the local runtime (a :data:`CommandHandler`).

        Raises:
            NotFound, Conflict: this process does not run the work.
            ValueError: an unknown operation or a bad argument.
        """
        runtime, session, target = self.runtime, command.session, command.target
        if command.op == "cancel_turn":
            await runtime.cancel_turn(session, target)
        elif command.op == "cancel_job":
            await runtime.cancel_job(session, target)
        elif command.op == "resolve_approval":
            decision: Any = command.args.get("decision")
            if decision not in ("approve", "deny"):
                raise ValueError(f"decision is approve or deny, not {decision!r}")
            by = command.args.get("by")
            await runtime.resolve_approval(session, target, decision, by if isinstance(by, str) else None)
        elif command.op == "interrupt_turn":
            reason = command.args.get("reason")
            await runtime.interrupt_turn(session, target, reason if isinstance(reason, str) else "interrupted")
        elif command.op == "close_session":
            # Only where its work runs: a process that merely has nothing of it keeps nothing open.
            if runtime.works(session):
                await runtime.close_session(session)
        else:
            raise ValueError(f"unknown command {command.op!r}")
