"""The server side of the end-to-end runs, in a process of its own.

``python -m sessionwire.bench.child e2e-server KIND`` serves one of:

- ``ours``: the sessionwire app (``create_app``) on uvicorn, SSE and WebSocket, a hub on ``memory://``;
- ``raw``: a minimal asyncio socket server writing the same pre-encoded SSE bytes to every client,
  one write per record;
- ``starlette``: an sse-starlette endpoint fed by one ``asyncio.Queue`` per client.

It talks to the benchmark over stdin/stdout, one JSON object per line: it prints
``{"port"}`` when it listens; for each ``{"round", "k"}`` it prepares a session
and prints ``{"path", "token"}``; on ``{"go", "n", "rate"}`` it waits for K
subscribers, publishes N records (flat out, yielding every 64, or ``rate`` per
second) whose text is the monotonic clock at publish, and prints
``{"start", "rss_idle", "rss_connected"}``; on ``{"cpu"}`` it prints the CPU
seconds it used since ``go``. End of stdin stops it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import msgspec
import uvicorn

from ..events import MessageDelta, Record
from ..hub import Hub
from .process import rss

YIELD_EVERY = 64


def _event(i: int) -> MessageDelta:
    return MessageDelta(message=f"m_{i // 256}", part=0, text=f"{time.monotonic():.6f}", turn="t_1")


async def produce(publish: Callable[[MessageDelta], Awaitable[Any] | None], n: int, rate: float) -> float:
    """Publish n records flat out (rate 0) or at ``rate`` per second; return the monotonic start."""
    start = time.monotonic()
    for i in range(n):
        if rate:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        done = publish(_event(i))
        if done is not None:
            await done
        if not rate and i % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
    return start


class Backend(Protocol):
    """One kind of server: how to listen, make a round's session, count subscribers, publish."""

    port: int
    """The port it listens on (set by ``start``)."""

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        ...

    async def new_round(self, round_no: int) -> dict[str, str]:
        """A fresh session for the next round; the client's ``path``, ``session`` and ``token``."""
        ...

    def subscribers(self) -> int:
        """Clients subscribed to the round's session."""
        ...

    def publish(self, event: MessageDelta) -> Awaitable[Any] | None:
        """Publish one record to every subscriber."""
        ...

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        ...


async def _serve(app: Any, ws: str = "websockets-sansio") -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    # As `sessionwire serve` runs it (server/runner.py): no per-message deflate.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        ws=ws,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    port = int(server.servers[0].sockets[0].getsockname()[1])
    return server, task, port


class Ours:
    """The sessionwire app: SSE at ``/v1/sessions/{id}/events``, WebSocket at ``/v1/ws``."""

    def __init__(self) -> None:
        self.port = 0
        self.hub_cm: Any = None
        self.hub: Hub | None = None
        self.session: Any = None

    async def start(self) -> None:
        from ..server.app import create_app
        from ..server.settings import Settings

        self.hub_cm = Hub.open("memory://", idle_timeout=3600)
        self.hub = await self.hub_cm.__aenter__()
        settings = Settings(host="127.0.0.1", port=0, log_level="warning", heartbeat=15.0, shutdown_timeout=1.0)
        self.app = create_app(settings, hub=self.hub, runtime=False)
        self.server, self.task, self.port = await _serve(self.app)

    async def new_round(self, round_no: int) -> dict[str, str]:
        if self.hub is None:
            raise RuntimeError("the server is not started")
        self.session, token = await self.hub.create_session(f"bench_{round_no}", title="bench")
        return {"path": f"/v1/sessions/{self.session.id}/events", "session": self.session.id, "token": token}

    def subscribers(self) -> int:
        return int(self.session.subscribers) if self.session is not None else 0

    def publish(self, event: MessageDelta) -> Awaitable[Any]:
        return self.session.publish(event)  # type: ignore[no-any-return]

    async def stop(self) -> None:
        self.app.state.wire.stop_streams()
        self.server.should_exit = True
        await self.task
        await self.hub_cm.__aexit__(None, None, None)


_RAW_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\nconnection: close\r\n\r\n"
)


class Raw:
    """A minimal asyncio server: read the request, answer 200, write each record's SSE bytes."""

    def __init__(self) -> None:
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.seq = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(_RAW_HEAD)
            self.writers.append(writer)
            await reader.read()  # until the client goes
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if writer in self.writers:
                self.writers.remove(writer)
            writer.close()

    async def new_round(self, round_no: int) -> dict[str, str]:
        self.seq = 0
        return {"path": "/events", "session": f"bench_{round_no}", "token": ""}

    def subscribers(self) -> int:
        return len(self.writers)

    def publish(self, event: MessageDelta) -> None:
        self.seq += 1
        record = Record("bench", self.seq, time.time_ns() // 1_000_000, event)
        frame = b"id: %d\nevent: %b\ndata: %b\n\n" % (record.seq, record.type.encode(), record.raw)
        for writer in self.writers:
            writer.write(frame)

    async def stop(self) -> None:
        for writer in list(self.writers):
            writer.close()
        self.server.close()
        await self.server.wait_closed()


class SseStarlette:
    """An sse-starlette endpoint with one queue per client, the usual way to serve SSE."""

    def __init__(self) -> None:
        self.port = 0
        self.queues: list[asyncio.Queue[tuple[str, str] | None]] = []
        self.seq = 0

    async def start(self) -> None:
        from sse_starlette.sse import EventSourceResponse
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.routing import Route

        backend = self

        async def events(request: Request) -> EventSourceResponse:
            queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
            backend.queues.append(queue)

            async def stream() -> AsyncIterator[dict[str, Any]]:
                try:
                    while True:
                        item = await queue.get()
                        if item is None:  # the server stops
                            return
                        yield {"id": item[0], "event": "message.delta", "data": item[1]}
                finally:
                    backend.queues.remove(queue)

            return EventSourceResponse(stream(), ping=15)

        self.app = Starlette(routes=[Route("/events", events)])
        self.server, self.task, self.port = await _serve(self.app)

    async def new_round(self, round_no: int) -> dict[str, str]:
        self.seq = 0
        return {"path": "/events", "session": f"bench_{round_no}", "token": ""}

    def subscribers(self) -> int:
        return len(self.queues)

    def publish(self, event: MessageDelta) -> None:
        self.seq += 1
        record = Record("bench", self.seq, time.time_ns() // 1_000_000, event)
        item = (str(record.seq), record.raw.decode())
        for queue in self.queues:
            queue.put_nowait(item)

    async def stop(self) -> None:
        for queue in self.queues:
            queue.put_nowait(None)
        self.server.should_exit = True
        await self.task


BACKENDS: dict[str, Callable[[], Backend]] = {"ours": Ours, "raw": Raw, "starlette": SseStarlette}


async def _lines() -> AsyncIterator[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        yield msgspec.json.decode(line)


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(msgspec.json.encode(message).decode() + "\n")
    sys.stdout.flush()


async def main(kind: str) -> None:
    """Serve ``kind`` and follow the benchmark's commands on stdin."""
    backend = BACKENDS[kind]()
    await backend.start()
    _say({"port": backend.port})
    rss_idle = 0
    cpu = 0.0
    k = 0
    try:
        async for command in _lines():
            if "round" in command:
                k = int(command["k"])
                rss_idle = rss()
                _say(await backend.new_round(int(command["round"])))
            elif "go" in command:
                # Clients join in the server's own tasks; none of the servers has an event for it.
                while backend.subscribers() < k:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
                rss_connected = rss()
                cpu = time.process_time()
                start = await produce(backend.publish, int(command["n"]), float(command["rate"]))
                _say({"start": start, "rss_idle": rss_idle, "rss_connected": rss_connected})
            elif "cpu" in command:
                _say({"cpu": time.process_time() - cpu})
    finally:
        await backend.stop()
