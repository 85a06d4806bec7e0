"""Helpers of the runtime tests: run a turn and collect its records, find terminals, read answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sessionwire import Record
from sessionwire.channel import Session
from sessionwire.events import TERMINAL_TYPES
from sessionwire.runtime import Dispatched, Runtime
from sessionwire.state import SessionState, TextPart


def ends(kind: str, work_id: str) -> Callable[[Record], bool]:
    """A predicate: the record is the terminal of turn (or job) ``work_id``."""
    return lambda r: r.type in TERMINAL_TYPES and r.type.startswith(kind) and getattr(r.event, kind) == work_id


async def records_until(
    session: Session, after: int, done: Callable[[Record], bool], timeout: float = 20
) -> list[Record]:
    """Subscribe from ``after`` and collect records until one satisfies ``done``."""
    out: list[Record] = []
    async with asyncio.timeout(timeout), session.subscribe(after) as sub:
        async for item in sub:
            if isinstance(item, Record):
                out.append(item)
                if done(item):
                    return out
    raise AssertionError("the channel closed before the expected record came")


async def run_turn(runtime: Runtime, session: Session, text: str) -> tuple[Dispatched, list[Record]]:
    d = await runtime.dispatch(session.id, text)
    assert d.turn is not None
    return d, await records_until(session, d.after, ends("turn", d.turn))


def turn_records(records: list[Record], turn: str) -> list[Record]:
    return [r for r in records if getattr(r.event, "turn", None) == turn]


def assistant_texts(state: SessionState, turn: str) -> list[str]:
    out = []
    for mid in state.turns[turn].messages:
        m = state.messages[mid]
        if m.role == "assistant":
            out.append("".join(p.text for p in m.parts if isinstance(p, TextPart)))
    return out


async def wait_for_record(session: Session, after: int, match: Callable[[Record], bool]) -> Record:
    return (await records_until(session, after, match))[-1]
