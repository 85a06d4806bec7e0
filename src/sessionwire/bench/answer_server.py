"""The server side of the answer runs: an agent's answer streamed to K SSE clients, in a process of its own.

``python -m sessionwire.bench.child answer-server KIND SCRATCH`` serves one of:

- ``ours``: the sessionwire app as ``sessionwire serve`` runs it (a SQLite file in SCRATCH, the
  scripted agent at 1 ms per token, the server's default coalescing);
- ``raw``: a minimal asyncio socket server that paces the same words (1 ms each) and writes one
  SSE frame per word to every client.

Both note when each word was produced (the monotonic clock, system-wide), so the client can
tell each word's latency: produced → received. The protocol on stdin/stdout is the one of
:mod:`.e2e_server` (``{"port"}``, ``{"round", "k"}`` → the stream's ``{"path", "session",
"token"}``, ``{"cpu"}``), with ``{"answer": N}``: wait for K subscribers, stream N words and
print ``{"produced": [...], "rss_per_conn"}`` (the RSS growth once the K clients joined, per
client) once the answer is over; ``{"cpu"}`` (asked once the clients have
every word) answers the CPU seconds used since the answer began.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from ..events import MessageDelta, Record
from ..hub import Hub
from ..runtime import Runtime, ScriptedProvider
from ..runtime.providers.scripted import Pace
from .e2e_server import Raw, _lines, _say, _serve
from .process import rss

TOKEN_DELAY = 0.001
"""Seconds between two words, as `sessionwire serve --token-delay-ms 1` paces them."""


class TimedProvider(ScriptedProvider):
    """The scripted agent, noting when it produces each word."""

    def __init__(self) -> None:
        super().__init__(delay=TOKEN_DELAY)
        self.produced: list[float] = []

    async def _stream(self, write: Callable[[str], Awaitable[None]], tokens: Iterable[str]) -> int:
        count = 0
        pace = Pace(TOKEN_DELAY)
        for i, token in enumerate(tokens):
            self.produced.append(time.monotonic())
            await write(token)
            count += 1
            await pace.after(i)
        return count


class OursAgent:
    """``sessionwire serve``'s app, agent and store: the answer is a `/long N` turn."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.port = 0
        self.session: Any = None

    async def start(self) -> None:
        from ..server.app import create_app
        from ..server.settings import Settings

        settings = Settings(host="127.0.0.1", port=0, log_level="warning", heartbeat=15.0, shutdown_timeout=1.0)
        self.hub_cm = Hub.open(f"sqlite:///{self.scratch / 'answer.db'}", idle_timeout=3600)
        self.hub = await self.hub_cm.__aenter__()
        self.provider = TimedProvider()
        self.runtime_cm = Runtime(self.hub, self.provider, coalesce_ms=settings.coalesce_ms)
        self.runtime = await self.runtime_cm.__aenter__()
        self.app = create_app(settings, hub=self.hub, runtime=self.runtime)
        self.server, self.task, self.port = await _serve(self.app)

    async def new_round(self, round_no: int) -> dict[str, str]:
        self.session, token = await self.hub.create_session(f"answer_{round_no}", title="bench")
        return {"path": f"/v1/sessions/{self.session.id}/events", "session": self.session.id, "token": token}

    def subscribers(self) -> int:
        return int(self.session.subscribers) if self.session is not None else 0

    async def answer(self, words: int) -> list[float]:
        self.provider.produced = []
        dispatched = await self.runtime.dispatch(self.session.id, f"/long {words}")
        async with self.session.subscribe(after=dispatched.after) as records:
            async for item in records:
                if isinstance(item, Record) and item.type.startswith("turn.") and item.type != "turn.started":
                    if item.type != "turn.completed":
                        raise RuntimeError(f"the answer ended {item.type}: {item.to_json()}")
                    break
        return list(self.provider.produced)

    async def stop(self) -> None:
        self.app.state.wire.stop_streams()
        self.server.should_exit = True
        await self.task
        await self.runtime_cm.__aexit__(None, None, None)
        await self.hub_cm.__aexit__(None, None, None)


class RawAgent(Raw):
    """The raw socket server, pacing the words itself: one SSE frame per word per client."""

    def __init__(self, scratch: Path) -> None:
        super().__init__()

    async def answer(self, words: int) -> list[float]:
        produced: list[float] = []
        pace = Pace(TOKEN_DELAY)  # as the scripted agent paces its words
        for i in range(words):
            produced.append(time.monotonic())
            self.publish(MessageDelta(message="m_1", part=0, text=f" w{i + 1}", turn="t_1"))
            await pace.after(i)
        return produced


async def main(kind: str, scratch: str) -> None:
    """Serve ``kind`` and follow the benchmark's commands on stdin."""
    backend = (OursAgent if kind == "ours" else RawAgent)(Path(scratch))
    await backend.start()
    _say({"port": backend.port})
    cpu, k, idle = 0.0, 0, 0
    try:
        async for command in _lines():
            if "round" in command:
                k = int(command["k"])
                idle = rss()
                _say(await backend.new_round(int(command["round"])))
            elif "answer" in command:
                while backend.subscribers() < k:  # noqa: ASYNC110 (clients join in the server's tasks)
                    await asyncio.sleep(0.005)
                connected = rss()
                cpu = time.process_time()
                produced = await backend.answer(int(command["answer"]))
                _say({"produced": produced, "rss_per_conn": (connected - idle) / max(1, k)})
            elif "cpu" in command:  # once the clients have every word: the writes are done
                _say({"cpu": time.process_time() - cpu})
    finally:
        await backend.stop()
