"""Fan-out in process: one producer, S subscribers of one session.

Ours, with the README's API: a :class:`~sessionwire.Hub` on ``memory://``; the producer
awaits each ``session.publish(dict)`` (a dict in wire form, checked and converted, through
the log) and yields to the loop every 64 records; each subscriber iterates
``async for item in sub`` (``iter``) or reads ``await sub.batch()`` (``batch``).
Baseline: one ``asyncio.Queue`` per subscriber, the same producer loop with
``put_nowait`` into every queue, each consumer awaiting ``queue.get()``. Both record,
per delivery, the time from the start of its publish to its receipt.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal

from ..channel import ChannelOptions
from ..events import MessageDelta, Record
from ..hub import Hub
from .figures import Pair, Spread, Target, latency, percentile
from .modes import Mode
from .report import Section

YIELD_EVERY = 64


@dataclass
class FanoutRun:
    """One run: deliveries per second and publish→receive latencies (seconds)."""

    deliveries_per_s: float
    latencies: list[float]


LATENCY_SAMPLE = 16
"""Latencies are computed over every delivery of at most this many subscribers (evenly spread)."""

MESSAGE_TOKENS = 256
"""Text deltas per message: a reply of a few hundred tokens, then the next message."""


CDF_AT = 100
"""The S whose latencies are plotted as a CDF."""


def thin(values: list[float], at_most: int = 20_000) -> list[float]:
    """Every k-th of the sorted values, so a CDF plot stays small."""
    ordered = sorted(values)
    step = max(1, len(ordered) // at_most)
    return ordered[::step]


def _event(i: int) -> MessageDelta:
    return MessageDelta(message=f"m_{i // MESSAGE_TOKENS}", part=0, text=f"tok{i % 100} ", turn="t_1")


def _wire(i: int) -> dict[str, Any]:
    """The event as a producer of the README writes it: a dict in wire form."""
    message = f"m_{i // MESSAGE_TOKENS}"
    return {"type": "message.delta", "message": message, "part": 0, "text": f"tok{i % 100} ", "turn": "t_1"}


Reading = Literal["iter", "batch"]
"""How subscribers read: ``async for item in sub``, or ``await sub.batch()``."""

TARGETS: dict[Reading, float] = {"iter": 3.0, "batch": 5.0}
"""The targets at S=100, on ours/baseline."""


def _sampled(marks: list[list[tuple[float, int, int]]]) -> list[list[tuple[float, int, int]]]:
    step = max(1, len(marks) // LATENCY_SAMPLE)
    return marks[::step]


async def channel_run(
    subscribers: int, records: int, options: ChannelOptions | None = None, reading: Reading = "batch"
) -> FanoutRun:
    """Our channel: Hub on memory://, the producer publishing dicts, S subscribers reading as ``reading`` says."""
    events = [_wire(i) for i in range(records)]
    sent = [0.0] * (records + 1)
    async with Hub.open("memory://", options=options) as hub:
        session = await hub.session("bench-fanout")
        ready = asyncio.Event()
        joined = 0
        marks: list[list[tuple[float, int, int]]] = []

        async def consume() -> None:
            nonlocal joined
            mine: list[tuple[float, int, int]] = []
            marks.append(mine)
            async with session.subscribe(after=0) as sub:
                joined += 1
                if joined == subscribers:
                    ready.set()
                last = 0
                if reading == "iter":
                    # Items that came in one wake-up share its receipt time: marked at the first of
                    # them, closed when no more is buffered (``sub.pending``).
                    first, now = 0, 0.0
                    async for item in sub:
                        if isinstance(item, Record):
                            if not first:
                                first, now = item.seq, time.perf_counter()
                            last = item.seq
                            if not sub.pending:
                                mine.append((now, first, last))
                                first = 0
                                if last >= records:
                                    return
                    raise RuntimeError(f"session {session.id!r} closed after {last} of {records} records")
                while last < records:
                    batch = await sub.batch()
                    now = time.perf_counter()
                    first = 0
                    for item in batch:
                        if isinstance(item, Record):
                            if not first:
                                first = item.seq
                            last = item.seq
                    if first:
                        mine.append((now, first, last))
                    if not batch:
                        raise RuntimeError(f"session {session.id!r} closed after {last} of {records} records")

        tasks = [asyncio.create_task(consume()) for _ in range(subscribers)]
        await ready.wait()
        await asyncio.sleep(0)
        start = time.perf_counter()
        for i, event in enumerate(events, 1):
            sent[i] = time.perf_counter()
            await session.publish(event)
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        await asyncio.gather(*tasks)
    end = max(m[-1][0] for m in marks)
    latencies = [
        now - sent[seq] for mine in _sampled(marks) for now, first, last in mine for seq in range(first, last + 1)
    ]
    return FanoutRun(subscribers * records / (end - start), latencies)


async def queue_run(subscribers: int, records: int) -> FanoutRun:
    """The raw baseline: one asyncio.Queue per subscriber, put_nowait into each."""
    payload = Record("bench-fanout", 1, 0, _event(0)).raw
    items = [(seq, payload) for seq in range(records + 1)]
    sent = [0.0] * (records + 1)
    queues: list[asyncio.Queue[tuple[int, bytes]]] = [asyncio.Queue() for _ in range(subscribers)]
    marks: list[list[tuple[float, int, int]]] = []

    async def consume(queue: asyncio.Queue[tuple[int, bytes]]) -> None:
        mine: list[tuple[float, int, int]] = []
        marks.append(mine)
        seq = 0
        while seq < records:
            seq, _ = await queue.get()
            mine.append((time.perf_counter(), seq, seq))

    tasks = [asyncio.create_task(consume(q)) for q in queues]
    await asyncio.sleep(0)
    start = time.perf_counter()
    for i in range(1, records + 1):
        sent[i] = time.perf_counter()
        item = items[i]
        for queue in queues:
            queue.put_nowait(item)
        if i % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    end = max(m[-1][0] for m in marks)
    latencies = [now - sent[seq] for mine in _sampled(marks) for now, seq, _ in mine]
    return FanoutRun(subscribers * records / (end - start), latencies)


def records_for(subscribers: int, deliveries: int, at_most: int) -> int:
    """Records to publish so a run makes about ``deliveries`` deliveries."""
    return max(YIELD_EVERY, min(at_most, deliveries // subscribers))


async def measure(mode: Mode) -> Section:
    """The fan-out section: for each S and each way of reading, our channel beside the queue baseline, interleaved."""
    section = Section(
        "Fan-out in process",
        "1 producer → S subscribers of one session, with the README's API. Ours: `Hub` on `memory://`, the "
        "producer awaits each `session.publish(dict)` (a dict in wire form, through the log) and yields to the "
        f"loop every {YIELD_EVERY} records; subscribers iterate `async for item in sub` (iter) or read "
        "`await sub.batch()` (batch). Baseline: one `asyncio.Queue` per subscriber, the same loop with "
        "`put_nowait` into each queue. Latency: publish start → receipt, over every delivery (of at most "
        f"{LATENCY_SAMPLE} subscribers per run).",
        plot="throughput",
        xlabel="subscribers S",
    )
    for reading in ("iter", "batch"):
        for subscribers in mode.subscribers:
            section.pairs.append(await _pair(mode, section, subscribers, reading))
    return section


async def _pair(mode: Mode, section: Section, subscribers: int, reading: Reading) -> Pair:
    records = records_for(subscribers, mode.deliveries, mode.max_records)
    pair = Pair(f"S={subscribers}, {reading} ({records} records)", "deliveries/s", x=subscribers, group=reading)
    if subscribers == 100:
        pair.target = Target(TARGETS[reading])
    ours_p50, ours_p99, base_p50, base_p99 = Spread(), Spread(), Spread(), Spread()
    for rep in range(mode.repeats):
        if rep % 2:
            base = await queue_run(subscribers, records)
            ours = await channel_run(subscribers, records, reading=reading)
        else:
            ours = await channel_run(subscribers, records, reading=reading)
            base = await queue_run(subscribers, records)
        pair.add(ours.deliveries_per_s, base.deliveries_per_s)
        ours_p50.add(percentile(ours.latencies, 50))
        ours_p99.add(percentile(ours.latencies, 99))
        base_p50.add(percentile(base.latencies, 50))
        base_p99.add(percentile(base.latencies, 99))
    if reading == "batch" and (subscribers == CDF_AT or (subscribers == max(mode.subscribers) and not section.cdfs)):
        section.cdfs = {
            f"ours, S={subscribers}": thin(ours.latencies),
            f"queue per subscriber, S={subscribers}": thin(base.latencies),
        }
    pair.extra = {
        "ours p50": latency(ours_p50),
        "ours p99": latency(ours_p99),
        "baseline p50": latency(base_p50),
        "baseline p99": latency(base_p99),
    }
    return pair
