"""An agent's answer to K SSE clients: server CPU per delivered word, and each word's latency.

The workload a user of ``sessionwire serve`` meets: a `/long N` turn of the scripted agent at
1 ms per token, on the SQLite store, streamed to K SSE clients in another process. The
baseline, in the same run: a raw asyncio socket server that paces the same words and writes
one SSE frame per word per client. CPU is the whole server process's, per delivered word
(K x N); latency is per word, from the moment the agent produced it to its arrival at a
client (an older word of a coalesced record counts from when it was produced).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from .e2e import ServerProcess, client_round
from .figures import Pair, Spread, Target, percentile
from .modes import Mode
from .report import Section

KINDS = ("ours", "raw")
CPU_K = 100
"""The K of the CPU target."""
LATENCY_TARGETS_MS = {10: 10.0, 100: 20.0}
"""p99 of word latency, ours, at these K."""


DELIVERIES = 1_000_000
"""Words x clients of one answer, at most: 3,000 words to 100 clients, 100 to 10,000."""


@dataclass
class AnswerRun:
    """One answer: server CPU µs per delivered word, word latencies (s), connect time (s), RSS per client."""

    cpu_us: float
    latencies: list[float]
    connect_s: float
    rss_per_conn: float


def words_for(mode: Mode, k: int) -> int:
    """The answer's length for K clients: the mode's, bounded by :data:`DELIVERIES`, at least 100 words."""
    return min(mode.answer_words, max(100, DELIVERIES // k))


def run_answer(server: ServerProcess, k: int, words: int, round_no: int) -> AnswerRun:
    """One answer of ``words`` words from ``server`` to K clients."""
    info = server.ask({"round": round_no, "k": k})
    args = [str(server.port), info["path"], info["token"] or "", str(k), str(words)]
    done = client_round(server, "words-client", args, {"answer": words})
    produced = [float(t) for t in done.answer["produced"]]
    arrivals = done.result["arrivals"]
    if len(produced) != words:
        raise RuntimeError(f"the {server.kind} server produced {len(produced)} words, not {words}")
    latencies = [at - made for stream in arrivals for at, made in zip(stream, produced)]
    cpu_us = done.cpu / (k * words) * 1e6
    return AnswerRun(cpu_us, latencies, done.connect, float(done.answer["rss_per_conn"]))


def _measure_sync(mode: Mode, scratch: Path, section: Section) -> None:
    servers = {kind: ServerProcess(kind, scratch, "answer-server", str(scratch)) for kind in KINDS}
    try:
        for server in servers.values():
            server.ready()
        round_no = 0
        for k in mode.answer_clients:
            words = words_for(mode, k)
            cpu = {kind: Spread() for kind in KINDS}
            p50 = {kind: Spread() for kind in KINDS}
            p99 = {kind: Spread() for kind in KINDS}
            connect = {kind: Spread() for kind in KINDS}
            rss_kb = {kind: Spread() for kind in KINDS}
            for rep in range(mode.e2e_repeats if k < 1000 else 1):
                for kind in KINDS if rep % 2 == 0 else KINDS[::-1]:
                    round_no += 1
                    run = run_answer(servers[kind], k, words, round_no)
                    cpu[kind].add(run.cpu_us)
                    p50[kind].add(percentile(run.latencies, 50) * 1e3)
                    p99[kind].add(percentile(run.latencies, 99) * 1e3)
                    connect[kind].add(run.connect_s)
                    rss_kb[kind].add(run.rss_per_conn / 1024)
            pair = Pair(f"server CPU per delivered word, K={k} ({words} words): ours vs raw", "µs/word", x=k)
            pair.higher_is_better = False
            if k == CPU_K:
                pair.target = Target(1 / 3, at_least=False)
            for ours, base in zip(cpu["ours"].values, cpu["raw"].values):
                pair.add(ours, base)
            if k >= 1000:
                pair.extra = {
                    "connect ours / raw": f"{connect['ours'].format()} / {connect['raw'].format('s')}",
                    "RSS/conn ours / raw": f"{rss_kb['ours'].format()} / {rss_kb['raw'].format('KB')}",
                }
            section.pairs.append(pair)
            pair = Pair(f"word latency p99, K={k} ({words} words): ours vs raw", "ms")
            pair.higher_is_better = False
            if k in LATENCY_TARGETS_MS:
                pair.target = Target(LATENCY_TARGETS_MS[k], at_least=False, on_ours=True)
            for ours, base in zip(p99["ours"].values, p99["raw"].values):
                pair.add(ours, base)
            pair.extra = {"p50 ours / raw": f"{p50['ours'].format()} / {p50['raw'].format('ms')}"}
            section.pairs.append(pair)
    finally:
        for server in servers.values():
            server.close()


async def measure(mode: Mode, scratch: Path) -> Section:
    """The answer section."""
    section = Section(
        "An agent's answer to K SSE clients",
        f"`/long {mode.answer_words}` from the scripted agent at 1 ms per token, as `sessionwire serve` runs it "
        "(SQLite file, the server's default coalescing), to K SSE clients in another process. Baseline, in the "
        "same run: a raw asyncio socket server pacing the same words and writing one SSE frame per word per "
        "client. CPU: the whole server process, per delivered word (K x words). Latency: per word, from the "
        "agent producing it to a client receiving it; every client checks that it got every word once, in order. "
        f"An answer has at most {DELIVERIES:,} deliveries (100 words at K=10,000); at K >= 1,000 one run each, "
        "with the time to connect the K clients and the server's RSS per connection.",
        plot="throughput",
        xlabel="clients K",
    )
    await asyncio.to_thread(_measure_sync, mode, scratch, section)
    section.notes.append("Clients run in one process on the same cores as the server.")
    return section
