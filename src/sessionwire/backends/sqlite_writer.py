"""What the SQLite log's writer thread takes from its queue, and how it answers the loop that asked."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from ..events import Event, Record, encode_event
from .lifecycle import plan

__all__ = ["STOP", "Append", "Failure", "Job", "answer", "run_job"]


class Append:
    """An append: its events encoded and its lifecycle plan made on the loop, before the queue."""

    __slots__ = ("events", "future", "loop", "payloads", "plan", "session")

    def __init__(
        self,
        session: str,
        events: Sequence[Event],
        future: asyncio.Future[list[Record]],
        loop: asyncio.AbstractEventLoop,
        external: bool,
    ) -> None:
        self.session = session
        self.events = events
        self.payloads = [encode_event(e) for e in events]
        self.plan = plan(events, external)
        self.future = future
        self.loop = loop


class Job:
    """Any other write (snapshot, meta, delete), run in order with the appends."""

    __slots__ = ("fn", "future", "loop")

    def __init__(
        self, fn: Callable[[sqlite3.Connection], Any], future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop
    ):
        self.fn = fn
        self.future = future
        self.loop = loop


STOP = object()
"""Put last in the queue: the writer thread ends."""


class Failure:
    """An exception to raise in the caller, not a value."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def run_job(fn: Callable[[sqlite3.Connection], Any], conn: sqlite3.Connection) -> Any:
    """``fn(conn)``, or its exception as a :class:`Failure`."""
    try:
        return fn(conn)
    except BaseException as exc:
        return Failure(exc)


def answer(loop: asyncio.AbstractEventLoop, results: list[tuple[asyncio.Future[Any], Any]]) -> None:
    """Resolve each future with its value (or raise its Failure) on ``loop``: one hop for them all."""

    def settle() -> None:
        for future, value in results:
            if future.done():
                continue
            if isinstance(value, Failure):
                future.set_exception(value.exc)
            else:
                future.set_result(value)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:
        pass  # the loop is closed: nobody is waiting any more
