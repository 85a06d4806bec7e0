"""What a runtime offers its callers (the server, the CLI): one Protocol, implemented explicitly.

The local :class:`~.runtime.Runtime` runs the work itself; :class:`~.routed.RoutedRuntime`
carries each command to the process that runs the work. Both implement every method of
:class:`AgentRuntime`, so an operation added to one and not the other is a type error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Policy = Literal["queue", "reject", "interrupt"]
"""What a message does while a turn runs: queue behind it, be rejected, or interrupt it."""

POLICIES: tuple[Policy, ...] = ("queue", "reject", "interrupt")

Decision = Literal["approve", "deny"]
"""How a person resolves an approval."""


@dataclass(frozen=True)
class Dispatched:
    """What ``dispatch`` and ``start_job`` return at once.

    Attributes:
        turn: The turn's id (``dispatch``), else None.
        after: The session's last seq at admission: subscribe from it to see the whole turn or job.
        job: The job's id (``start_job``), else None.
    """

    turn: str | None = None
    after: int = 0
    job: str | None = None

    def to_dict(self) -> dict[str, str | int]:
        """The result as JSON data, without the id it does not have."""
        out: dict[str, str | int] = {"after": self.after}
        if self.turn is not None:
            out["turn"] = self.turn
        if self.job is not None:
            out["job"] = self.job
        return out


class AgentRuntime(Protocol):
    """The operations of an agent runtime on the sessions of a hub."""

    @property
    def owner(self) -> str:
        """The runtime instance's id, written on the work it starts."""
        ...

    @property
    def policy(self) -> Policy:
        """What a message does while a turn of its session runs."""
        ...

    async def dispatch(self, session_id: str, text: str, *, message: str | None = None) -> Dispatched:
        """Admit a user message (``message``: its id in the log): start (or queue) a turn and return at once."""
        ...

    async def start_job(self, session_id: str, title: str, prompt: str) -> Dispatched:
        """Start a background job and return at once."""
        ...

    async def cancel_turn(self, session_id: str, turn: str) -> None:
        """Stop a running or queued turn; returns once ``turn.cancelled`` is written."""
        ...

    async def interrupt_turn(self, session_id: str, turn: str, reason: str = "interrupted by a new message") -> None:
        """End a running or queued turn as ``turn.interrupted``; returns once that is written."""
        ...

    async def cancel_job(self, session_id: str, job: str) -> None:
        """Stop a job; returns once ``job.cancelled`` is written."""
        ...

    async def resolve_approval(self, session_id: str, approval: str, decision: Decision, by: str | None = None) -> None:
        """Approve or deny a pending approval."""
        ...

    async def close_session(self, session_id: str) -> None:
        """End the work in a session that is about to be deleted."""
        ...

    def runs(self, session_id: str, work_id: str) -> bool:
        """Whether this runtime runs (or queues) that turn or job right now."""
        ...

    def works(self, session_id: str) -> list[str]:
        """Ids of the turns and jobs this runtime runs (or queues) in a session right now."""
        ...

    def statistics(self) -> dict[str, int]:
        """Turns and jobs running, and approvals waiting."""
        ...
