"""Encode and decode cost per record, beside orjson on a plain dict of the same record.

Ours is what the log does on append: encode the typed event once
(``encode_event``) and splice the envelope in front of it
(``Record.from_event_json``). The baseline is ``orjson.dumps`` of the record as a
plain dict (the same JSON). Inputs are built before the clock starts, for both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..events import (
    Event,
    JobProgress,
    MessageDelta,
    Record,
    Status,
    ToolArgsDelta,
    encode_event,
    encode_record,
    record_prefix,
    to_event,
)
from ..state import SessionState, apply
from .figures import Pair, Target
from .modes import Mode
from .report import Section

SESSION = "s_7f3a"


def sample_events(count: int) -> list[Event]:
    """A producer's typical mix: mostly text deltas, some tool argument deltas, progress and status.

    Nothing in it opens or closes a turn, a job or an approval, so a log takes it again and again.
    """
    out: list[Event] = []
    for i in range(count):
        if i % 16 == 0:
            out.append(ToolArgsDelta(call="c_1", message="m_9", part=1, text='{"q": "w', turn="t_2"))
        elif i % 16 == 8:
            out.append(JobProgress(job="j_1", done=i, total=count, note="indexing"))
        elif i % 64 == 1:
            out.append(Status(turn="t_2", text=f"searching {i}"))
        else:
            out.append(MessageDelta(message="m_9", part=0, text=f" token{i % 50}", turn="t_2"))
    return out


PASSES = 3
"""A run's figure is the best of this many passes over its records (as timeit does)."""


def _timed(fn: Callable[[], Any], count: int) -> float:
    best = None
    for _ in range(PASSES):
        started = time.perf_counter_ns()
        out = fn()
        elapsed = time.perf_counter_ns() - started
        del out
        best = elapsed if best is None else min(best, elapsed)
    return (best or 0) / count


def encode_pair(events: list[Event], ts: int, keep: bool = False, record: bool = False) -> tuple[float, float]:
    """ns per record: (ours: event → record bytes, baseline: orjson.dumps(record dict)).

    Ours encodes the typed event once (``encode_event``) and splices the envelope in
    front (``encode_record``): the bytes every subscriber and the log get. With
    ``record`` it also builds the :class:`Record` object around them, as the log's
    append does. With ``keep`` every output stays alive until the clock stops, as
    records do in a session's ring; orjson's output buffers then cost far more.
    """
    import orjson

    prefix = record_prefix(SESSION)
    dicts = [Record(SESSION, seq, ts, e).to_dict() for seq, e in enumerate(events, 1)]
    from_event_json = Record.from_event_json

    def ours_bytes() -> Any:
        if keep:
            return [encode_record(prefix, seq, ts, encode_event(e)) for seq, e in enumerate(events, 1)]
        for seq, event in enumerate(events, 1):
            encode_record(prefix, seq, ts, encode_event(event))
        return None

    def ours_records() -> Any:
        if keep:
            return [from_event_json(SESSION, seq, ts, e, encode_event(e), prefix) for seq, e in enumerate(events, 1)]
        for seq, event in enumerate(events, 1):
            from_event_json(SESSION, seq, ts, event, encode_event(event), prefix)
        return None

    def base() -> Any:
        dumps = orjson.dumps
        if keep:
            return [dumps(d) for d in dicts]
        for d in dicts:
            dumps(d)
        return None

    return _timed(ours_records if record else ours_bytes, len(events)), _timed(base, len(dicts))


def record_pair(events: list[Event], ts: int) -> tuple[float, float]:
    """:func:`encode_pair` with the :class:`Record` object built too (the whole append path)."""
    return encode_pair(events, ts, record=True)


def encode_kept_pair(events: list[Event], ts: int) -> tuple[float, float]:
    """:func:`encode_pair` with every output kept alive, Record objects included."""
    return encode_pair(events, ts, keep=True, record=True)


def validate_pair(events: list[Event], ts: int) -> tuple[float, float]:
    """ns per record from a plain dict event: (ours: ``to_event`` + encode, baseline: orjson.dumps)."""
    import orjson

    prefix = record_prefix(SESSION)
    plain = [Record(SESSION, 1, ts, e).to_dict() for e in events]
    wire = [{k: v for k, v in d.items() if k not in ("v", "session", "seq", "ts")} for d in plain]

    def ours() -> None:
        for seq, d in enumerate(wire, 1):
            event = to_event(d)
            Record.from_event_json(SESSION, seq, ts, event, encode_event(event), prefix)

    def base() -> None:
        dumps = orjson.dumps
        for d in plain:
            dumps(d)

    return _timed(ours, len(wire)), _timed(base, len(plain))


def decode_pair(events: list[Event], ts: int) -> tuple[float, float]:
    """ns per record: (ours: ``Record.from_json`` to a typed record, baseline: ``orjson.loads``)."""
    import orjson

    raws = [Record(SESSION, seq, ts, e).raw for seq, e in enumerate(events, 1)]

    def ours() -> None:
        for raw in raws:
            Record.from_json(raw)

    def base() -> None:
        loads = orjson.loads
        for raw in raws:
            loads(raw)

    return _timed(ours, len(raws)), _timed(base, len(raws))


LONG_TEXT = 2_000_000
"""Characters of the long message that :func:`fold_pair` folds more deltas into."""


def fold_pair(events: list[Event], ts: int) -> tuple[float, float]:
    """ns per text delta folded into the session state (``apply``), by the message it lands in.

    Both states first hold one message :data:`LONG_TEXT` characters long (a long reply, a
    job's log; folded before the clock starts). Ours: every delta grows that message.
    Baseline: the same deltas go to messages of 256 deltas each, as the fan-out's producer
    writes them. Folding a delta must not cost more when its message is long.
    """
    texts = [e.text for e in events if isinstance(e, MessageDelta)]
    grow = [
        Record(SESSION, seq, ts, MessageDelta(message="m_long", part=0, text="x" * 1000, turn="t_2"))
        for seq in range(1, LONG_TEXT // 1000 + 1)
    ]

    def records(message: Callable[[int], str]) -> list[Record]:
        first = len(grow) + 1
        return [
            Record(SESSION, seq, ts, MessageDelta(message=message(seq), part=0, text=text, turn="t_2"))
            for seq, text in enumerate(texts, first)
        ]

    def best(into: list[Record]) -> float:
        out = None
        for _ in range(PASSES):
            state = SessionState()
            for record in grow:
                apply(state, record)
            started = time.perf_counter_ns()
            for record in into:
                apply(state, record)
            elapsed = time.perf_counter_ns() - started
            out = elapsed if out is None else min(out, elapsed)
        return (out or 0) / len(into)

    return best(records(lambda seq: "m_long")), best(records(lambda seq: f"m_{seq // 256}"))


STATE_BYTES = 10_000_000
"""Bytes of state (messages) the session of :func:`publish_pair` holds before the clock starts."""


async def publish_pair(count: int) -> tuple[float, float]:
    """ns per ``await session.publish(delta)`` on ``memory://``, by how much the session holds.

    Ours: a session whose state holds :data:`STATE_BYTES` of earlier messages (a long-lived
    conversation). Baseline: an empty session. Both store a snapshot as they go (every
    ``snapshot_every`` records, or later for a large state): publishing must not cost more in a
    session that holds more. The figure is the mean over every pass, snapshots included.
    """
    from ..hub import Hub

    async with Hub.open("memory://") as hub:
        full, empty = await hub.session("s_full"), await hub.session("s_empty")
        for m in range(STATE_BYTES // 5000):
            await full.publish(MessageDelta(message=f"m_{m}", part=0, text="x" * 5000))
        out = []
        for session in (full, empty):
            started = time.perf_counter_ns()
            for i in range(PASSES * count):
                await session.publish(MessageDelta(message="m_live", part=0, text=f" w{i}"))
            out.append((time.perf_counter_ns() - started) / (PASSES * count))
        return out[0], out[1]


async def measure(mode: Mode) -> Section:
    """The encode section: encode, validate+encode and decode, each beside orjson."""
    section = Section(
        "Encode and decode per record",
        "Ours: a typed event to its record's wire bytes, `encode_event(event)` then `encode_record(...)` "
        "(the envelope spliced in front of the event's bytes, once per record); the second row also builds the "
        "`Record` object around them, as the log's append does. Baseline: `orjson.dumps` of the same record as a "
        "plain dict. A mix of text deltas, tool argument deltas, progress and turn events; inputs built before "
        f"the clock starts. A run's figure is the best of {PASSES} passes.",
    )
    try:
        import orjson  # noqa: F401
    except ImportError:
        section.skipped = "orjson is not installed (it is in the `dev` extra)"
        return section
    events = sample_events(mode.encode_records)
    ts = time.time_ns() // 1_000_000
    rows = [
        (Pair("typed event → record bytes", "ns/record", target=Target(2.0, at_least=False)), encode_pair),
        (Pair("typed event → Record object (the append path)", "ns/record"), record_pair),
        (Pair("the same, every output kept (as in the ring)", "ns/record"), encode_kept_pair),
        (Pair("dict event → validate → record bytes", "ns/record"), validate_pair),
        (Pair("decode: Record.from_json vs orjson.loads", "ns/record"), decode_pair),
        (
            Pair(
                f"fold a text delta: into a {LONG_TEXT // 1_000_000} MB message vs into short ones",
                "ns/record",
                target=Target(1.5, at_least=False),
            ),
            fold_pair,
        ),
    ]
    for pair, fn in rows:
        pair.higher_is_better = False
        fn(events[:200], ts)  # warm up
        for _ in range(mode.repeats):
            pair.add(*fn(events, ts))
        section.pairs.append(pair)
    publish = Pair(
        f"publish a delta: into a session holding {STATE_BYTES // 1_000_000} MB vs an empty one",
        "ns/record",
        target=Target(1.5, at_least=False),
    )
    publish.higher_is_better = False
    for _ in range(mode.repeats):
        publish.add(*await publish_pair(min(mode.encode_records, 20_000)))  # quick: 3 snapshots of 10 MB a run
    section.pairs.append(publish)
    section.notes.append("A ratio below 1 is cheaper than orjson; the target is a ratio of costs.")
    section.notes.append(
        "The last two rows compare ours with ours: a delta folded into a long message, and a publish into a "
        "session that holds a lot, each beside the same into a short one."
    )
    return section
