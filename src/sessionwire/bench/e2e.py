"""End to end over loopback: a real uvicorn, K clients in another process.

Three server processes live through the section (see :mod:`.e2e_server`): ours
(the sessionwire app, SSE and WebSocket), a raw asyncio socket server writing the
same pre-encoded bytes one write per record, and an sse-starlette endpoint fed by
per-client queues. For every K and every run, each is measured in turn (the
order rotates): a fresh session, a client process opens K streams (see
:mod:`.e2e_client`), the server publishes N records flat out, and the client
reads them all. Then a paced run: the largest K up to 100 at 1k records/s.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .fanout import thin
from .figures import Pair, Spread, Target, percentile
from .modes import Mode
from .report import Section

ROUND_TIMEOUT = 300.0
PACED_RATE = 1000.0
PACED_K = 100


@dataclass
class E2ERun:
    """One round: deliveries/s, latencies (s), server CPU µs per delivery, RSS bytes per connection."""

    deliveries_per_s: float
    latencies: list[float]
    cpu_us: float
    rss_per_conn: float


class ServerProcess:
    """A child server of one kind (``e2e-server``, or ``answer-server``), driven over its stdin/stdout."""

    def __init__(self, kind: str, scratch: Path, child: str = "e2e-server", *args: str) -> None:
        self.kind = kind
        self.errors = (scratch / f"{child}-{kind}.stderr").open("w+", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sessionwire.bench.child", child, kind, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
        )
        self.port = 0

    def ready(self) -> ServerProcess:
        """Wait until it listens (servers started together start in parallel)."""
        if not self.port:
            self.port = int(self.read()["port"])
        return self

    def read(self) -> dict[str, Any]:
        """The next message of the server; raises with its stderr if it died."""
        line = pipe(self.process.stdout).readline()
        if not line:
            self.errors.seek(0)
            raise RuntimeError(f"the {self.kind} server ended: {self.errors.read()[-2000:]}")
        return json.loads(line)  # type: ignore[no-any-return]

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a command and read the answer."""
        stdin = pipe(self.process.stdin)
        stdin.write(json.dumps(message) + "\n")
        stdin.flush()
        return self.read()

    def close(self) -> None:
        """End stdin (the server stops) and wait for it; kill it if it hangs."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.errors.close()


def pipe(stream: IO[str] | None) -> IO[str]:
    """A child's pipe that must exist."""
    if stream is None:
        raise RuntimeError("the child process has no pipe")
    return stream


@contextmanager
def _watchdog(processes: list[subprocess.Popen[str]], seconds: float) -> Iterator[None]:
    """Kill the processes if the block takes longer than ``seconds`` (their pipes then end)."""

    def kill() -> None:
        for process in processes:
            process.kill()

    timer = threading.Timer(seconds, kill)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@dataclass
class ClientRound:
    """What one round with a client process gave: the server's answer to ``go``, the client's result."""

    answer: dict[str, Any]
    result: dict[str, Any]
    cpu: float
    """CPU seconds the server used from ``go`` until the client had everything."""
    connect: float
    """Seconds from starting the client until all its streams were subscribed."""


def client_round(server: ServerProcess, child: str, args: list[str], go: dict[str, Any]) -> ClientRound:
    """Start the client child ``child``, wait until it is connected, tell the server ``go``, read both."""
    began = time.monotonic()
    client = subprocess.Popen(
        [sys.executable, "-m", "sessionwire.bench.child", child, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with _watchdog([client, server.process], ROUND_TIMEOUT):
        try:
            if not pipe(client.stdout).readline():
                raise RuntimeError(f"the {child} failed: {client.communicate()[1][-2000:]}")
            connect = time.monotonic() - began
            answer = server.ask(go)
            out, err = client.communicate()
            if client.returncode != 0 or not out.strip():
                raise RuntimeError(f"the {child} failed: {err[-2000:]}")
            result = json.loads(out.strip().splitlines()[-1])
            cpu = float(server.ask({"cpu": True})["cpu"])
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
    return ClientRound(answer, result, cpu, connect)


def run_round(server: ServerProcess, proto: str, k: int, n: int, rate: float, round_no: int) -> E2ERun:
    """One round on ``server``: K clients of ``proto`` (sse, ws, ws-batch), N records at ``rate`` (0: flat out)."""
    info = server.ask({"round": round_no, "k": k})
    args = [proto, str(server.port), info["path"], info["session"], info["token"] or "", str(k), str(n)]
    done = client_round(server, "e2e-client", args, {"go": True, "n": n, "rate": rate})
    produced, result, cpu = done.answer, done.result, done.cpu
    deliveries = k * n
    duration = float(result["last"]) - float(produced["start"])
    return E2ERun(
        deliveries / duration,
        [float(v) for v in result["latencies"]],
        cpu / deliveries * 1e6,
        (int(produced["rss_connected"]) - int(produced["rss_idle"])) / k,
    )


# (label, server kind, client protocol)
CONTENDERS = [("ours SSE", "ours", "sse"), ("ours WebSocket", "ours", "ws")]
CONTENDERS += [("ours WebSocket batched", "ours", "ws-batch"), ("raw socket", "raw", "sse")]
CONTENDERS += [("sse-starlette", "starlette", "sse")]
# (our contender, baseline contender, target at K=100)
PAIRS = [
    ("ours SSE", "raw socket", 1.0),
    ("ours SSE", "sse-starlette", 3.0),
    ("ours WebSocket", "raw socket", None),
    ("ours WebSocket batched", "raw socket", None),
]


@dataclass
class _Figures:
    rate: Spread
    p50: Spread
    p99: Spread
    cpu: Spread
    rss: Spread


def _figures() -> _Figures:
    return _Figures(Spread(), Spread(), Spread(), Spread(), Spread())


def _measure_sync(mode: Mode, scratch: Path, section: Section) -> None:
    servers: dict[str, ServerProcess] = {}
    try:
        for kind in ("ours", "raw", "starlette"):
            servers[kind] = ServerProcess(kind, scratch)
        for server in servers.values():
            server.ready()
        round_no = 0
        results: dict[tuple[str, int], _Figures] = {}
        cdfs: dict[str, list[float]] = {}
        cdf_k = max((k for k in mode.clients if k <= PACED_K), default=mode.clients[0])
        for k in mode.clients:
            n = max(50, min(mode.e2e_records, mode.e2e_deliveries // k))
            for rep in range(mode.e2e_repeats):
                order = CONTENDERS[rep % len(CONTENDERS) :] + CONTENDERS[: rep % len(CONTENDERS)]
                for label, kind, proto in order:
                    round_no += 1
                    run = run_round(servers[kind], proto, k, n, 0.0, round_no)
                    f = results.setdefault((label, k), _figures())
                    f.rate.add(run.deliveries_per_s)
                    f.p50.add(percentile(run.latencies, 50) * 1e3)
                    f.p99.add(percentile(run.latencies, 99) * 1e3)
                    f.cpu.add(run.cpu_us)
                    f.rss.add(run.rss_per_conn / 1024)
                    if k == cdf_k:
                        cdfs[f"{label}, K={k}"] = thin(run.latencies)
        for ours, base, target in PAIRS:
            for k in mode.clients:
                a, b = results[(ours, k)], results[(base, k)]
                pair = Pair(f"{ours} vs {base}, K={k}", "deliveries/s", x=k, group=f"{ours} vs {base}")
                for x, y in zip(a.rate.values, b.rate.values):
                    pair.add(x, y)
                if target is not None and k == PACED_K:
                    pair.target = Target(target)
                pair.extra = {
                    "p50 ours / base": f"{a.p50.format()} / {b.p50.format('ms')}",
                    "p99 ours / base": f"{a.p99.format()} / {b.p99.format('ms')}",
                    "server CPU ours / base": f"{a.cpu.format()} / {b.cpu.format('µs/delivery')}",
                    "RSS/conn ours / base": f"{a.rss.format()} / {b.rss.format('KB')}",
                }
                section.pairs.append(pair)
        section.cdfs = cdfs
        section.curves = {
            label: [(float(k), results[(label, k)].rate) for k in mode.clients] for label, _, _ in CONTENDERS
        }
        _paced(mode, servers, section, round_no, cdf_k)
    finally:
        for server in servers.values():
            server.close()
    _idle(mode, scratch, section)


def _idle(mode: Mode, scratch: Path, section: Section) -> None:
    """RSS per idle SSE connection, each server kind fresh (so no freed memory is reused)."""
    k = mode.idle_connections
    per_conn: dict[str, Spread] = {}
    servers = {kind: ServerProcess(kind, scratch) for kind in ("ours", "raw", "starlette")}
    try:
        for kind, server in servers.items():
            per_conn[kind] = Spread([run_round(server.ready(), "sse", k, 1, 0.0, 1).rss_per_conn / 1024])
    finally:
        for server in servers.values():
            server.close()
    for kind, label in (("raw", "raw socket"), ("starlette", "sse-starlette")):
        pair = Pair(f"RSS per idle SSE connection, K={k}: ours vs {label}", "KB")
        if kind == "raw":
            pair.target = Target(50.0, at_least=False, on_ours=True)
        pair.higher_is_better = False
        pair.add(per_conn["ours"].median, per_conn[kind].median)
        section.pairs.append(pair)


def _paced(mode: Mode, servers: dict[str, ServerProcess], section: Section, round_no: int, k: int) -> None:
    n = max(20, int(PACED_RATE * mode.paced_seconds))
    kinds = ["ours", "raw", "starlette"]
    p50: dict[str, Spread] = {kind: Spread() for kind in kinds}
    p99: dict[str, Spread] = {kind: Spread() for kind in kinds}
    for rep in range(mode.e2e_repeats):
        for kind in kinds[rep % 3 :] + kinds[: rep % 3]:
            round_no += 1
            run = run_round(servers[kind], "sse", k, n, PACED_RATE, round_no)
            p50[kind].add(percentile(run.latencies, 50) * 1e3)
            p99[kind].add(percentile(run.latencies, 99) * 1e3)
    for kind, label in (("raw", "raw socket"), ("starlette", "sse-starlette")):
        pair = Pair(f"p99 at {PACED_RATE:g} records/s, K={k}: ours SSE vs {label}", "ms")
        if k == PACED_K and kind == "raw":
            pair.target = Target(50.0, at_least=False, on_ours=True)
        pair.higher_is_better = False
        for ours, base in zip(p99["ours"].values, p99[kind].values):
            pair.add(ours, base)
        pair.extra = {"p50 ours / base": f"{p50['ours'].format()} / {p50[kind].format('ms')}"}
        section.pairs.append(pair)


async def measure(mode: Mode, scratch: Path) -> Section:
    """The end-to-end section (skipped, with the reason, when the server or a baseline is missing)."""
    section = Section(
        "End to end over loopback (uvicorn)",
        "One session; the server publishes N records flat out (yielding every 64) to K clients in another "
        "process; a record's text is the server's monotonic clock at publish, so latency is publish → client "
        "receipt. Ours: `create_app` (hub on `memory://`) on uvicorn as `sessionwire serve` runs it, SSE "
        "(`/v1/sessions/{id}/events`) and WebSocket (`/v1/ws`): one record per frame, and batched "
        '(`"batch": true`: each ready batch as one JSON array per frame). Baselines, in the same run: a '
        "minimal asyncio socket server writing the same "
        "pre-encoded SSE bytes one write per record per client, and an sse-starlette endpoint with one "
        "`asyncio.Queue` per client. Server CPU is the server process's CPU time per delivery; RSS/conn is the "
        "server's RSS growth once K clients are connected, divided by K. Then a paced run at 1k records/s.",
        plot="throughput",
        xlabel="clients K",
    )
    missing = [m for m in ("sessionwire.server.app", "sse_starlette", "websockets") if not _exists(m)]
    if missing:
        section.skipped = f"{', '.join(missing)} not available"
        return section
    await asyncio.to_thread(_measure_sync, mode, scratch, section)
    section.notes += [
        "Clients run in one process on the same cores as the server: at large K the client side takes CPU too.",
        "RSS/conn of the flat-out rows is measured on servers that served earlier rounds (freed memory is reused, "
        "so it reads low, even 0); the idle rows, each on a fresh server, are the figure to read.",
    ]
    return section


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
