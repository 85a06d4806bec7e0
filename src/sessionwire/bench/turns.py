"""Many concurrent turns: T sessions, one subscriber each, a scripted turn in every one at once.

Ours: a ``Hub`` on a SQLite file and a ``Runtime`` with the scripted provider
(``/long W``: W words, word i due ``i * delay`` seconds after the turn's start,
as a provider's stream is; deltas coalesced as the runtime does by default);
every session has a subscriber that reads until its turn's terminal record.
Baseline: the same schedule in plain asyncio, T tasks that pace their words the
same way (:class:`~sessionwire.runtime.providers.scripted.Pace`) and
``put_nowait`` each into their session's queue, one consumer per queue.
Figures: time from dispatch to the last terminal record, and each turn's
completion time (p50/p99).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ..events import TERMINAL_TYPES, Record
from ..hub import Hub
from .durable import fresh_db_path, remove_db
from .figures import Pair, Spread, Target, percentile
from .modes import Mode
from .report import Section

DELAY = 0.01
TERMINAL_TURN = frozenset(t for t in TERMINAL_TYPES if t.startswith("turn."))


async def ours_run(directory: Path, turns: int, words: int) -> tuple[float, list[float]]:
    """Seconds until every turn ended, and each turn's completion time (ours)."""
    from ..runtime import Runtime, ScriptedProvider

    path = fresh_db_path(str(directory))
    try:
        async with Hub.open(f"sqlite:///{path}") as hub:
            sessions = [(await hub.create_session(f"s_{i:04d}"))[0] for i in range(turns)]
            async with Runtime(hub, ScriptedProvider(delay=DELAY)) as runtime:
                ready = asyncio.Event()
                joined = 0
                ended: list[float] = [0.0] * turns

                async def follow(i: int) -> None:
                    nonlocal joined
                    session = sessions[i]
                    async with session.subscribe(after=session.last_seq) as sub:
                        joined += 1
                        if joined == turns:
                            ready.set()
                        while True:
                            for item in await sub.batch():
                                if isinstance(item, Record) and item.type in TERMINAL_TURN:
                                    ended[i] = time.perf_counter()
                                    return

                followers = [asyncio.create_task(follow(i)) for i in range(turns)]
                await ready.wait()
                started = time.perf_counter()
                for session in sessions:
                    await runtime.dispatch(session.id, f"/long {words}")
                await asyncio.gather(*followers)
        return max(ended) - started, [t - started for t in ended]
    finally:
        remove_db(path)


async def base_run(turns: int, words: int) -> tuple[float, list[float]]:
    """The same schedule in plain asyncio: a task per turn, a queue and a consumer per session."""
    from ..runtime.providers.scripted import Pace

    queues: list[asyncio.Queue[str | None]] = [asyncio.Queue() for _ in range(turns)]
    ended: list[float] = [0.0] * turns

    async def turn(queue: asyncio.Queue[str | None]) -> None:
        pace = Pace(DELAY)  # as the scripted agent paces its words
        for w in range(words):
            await pace.after(w)
            queue.put_nowait(f"w{w + 1} ")
        queue.put_nowait(None)

    async def consume(i: int) -> None:
        while await queues[i].get() is not None:
            pass
        ended[i] = time.perf_counter()

    consumers = [asyncio.create_task(consume(i)) for i in range(turns)]
    started = time.perf_counter()
    producers = [asyncio.create_task(turn(q)) for q in queues]
    await asyncio.gather(*producers, *consumers)
    return max(ended) - started, [t - started for t in ended]


async def measure(mode: Mode, scratch: Path) -> Section:
    """The concurrent-turns section."""
    turns, words = mode.turns, mode.turn_words
    section = Section(
        "Concurrent scripted turns",
        f"{turns} sessions on a SQLite file, one subscriber each; a scripted turn (`/long {words}`, a word every "
        f"{DELAY * 1000:g} ms on the provider's schedule: a turn that fell behind sends what is due at once; "
        "deltas coalesced as the runtime does by default) dispatched in every session at once. Baseline: the same "
        "schedule in plain asyncio (a task per turn pacing its words the same way, a queue and a consumer per "
        f"session). Ideal: {words * DELAY:g} s.",
    )
    try:
        import sessionwire.runtime  # noqa: F401
    except ImportError as exc:
        section.skipped = f"the runtime is not available: {exc}"
        return section
    total = Pair(f"all {turns} turns done", "s")
    total.higher_is_better = False
    total.target = Target(1.5, at_least=False)
    p50, p99, base_p50, base_p99 = Spread(), Spread(), Spread(), Spread()
    for rep in range(max(1, mode.repeats // 2)):
        if rep % 2:
            base = await base_run(turns, words)
            ours = await ours_run(scratch, turns, words)
        else:
            ours = await ours_run(scratch, turns, words)
            base = await base_run(turns, words)
        total.add(ours[0], base[0])
        p50.add(percentile(ours[1], 50))
        p99.add(percentile(ours[1], 99))
        base_p50.add(percentile(base[1], 50))
        base_p99.add(percentile(base[1], 99))
    total.extra = {
        "turn completion p50 ours / base": f"{p50.format()} / {base_p50.format('s')}",
        "p99 ours / base": f"{p99.format()} / {base_p99.format('s')}",
    }
    section.pairs.append(total)
    section.notes.append("Lower is better: a ratio of 1.0 means sessionwire adds nothing to the schedule.")
    return section
