"""Durable append on Redis Streams: the redis log beside raw pipelined ``XADD``.

A redis-server of the benchmark's own runs on a free port (``appendonly yes``,
``appendfsync everysec``), flushed before every run. Ours: P producers (one
session each), each awaiting its own ``log.append`` of 1 or 64 records on
``redis://``. Baseline: the same P producers on one ``redis.asyncio`` client,
each awaiting its own ``XADD`` (1 record) or pipeline of 64 ``XADD``s.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..events import Record
from .durable import calls_for, log_run
from .encode import sample_events
from .figures import Pair, Target
from .modes import Mode
from .report import Section


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _send(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(command)
        return sock.recv(64)


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[int]:
    """A redis-server on a free port of 127.0.0.1, stopped on exit; yields the port."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory)]
    args += ["--appendonly", "yes", "--appendfsync", "everysec"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if _send(port, b"PING\r\n").startswith(b"+PONG"):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.02)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


async def raw_run(port: int, producers: int, batch: int, calls: int) -> float:
    """Records/s of raw XADDs: P producers each awaiting one XADD or one pipeline of ``batch``."""
    # redis-py (with hiredis) as the backend uses it: only the backend imports the driver.
    from ..backends.redis.log import connect

    ts = time.time_ns() // 1_000_000
    payloads = [Record("s_0", i + 1, ts, e).raw for i, e in enumerate(sample_events(batch))]
    client: Any = connect(f"redis://127.0.0.1:{port}/0", max_connections=producers + 1)
    try:
        await client.ping()

        async def producer(p: int) -> None:
            key = f"raw:{p}"
            for _ in range(calls):
                if batch == 1:
                    await client.xadd(key, {"d": payloads[0]})
                    continue
                pipe = client.pipeline(transaction=False)
                for payload in payloads:
                    pipe.xadd(key, {"d": payload})
                await pipe.execute()

        started = time.perf_counter()
        await asyncio.gather(*(producer(p) for p in range(producers)))
        return producers * calls * batch / (time.perf_counter() - started)
    finally:
        await client.aclose()


async def measure(mode: Mode, scratch: Path) -> Section:
    """The Redis section: for each P and batch size, the redis log beside raw XADD, interleaved."""
    section = Section(
        "Durable append (Redis Streams)",
        "Ours: P producers (one session each), each awaiting its own `log.append` on `redis://` (a Lua script "
        "per group of queued appends: seq counter, record JSON, XADD). Baseline: the same P producers on one "
        "`redis.asyncio` client, each awaiting its own `XADD`, or its own pipeline of 64 `XADD`s. Own "
        "redis-server (appendonly yes, everysec), flushed before every run.",
        plot="throughput",
        xlabel="concurrent producers P",
    )
    if importlib.util.find_spec("redis") is None or shutil.which("redis-server") is None:
        section.skipped = "needs the redis extra (redis[hiredis]) and redis-server"
        return section
    directory = scratch / "redis"
    directory.mkdir(exist_ok=True)
    with redis_server(directory) as port:
        url = f"redis://127.0.0.1:{port}/0"
        for batch in (1, 64):
            for producers in mode.producers:
                total = mode.single_records if batch == 1 else mode.batch_records
                calls = calls_for(total, producers, batch)
                group = f"{batch} record{'s' if batch > 1 else ''}/append"
                pair = Pair(f"P={producers}, {group}", "records/s", x=producers, group=group)
                if batch == 64:
                    pair.target = Target(0.7)
                for rep in range(mode.repeats):
                    figures: dict[str, float] = {}
                    for name in ("ours", "base") if rep % 2 == 0 else ("base", "ours"):
                        await asyncio.to_thread(_send, port, b"FLUSHALL\r\n")
                        if name == "ours":
                            figures[name] = await log_run(url, producers, batch, calls)
                        else:
                            figures[name] = await raw_run(port, producers, batch, calls)
                    pair.add(figures["ours"], figures["base"])
                section.pairs.append(pair)
    return section
