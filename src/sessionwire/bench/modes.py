"""How big each part of the suite runs: tiny (the test), quick (default, about a minute), full."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    """Sizes of one run of the suite.

    Attributes:
        name: ``tiny``, ``quick`` or ``full``.
        repeats: Runs of every figure (ours and baseline interleaved).
        subscribers: Fan-out subscriber counts S.
        deliveries: Deliveries per fan-out run (records x S), about.
        max_records: Records per fan-out run, at most (for small S).
        encode_records: Records per encode run.
        single_records: Records per durable run with one record per append.
        batch_records: Records per durable run with batches of 64.
        producers: Concurrent producer counts of the durable runs.
        scale_sessions: Open sessions (one idle subscriber each) in the scale run.
        clients: Client counts K of the end-to-end runs.
        e2e_records: Records per end-to-end run (flat out), at most.
        e2e_deliveries: Deliveries per end-to-end run (records x K), about.
        e2e_repeats: Runs of every end-to-end figure.
        paced_seconds: Length of the paced (1k tokens/s) end-to-end run.
        idle_connections: Idle SSE connections of the memory-per-connection run.
        turns: Sessions (one turn each) of the concurrent-turns run.
        turn_words: Words of each scripted turn.
        answer_clients: Client counts K of the answer runs.
        answer_words: Words of the answer (1 ms each), at most (see :func:`.answer.words_for`).
    """

    name: str
    repeats: int
    subscribers: tuple[int, ...]
    deliveries: int
    max_records: int
    encode_records: int
    single_records: int
    batch_records: int
    producers: tuple[int, ...]
    scale_sessions: int
    clients: tuple[int, ...]
    e2e_records: int
    e2e_deliveries: int
    e2e_repeats: int
    paced_seconds: float
    idle_connections: int
    turns: int
    turn_words: int
    answer_clients: tuple[int, ...]
    answer_words: int


TINY = Mode(
    name="tiny",
    repeats=2,
    subscribers=(1, 10, 100),
    deliveries=20_000,
    max_records=2_000,
    encode_records=2_000,
    single_records=200,
    batch_records=64 * 20,
    producers=(1, 100),
    scale_sessions=200,
    clients=(2,),
    e2e_records=100,
    e2e_deliveries=400,
    e2e_repeats=1,
    paced_seconds=0.2,
    idle_connections=20,
    turns=20,
    turn_words=10,
    answer_clients=(2,),
    answer_words=50,
)

QUICK = Mode(
    name="quick",
    repeats=5,
    subscribers=(1, 10, 100, 1000),
    deliveries=200_000,
    max_records=20_000,
    encode_records=20_000,
    single_records=2_000,
    batch_records=64 * 200,
    producers=(1, 10, 100),
    scale_sessions=10_000,
    clients=(1, 10, 100),
    e2e_records=2_000,
    e2e_deliveries=50_000,
    e2e_repeats=2,
    paced_seconds=1.0,
    idle_connections=1000,
    turns=500,
    turn_words=50,
    answer_clients=(10, 100),
    answer_words=3000,
)

FULL = Mode(
    name="full",
    repeats=9,
    subscribers=(1, 10, 100, 1000),
    deliveries=1_000_000,
    max_records=100_000,
    encode_records=100_000,
    single_records=10_000,
    batch_records=64 * 1000,
    producers=(1, 10, 100),
    scale_sessions=10_000,
    clients=(1, 10, 100, 1000),
    e2e_records=10_000,
    e2e_deliveries=500_000,
    e2e_repeats=5,
    paced_seconds=5.0,
    idle_connections=1000,
    turns=500,
    turn_words=50,
    answer_clients=(10, 100, 1000, 10_000),
    answer_words=3000,
)


def pick(quick: bool = True, full: bool = False, tiny: bool = False) -> Mode:
    """The mode the flags ask for: ``tiny`` wins over ``full``, ``full`` over ``quick``."""
    if tiny:
        return TINY
    if full:
        return FULL
    return QUICK
