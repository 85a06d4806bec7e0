"""Scale in process: RSS per open session and per idle subscriber.

Each run is a fresh child process (``python -m sessionwire.bench.child scale N``), so
memory freed by earlier parts cannot hide growth. The child opens N sessions
of a ``Hub`` on ``memory://`` (each with one record, as a created session has),
then gives each one idle subscriber: a task inside ``session.subscribe()``
waiting on ``await sub.batch()``. Baseline for the subscriber: a task waiting
on its own ``asyncio.Queue`` (the usual per-subscriber queue), also N of them.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
from typing import Any

from ..events import SessionCreated
from ..hub import Hub
from .figures import Pair, Target
from .modes import Mode
from .process import rss
from .report import Section


def _settled_rss() -> int:
    gc.collect()
    return rss()


async def child_main(sessions: int) -> dict[str, float]:
    """The measurement, in the child process: bytes per session, subscriber and queue subscriber."""
    out: dict[str, float] = {}
    async with Hub.open("memory://", idle_timeout=3600) as hub:
        # Warm up every code path once, so imports and caches are not counted.
        warm = await hub.session("warm")
        await warm.publish(SessionCreated(title="warm"))
        before = _settled_rss()
        opened = []
        for i in range(sessions):
            session = await hub.session(f"s_{i:06d}")
            await session.publish(SessionCreated(title=f"conversation {i}"))
            opened.append(session)
        after_sessions = _settled_rss()
        out["session_bytes"] = (after_sessions - before) / sessions

        ready = asyncio.Event()
        joined = 0
        release = asyncio.Event()

        async def idle(session: Any) -> None:
            nonlocal joined
            async with session.subscribe(after=session.last_seq) as sub:
                joined += 1
                if joined == sessions:
                    ready.set()
                waiting = asyncio.ensure_future(sub.batch())
                await release.wait()
                waiting.cancel()

        tasks = [asyncio.create_task(idle(s)) for s in opened]
        await ready.wait()
        await asyncio.sleep(0)
        out["subscriber_bytes"] = (_settled_rss() - after_sessions) / sessions
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    before = _settled_rss()
    queues: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in range(sessions)]
    waiters = [asyncio.create_task(q.get()) for q in queues]
    await asyncio.sleep(0)
    out["queue_subscriber_bytes"] = (_settled_rss() - before) / sessions
    for w in waiters:
        w.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    return out


def child_run(sessions: int) -> dict[str, float]:
    """Run one measurement in a fresh interpreter; bytes per session, subscriber and queue subscriber."""
    done = subprocess.run(
        [sys.executable, "-m", "sessionwire.bench.child", "scale", str(sessions)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def measure(mode: Mode) -> Section:
    """The scale section: KB per open session and per idle subscriber, each run in a fresh process."""
    n = mode.scale_sessions
    section = Section(
        "Scale in process (memory)",
        f"A fresh process opens {n} sessions of a `Hub` on `memory://` (one record each), then gives each one "
        "idle subscriber (a task inside `session.subscribe()` waiting on `sub.batch()`). RSS growth divided by "
        f"{n}. Baseline for the subscriber: {n} tasks each waiting on its own `asyncio.Queue`.",
    )
    if rss() == 0:
        section.skipped = "RSS is read from /proc, which this system does not have"
        return section
    session = Pair(f"per open session ({n})", "KB", target=Target(20.0, at_least=False, on_ours=True))
    subscriber = Pair(f"per idle subscriber ({n})", "KB", target=Target(5.0, at_least=False, on_ours=True))
    for _ in range(max(1, mode.repeats // 2)):
        figures = await asyncio.to_thread(child_run, n)
        session.ours.add(figures["session_bytes"] / 1024)
        subscriber.add(figures["subscriber_bytes"] / 1024, figures["queue_subscriber_bytes"] / 1024)
    for pair in (session, subscriber):
        pair.higher_is_better = False
    section.pairs += [session, subscriber]
    section.notes.append("Lower is better; the memory targets are on our own figure, not on a ratio.")
    return section
