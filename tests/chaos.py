"""``make chaos``: faults against real servers on loopback, each client's records checked against the log.

Scenarios (each bounded in time; about a minute in all):

- ``cuts``: SSE and WebSocket clients behind proxies that cut every connection at random
  moments, during a long turn and a job on SQLite; each client resumes from the last seq it took.
- ``kill``: ``sessionwire serve`` on SQLite killed with SIGKILL mid-turn and mid-job, and
  restarted on the same file, several times; the clients reconnect and resume.
- ``redis``: two servers on one Redis with a one-second retry window; Redis stops for three
  seconds mid-turn and mid-job, then comes back.
- ``slow``: an SSE client that reads 512 KB/s (small socket buffers) beside a normal one, during a
  turn, a job and an external producer's burst of 8,000 records (7 MB: past the ring and the
  kernel's buffers, so it falls off the live path and reads from the log).

For every client: records checked (received), lost (in the log, never received), duplicated
(received twice), reordered (received after a later seq), changed (not what the log holds).
Every turn and job must end with exactly one terminal, and no message's text may have a hole
or a repeated word (the scripted agent's ``/long N`` streams ``w1 … wN``). Exit status 1 if
anything was lost, duplicated, reordered or changed, or a check failed.

    python tests/chaos.py [--seed N] [--only cuts|kill|redis|slow]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from conftest import RedisServer, free_port
from server_util import CuttingProxy, ProcessServer, auth, sse_frames

TERMINAL = {"completed", "failed", "cancelled", "interrupted"}


class Reader:
    """A client that follows one session over SSE or the WebSocket and resumes after every failure.

    Every record it receives is kept, as received, for the check.
    """

    def __init__(
        self, name: str, kind: str, base: Callable[[], str], session: str, token: str, rate: float = 0
    ) -> None:
        self.name, self.kind, self.base, self.session, self.token = name, kind, base, session, token
        self.rate = rate  # bytes/s it reads at most (0: as fast as it can)
        self.received: list[dict[str, Any]] = []
        self.last = 0
        self.connects = 0
        self.controls: dict[str, int] = {}  # control frames by name (lagging, caught_up, ...)
        self.errors: list[str] = []
        self.target: int | None = None
        self._moved = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Reader:
        self._task = asyncio.create_task(self._run(), name=f"chaos reader {self.name}")
        return self

    def take(self, record: dict[str, Any]) -> None:
        self.received.append(record)
        self.last = max(self.last, record["seq"])
        self._moved.set()

    @property
    def done(self) -> bool:
        return self.target is not None and self.last >= self.target

    async def until(self, target: int, timeout: float) -> None:
        """Read until it has seq ``target``, then stop."""
        self.target = target
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self.done:
                    self._moved.clear()
                    await self._moved.wait()
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while not self.done:
            self.connects += 1
            try:
                await (self._sse() if self.kind == "sse" else self._ws())
            except (httpx.HTTPError, OSError, websockets.WebSocketException, EOFError) as exc:
                if len(self.errors) < 1000:
                    self.errors.append(type(exc).__name__)
            await asyncio.sleep(0.02)

    async def _sse(self) -> None:
        # Small socket buffers: a slow reader is slow in the kernel too, not just in this loop.
        options = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)] if self.rate else []
        transport = httpx.AsyncHTTPTransport(socket_options=options)
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5, read=30)) as client:
            url = f"{self.base()}/v1/sessions/{self.session}/events"
            headers = {**auth(self.token), "Last-Event-ID": str(self.last)}
            async with client.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    raise httpx.HTTPError(f"{response.status_code}")
                started, read = time.monotonic(), 0
                async for frame in sse_frames(response):
                    if frame.id is not None:
                        self.take(frame.data)
                        if self.rate:
                            read += len(json.dumps(frame.data)) + 40
                            ahead = read / self.rate - (time.monotonic() - started)
                            if ahead > 0:
                                await asyncio.sleep(ahead)
                    elif frame.event == "ended":
                        raise EOFError(f"ended: {frame.data}")
                    elif frame.event != ":":
                        self.controls[frame.event] = self.controls.get(frame.event, 0) + 1

    async def _ws(self) -> None:
        url = self.base().replace("http", "ws", 1) + "/v1/ws"
        async with websockets.connect(url, max_size=None, open_timeout=5) as ws:
            subscribe = {"op": "subscribe", "id": 1, "session": self.session, "token": self.token}
            await ws.send(json.dumps({**subscribe, "after": self.last, "batch": True}))
            async for message in ws:
                data = json.loads(message)
                for item in data if isinstance(data, list) else [data]:
                    if "seq" in item and "type" in item:
                        self.take(item)
                    elif item.get("error") or item.get("control") == "ended":
                        raise EOFError(json.dumps(item))


@dataclass
class Result:
    """One scenario's counts, summed over its clients."""

    name: str
    checked: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    changed: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.reordered or self.changed or self.problems)

    def check(self, reader: Reader, log: list[dict[str, Any]]) -> None:
        """Count what ``reader`` received against the log's records."""
        by_seq = {r["seq"]: r for r in log}
        seqs = [r["seq"] for r in reader.received]
        self.checked += len(seqs)
        self.duplicated += len(seqs) - len(set(seqs))
        self.lost += sum(1 for s in by_seq if s not in set(seqs))
        highest = 0
        seen: set[int] = set()
        for record in reader.received:
            seq = record["seq"]
            if seq in seen:
                continue
            seen.add(seq)
            if seq < highest:
                self.reordered += 1
            highest = max(highest, seq)
            if by_seq.get(seq) != record:
                self.changed += 1


async def log_of(base: str, session: str, token: str) -> list[dict[str, Any]]:
    """Every record of the session, read once from the start (what every client must have)."""
    reader = Reader("log", "sse", lambda: base, session, token).start()
    async with httpx.AsyncClient(timeout=10) as client:
        seq = (await client.get(f"{base}/v1/sessions/{session}", headers=auth(token))).json()["seq"]
    await reader.until(seq, 30)
    return reader.received


async def idle(base: str, session: str, token: str, timeout: float = 60) -> dict[str, Any]:
    """The session's state once no turn or job of it runs."""
    async with httpx.AsyncClient(timeout=10) as client, asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(httpx.HTTPError):
                state = (await client.get(f"{base}/v1/sessions/{session}", headers=auth(token))).json()["state"]
                work = [*state["turns"].values(), *state["jobs"].values()]
                if work and all(w["status"] != "running" for w in work):
                    return dict(state)
            await asyncio.sleep(0.1)


def tally(state: dict[str, Any]) -> str:
    """How the session's turns and jobs ended, counted: ``2 completed, 1 failed (log_unavailable)``."""
    ends = Counter(
        w["status"] + (f" ({w['code']})" if w.get("code") else "")
        for w in [*state["turns"].values(), *state["jobs"].values()]
    )
    return ", ".join(f"{count} {end}" for end, count in sorted(ends.items()))


def lifecycle(result: Result, log: list[dict[str, Any]]) -> None:
    """One terminal per turn and job; no hole and no repeated word in any message's text."""
    for kind in ("turn", "job"):
        ends: dict[str, int] = {}
        for record in log:
            if record["type"].startswith(kind + ".") and record["type"].split(".", 1)[1] in TERMINAL:
                ends[record[kind]] = ends.get(record[kind], 0) + 1
            elif record["type"] == f"{kind}.started":
                ends.setdefault(record[kind], 0)
        for ident, count in ends.items():
            if count != 1:
                result.problems.append(f"{kind} {ident} has {count} terminals")
    texts: dict[str, str] = {}
    for record in log:
        if record["type"] == "message.delta" and record.get("kind", "text") == "text":
            texts[record["message"]] = texts.get(record["message"], "") + record["text"]
    for message, text in texts.items():
        words = text.split()
        if words and all(w.startswith("w") and w[1:].isdigit() for w in words):
            if words != [f"w{i}" for i in range(1, len(words) + 1)]:
                result.problems.append(f"message {message} has a hole or a repeat: {len(words)} words")


async def start_work(base: str, session: str, token: str, words: int) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for path, body in (
            ("turns", {"text": f"/long {words}"}),
            ("jobs", {"title": "chaos", "prompt": f"/long {words}"}),
        ):
            answer = await client.post(f"{base}/v1/sessions/{session}/{path}", json=body, headers=auth(token))
            answer.raise_for_status()


async def create(base: str) -> tuple[str, str]:
    async with httpx.AsyncClient(timeout=10) as client:
        created = (await client.post(f"{base}/v1/sessions", json={"title": "chaos"})).json()
    return created["session"], created["token"]


@contextlib.asynccontextmanager
async def proxies(port: int, count: int) -> AsyncIterator[list[CuttingProxy]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(CuttingProxy(port)) for _ in range(count)]


# --------------------------------------------------------------------------- scenarios


async def cuts(rng: random.Random, tmp: Path) -> Result:
    result = Result("cuts")
    server = ProcessServer(free_port(), f"sqlite:///{tmp / 'cuts.db'}", "--token-delay-ms", "1").start()
    try:
        session, token = await create(server.url)
        async with proxies(server.port, 6) as cutters:
            readers = [
                Reader(f"{kind}{i}", kind, lambda p=p: p.url, session, token).start()
                for i, (kind, p) in enumerate(zip(["sse", "ws"] * 3, cutters))
            ]
            await start_work(server.url, session, token, 10000)
            count = 0
            stop = asyncio.Event()

            async def cutting() -> None:
                nonlocal count
                while not stop.is_set():
                    await asyncio.sleep(rng.uniform(0.01, 0.15))
                    rng.choice(cutters).cut()
                    count += 1

            cutter = asyncio.create_task(cutting())
            await idle(server.url, session, token)
            stop.set()
            await cutter
            log = await log_of(server.url, session, token)
            for reader in readers:
                await reader.until(log[-1]["seq"], 30)
                result.check(reader, log)
        lifecycle(result, log)
        result.notes.append(f"{count} cuts, {sum(r.connects for r in readers)} connections, {len(log)} records")
    finally:
        server.kill()
    return result


async def kill(rng: random.Random, tmp: Path) -> Result:
    result = Result("kill")
    port, store = free_port(), f"sqlite:///{tmp / 'kill.db'}"
    server = ProcessServer(port, store, "--token-delay-ms", "1").start()
    kills = 0
    try:
        session, token = await create(server.url)
        base = server.url
        readers = [Reader(f"{k}{i}", k, lambda: base, session, token).start() for i, k in enumerate(["sse", "ws"] * 2)]
        for _ in range(6):
            await start_work(base, session, token, 3000)
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            assert server.process is not None
            server.process.kill()  # SIGKILL: no shutdown, no last snapshot
            server.kill()
            kills += 1
            server = ProcessServer(port, store, "--token-delay-ms", "1").start()
        await start_work(base, session, token, 200)  # a last turn and job that run to their end
        state = await idle(base, session, token)
        log = await log_of(base, session, token)
        for reader in readers:
            await reader.until(log[-1]["seq"], 30)
            result.check(reader, log)
        lifecycle(result, log)
        result.notes.append(f"{kills} SIGKILLs, ends {tally(state)}, {len(log)} records")
    finally:
        server.kill()
    return result


async def redis(rng: random.Random, tmp: Path) -> Result:
    result = Result("redis")
    store = RedisServer(tmp, appendonly=True)
    store.start()
    servers = [
        ProcessServer(free_port(), store.url + "?lease=1&retry_for=1", "--token-delay-ms", "2") for _ in range(2)
    ]
    try:
        a, b = (s.start() for s in servers)
        session, token = await create(a.url)
        readers = [
            Reader("sse-b", "sse", lambda: b.url, session, token).start(),
            Reader("ws-a", "ws", lambda: a.url, session, token).start(),
            Reader("ws-b", "ws", lambda: b.url, session, token).start(),
        ]
        await start_work(a.url, session, token, 3000)
        await asyncio.sleep(rng.uniform(0.5, 1.5))
        store.stop()
        await asyncio.sleep(3.0)  # three times the retry window
        store.start()
        state = await idle(a.url, session, token)
        log = await log_of(b.url, session, token)
        for reader in readers:
            await reader.until(log[-1]["seq"], 30)
            result.check(reader, log)
        lifecycle(result, log)
        result.notes.append(f"Redis down 3 s (retry window 1 s), ends {tally(state)}, {len(log)} records")
        for server in servers:
            if "never retrieved" in server.output():
                result.problems.append("a task exception was never retrieved")
    finally:
        for server in servers:
            server.kill()
        store.stop()
    return result


RATE = 512 * 1024  # the slow reader's bytes/s: far below the burst's, so it falls off the live path


async def slow(rng: random.Random, tmp: Path) -> Result:
    result = Result("slow")
    server = ProcessServer(free_port(), f"sqlite:///{tmp / 'slow.db'}", "--token-delay-ms", "1").start()
    try:
        session, token = await create(server.url)
        crawler = Reader("slow", "sse", lambda: server.url, session, token, rate=RATE).start()
        normal = Reader("normal", "sse", lambda: server.url, session, token).start()
        started = time.monotonic()
        await start_work(server.url, session, token, 2000)
        # An external producer's burst: far more records than a live subscriber may fall behind.
        async with httpx.AsyncClient(timeout=10) as client:
            for batch in range(80):
                events = [
                    {"type": "status", "text": f"burst {batch}.{i} " + "x" * rng.randrange(1800)} for i in range(100)
                ]
                answer = await client.post(
                    f"{server.url}/v1/sessions/{session}/records", json={"events": events}, headers=auth(token)
                )
                answer.raise_for_status()
        await idle(server.url, session, token)
        produced = time.monotonic() - started
        log = await log_of(server.url, session, token)
        await normal.until(log[-1]["seq"], 30)
        kept_up = time.monotonic() - started
        await crawler.until(log[-1]["seq"], 90)
        for reader in (crawler, normal):
            result.check(reader, log)
        lifecycle(result, log)
        result.notes.append(
            f"{len(log)} records in {produced:.1f} s beside a {RATE // 1024} KB/s reader (the normal one was done at"
            f" {kept_up:.1f} s, the slow one at {time.monotonic() - started:.1f} s, its controls {crawler.controls})"
        )
    finally:
        server.kill()
    return result


SCENARIOS = {"cuts": cuts, "kill": kill, "redis": redis, "slow": slow}


async def main(seed: int, only: list[str]) -> int:
    rng = random.Random(seed)
    print(f"chaos, seed {seed}")
    print(f"{'scenario':<10}{'checked':>9}{'lost':>6}{'dup':>5}{'reord':>7}{'changed':>9}  notes")
    failed = False
    for name in only or SCENARIOS:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.monotonic()
            try:
                async with asyncio.timeout(180):
                    result = await SCENARIOS[name](rng, Path(tmp))
            except Exception as exc:  # a scenario that could not finish is a failure, said as such
                result = Result(name, problems=[f"{type(exc).__name__}: {exc}"])
            result.seconds = time.monotonic() - started
        r = result
        print(
            f"{r.name:<10}{r.checked:>9}{r.lost:>6}{r.duplicated:>5}{r.reordered:>7}{r.changed:>9}  "
            f"{'; '.join(r.notes)} ({r.seconds:.0f} s)"
        )
        for problem in r.problems:
            print(f"{'':<10}  PROBLEM: {problem}")
        failed = failed or not r.ok
    print("FAILED" if failed else "all clean")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), default=[])
    options = parser.parse_args()
    sys.exit(asyncio.run(main(options.seed, options.only)))
