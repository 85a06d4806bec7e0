"""Crash recovery: end the work a dead process left open, before accepting anything new.

Every ``turn.started`` and ``job.started`` record names its owner (a runtime
instance id). When a runtime starts, it scans the sessions of the log; a turn or
job still running whose owner is not alive gets ``turn.interrupted`` /
``job.interrupted``, and every approval still pending for such work (or for work
that already ended) is resolved ``expired``. Messages left streaming keep the
text their deltas carried: the fold marks them interrupted. A turn that was
admitted (queued) but had not started has no record: its mark in the session's
metadata (see :mod:`.admitted`) names it and its owner, and it gets
``turn.started`` then ``turn.interrupted`` (the log ends only work that started).

Which owners are alive is an :class:`Ownership`'s answer. The default,
:class:`LocalOwnership`, knows only itself: one process per log. A distributed
backend plugs in leases (say, a Redis key per live runtime with a TTL) by
passing its own ``Ownership`` to the runtime.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .. import events as ev
from ..backends import Fence
from ..channel import Session
from ..errors import LifecycleViolation
from ..hub import Hub
from ..state import SessionState
from .admitted import drop_marks, marks_of

logger = logging.getLogger("sessionwire.runtime.recovery")


class Ownership(Protocol):
    """Tells which runtime instances are alive, and the fence of this one's work."""

    async def is_owner_alive(self, owner: str) -> bool:
        """Whether the runtime instance ``owner`` is alive and still runs its work."""
        ...

    def fence(self) -> Fence | None:
        """What the work this runtime starts now appends with (None: nothing to fence, one process)."""
        ...


class LocalOwnership:
    """One runtime per log: only ``owner`` itself is alive."""

    def __init__(self, owner: str) -> None:
        self.owner = owner

    async def is_owner_alive(self, owner: str) -> bool:
        """Alive iff it is this runtime."""
        return owner == self.owner

    def fence(self) -> Fence | None:
        """None: nobody takes over the work of the one runtime on a log."""
        return None


@dataclass
class Recovered:
    """What recovery closed, by session."""

    turns: dict[str, list[str]] = field(default_factory=dict)
    jobs: dict[str, list[str]] = field(default_factory=dict)
    approvals: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many turns, jobs and approvals were closed."""
        return sum(len(v) for d in (self.turns, self.jobs, self.approvals) for v in d.values())


REASON = "the process running it stopped before it ended"


async def closing_events(
    state: SessionState, ownership: Ownership, reason: str = REASON, admitted: Mapping[str, str] | None = None
) -> list[ev.Event]:
    """The records that close what ``state`` has left open by owners that are not alive.

    Args:
        admitted: The session's marks of admitted turns (``{turn: owner}``, see :mod:`.admitted`).
    """
    return (await _closing(state, ownership, reason, admitted or {}))[0]


async def _closing(
    state: SessionState, ownership: Ownership, reason: str, admitted: Mapping[str, str]
) -> tuple[list[ev.Event], set[str]]:
    # The records, and the marks that are done with (their owner is not alive).
    alive: dict[str | None, bool] = {}

    async def live(owner: str | None) -> bool:
        if owner not in alive:
            alive[owner] = owner is not None and await ownership.is_owner_alive(owner)
        return alive[owner]

    out: list[ev.Event] = []
    open_turns: set[str] = set()
    open_jobs: set[str] = set()
    for turn in state.turns.values():
        if turn.status == "running":
            if await live(turn.owner):
                open_turns.add(turn.id)
            else:
                out.append(ev.TurnInterrupted(turn=turn.id, reason=reason))
    for job in state.jobs.values():
        if job.status == "running":
            if await live(job.owner):
                open_jobs.add(job.id)
            else:
                out.append(ev.JobInterrupted(job=job.id, reason=reason))
    for approval in state.approvals.values():
        if approval.status != "pending":
            continue
        if approval.job is not None:
            waited = approval.job in open_jobs
        elif approval.turn is not None:
            waited = approval.turn in open_turns
        else:
            waited = False
        if not waited:
            # Resolved before the terminal, so the record order reads as it happened. Work that
            # already ended (an external producer's, which left it pending) is not named: the
            # log refuses a record that names ended work.
            ended = {t.id for t in state.turns.values() if t.status != "running"}
            ended |= {j.id for j in state.jobs.values() if j.status != "running"}
            of_turn = approval.turn if approval.turn not in ended else None
            of_job = approval.job if approval.job not in ended else None
            out.insert(0, ev.ApprovalResolved(approval=approval.id, decision="expired", turn=of_turn, job=of_job))
    done: set[str] = set()
    for turn_id, owner in admitted.items():
        if await live(owner):
            continue  # still queued in a live runtime: it starts (or ends) there
        done.add(turn_id)
        if turn_id not in state.turns:  # else it has records, and its terminal (if any) is handled above
            # The log ends only work that started: it starts (as its owner's) and ends at once.
            out += [ev.TurnStarted(turn=turn_id, owner=owner), ev.TurnInterrupted(turn=turn_id, reason=reason)]
    return out, done


async def close_left_open(
    hub: Hub, session: Session, ownership: Ownership, reason: str = REASON, admitted: Mapping[str, str] | None = None
) -> list[ev.Event]:
    """Append the records that close what owners that are not alive left open in ``session``; return them.

    Also drops their marks of admitted turns from the session's metadata.

    Args:
        admitted: The session's marks, if already read (default: read from its metadata).
    """
    if admitted is None:
        admitted = marks_of(await hub.log.get_meta(session.id))
    events, done = await _closing(await session.state(), ownership, reason, admitted)
    if events:
        await session.publish_many(events)
    await drop_marks(hub, session.id, done)  # after the records: a crash between leaves only a stale mark
    return events


async def recover(hub: Hub, ownership: Ownership, reason: str = REASON) -> Recovered:
    """Close every turn, job and approval left open by a runtime that is not alive, in every session.

    Scans the sessions with metadata (``hub.log.sessions()``) and those open in the hub.
    Sessions it had to open are evicted again afterwards.
    """
    done = Recovered()
    marks = {meta.id: marks_of(meta) for meta in await hub.log.sessions()}
    ids = [*marks, *(i for i in hub.sessions() if i not in marks)]
    for session_id in ids:
        was_open = hub.open_session(session_id) is not None
        session = await hub.session(session_id)
        try:
            events = await close_left_open(hub, session, ownership, reason, marks.get(session_id, {}))
        except LifecycleViolation:
            # One session's records the log refuses must not keep the others' work open.
            logger.exception("recovery could not close the work left open in session %s", session_id)
            continue
        if events:
            for e in events:
                if isinstance(e, ev.TurnInterrupted):
                    done.turns.setdefault(session_id, []).append(e.turn)
                elif isinstance(e, ev.JobInterrupted):
                    done.jobs.setdefault(session_id, []).append(e.job)
                elif isinstance(e, ev.ApprovalResolved):
                    done.approvals.setdefault(session_id, []).append(e.approval)
        if not was_open and session.idle:
            await hub.evict(session_id)
    return done
