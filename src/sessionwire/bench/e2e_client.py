"""The client side of the end-to-end runs: K streams in a process of its own.

``python -m sessionwire.bench.child e2e-client PROTO PORT PATH SESSION TOKEN K N`` opens K
SSE streams (``PROTO`` = ``sse``: plain asyncio sockets, chunked or not) or K
WebSockets (``ws``: ``/v1/ws`` and a ``subscribe`` op, one record per frame; ``ws-batch``:
the same with ``"batch": true``, arrays of records), prints ``{"connected"}``
once all are subscribed, then reads until every stream has N records. A record's
text is the server's monotonic clock at publish (the clock is system-wide), so
the latency of each delivery is its receipt time minus that. Prints
``{"last", "latencies"}`` (latencies of at most 16 streams) and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncGenerator
from typing import Any

_STAMP = re.compile(rb'"text":"(\d+\.\d+)"')
SAMPLED_STREAMS = 16


class _Chunked:
    """Incremental decoder of an HTTP/1.1 chunked body."""

    def __init__(self) -> None:
        self.buffer = b""
        self.left = 0  # data bytes of the current chunk still to come
        self.skip = 0  # bytes of the CRLF after a chunk still to skip

    def feed(self, data: bytes) -> bytes:
        """The body bytes in ``data`` (what is left of a chunk header waits for more)."""
        buf = self.buffer + data
        out = []
        i = 0
        while i < len(buf):
            if self.left:
                take = min(self.left, len(buf) - i)
                out.append(buf[i : i + take])
                i += take
                self.left -= take
                if not self.left:
                    self.skip = 2
            elif self.skip:
                take = min(self.skip, len(buf) - i)
                i += take
                self.skip -= take
            else:
                end = buf.find(b"\r\n", i)
                if end < 0:
                    break
                self.left = int(buf[i:end].split(b";")[0], 16)
                i = end + 2
                if not self.left:
                    self.skip = 2
        self.buffer = buf[i:]
        return b"".join(out)


async def _sse_blocks(
    port: int, path: str, token: str, connected: asyncio.Event
) -> AsyncGenerator[tuple[float, bytes], None]:
    """Open an SSE stream; yield each read's complete lines with its receipt time (monotonic)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n{auth}\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"GET {path}: {head.splitlines()[0].decode()}")
        decoder = _Chunked() if b"transfer-encoding: chunked" in head.lower() else None
        connected.set()
        rest = b""
        while True:
            data = await reader.read(262_144)
            if not data:
                return
            now = time.monotonic()
            if decoder is not None:
                data = decoder.feed(data)
            data = rest + data
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            yield now, data[:cut]
    finally:
        writer.close()


async def _sse_stream(port: int, path: str, token: str, n: int, connected: asyncio.Event, out: list[float]) -> float:
    got, last = 0, 0.0
    async with contextlib.aclosing(_sse_blocks(port, path, token, connected)) as blocks:
        async for now, block in blocks:
            stamps = _STAMP.findall(block)
            got += len(stamps)
            for stamp in stamps:
                out.append(now - float(stamp))
            if stamps:
                last = now
            if got >= n:
                return last
    raise RuntimeError(f"the server closed the stream after {got} of {n} records")


async def _ws_stream(
    port: int, session: str, token: str, n: int, connected: asyncio.Event, out: list[float], batch: bool
) -> float:
    from websockets.asyncio.client import connect

    subscribe = {"op": "subscribe", "id": 1, "session": session, "token": token, "after": 0}
    if batch:
        subscribe["batch"] = True
    async with connect(f"ws://127.0.0.1:{port}/v1/ws", max_size=None) as ws:
        await ws.send(json.dumps(subscribe))
        got, last = 0, 0.0
        while True:
            message = await ws.recv(decode=False)
            if message.startswith(b'{"reply"'):
                if b'"ok":true' not in message:
                    raise RuntimeError(f"subscribe failed: {message!r}")
                connected.set()
                continue
            stamps = _STAMP.findall(message)  # one per frame, or the records of an array
            if not stamps:
                continue
            last = time.monotonic()
            for stamp in stamps:
                out.append(last - float(stamp))
            got += len(stamps)
            if got >= n:
                return last


async def main(proto: str, port: int, path: str, session: str, token: str, k: int, n: int) -> dict[str, Any]:
    """Open K streams, report when all are subscribed, read N records on each; the figures."""
    samples: list[list[float]] = [[] for _ in range(k)]
    flags = [asyncio.Event() for _ in range(k)]
    tasks = []
    for i in range(k):
        if proto == "sse":
            coro = _sse_stream(port, path, token, n, flags[i], samples[i])
        else:
            coro = _ws_stream(port, session, token, n, flags[i], samples[i], batch=proto == "ws-batch")
        tasks.append(asyncio.ensure_future(coro))
    waiting: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*(f.wait() for f in flags)))
    await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if not waiting.done():
        waiting.cancel()
        for task in tasks:
            error = task.exception() if task.done() else None
            if error is not None:
                raise error
    print(json.dumps({"connected": True}), flush=True)
    lasts = await asyncio.gather(*tasks)
    step = max(1, k // SAMPLED_STREAMS)
    latencies = [v for s in samples[::step] for v in s]
    return {"last": max(lasts), "latencies": latencies}


_DELTA = re.compile(rb'"type":"message\.delta".*?"text":"((?:[^"\\]|\\.)*)"')
_WORD = re.compile(rb"w(\d+)")


async def _words_stream(port: int, path: str, token: str, n: int, connected: asyncio.Event, out: list[float]) -> None:
    """Read an SSE stream until words w1..wN all came in ``message.delta`` records; their arrival times."""
    arrived = [0.0] * (n + 1)
    got = 0
    async with contextlib.aclosing(_sse_blocks(port, path, token, connected)) as blocks:
        async for now, block in blocks:
            for text in _DELTA.findall(block):
                for number in _WORD.findall(text):
                    i = int(number)
                    if i != got + 1:  # every word once, in order
                        raise RuntimeError(f"word w{i} came after w{got}")
                    arrived[i] = now
                    got = i
            if got >= n:
                out.extend(arrived[1:])
                return
    raise RuntimeError(f"the server closed the stream after {got} of {n} words")


async def words_main(port: int, path: str, token: str, k: int, n: int) -> dict[str, Any]:
    """K SSE streams of an answer of N words: when each word reached each of (at most 16) streams."""
    arrivals: list[list[float]] = [[] for _ in range(k)]
    flags = [asyncio.Event() for _ in range(k)]
    tasks = [asyncio.ensure_future(_words_stream(port, path, token, n, flags[i], arrivals[i])) for i in range(k)]
    waiting: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*(f.wait() for f in flags)))
    await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if not waiting.done():
        waiting.cancel()
        for task in tasks:
            if task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    print(json.dumps({"connected": True}), flush=True)
    await asyncio.gather(*tasks)
    step = max(1, k // SAMPLED_STREAMS)
    return {"arrivals": arrivals[::step]}
