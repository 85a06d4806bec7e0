"""The ring against a plain model: the last records within its bounds, whatever its growth."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sessionwire.events import MessageDelta, Record
from sessionwire.ring import Ring


def _record(seq: int, size: int) -> Record:
    return Record("s", seq, 0, MessageDelta(message="m", part=0, text="x" * size))


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(1, 100),
    max_bytes=st.integers(100, 20_000),
    start=st.integers(0, 1000),
    pushes=st.integers(0, 400),
    sizes=st.lists(st.integers(1, 300), min_size=1, max_size=20),
    resets=st.sets(st.integers(0, 399), max_size=3),
)
def test_ring_holds_exactly_the_newest_records_within_its_bounds(
    size: int, max_bytes: int, start: int, pushes: int, sizes: list[int], resets: set[int]
) -> None:
    # Long runs of pushes (hypothesis keeps generated lists short) with record sizes cycled.
    ops = [sizes[i % len(sizes)] for i in range(pushes)]
    ring = Ring(size, max_bytes, start)
    model: list[Record] = []
    last = start
    for i, op in enumerate(ops):
        if i in resets:  # a reset, as after a snapshot jump
            last += 5
            ring.reset(last)
            model = []
            continue
        last += 1
        record = _record(last, op)
        ring.push(record)
        model.append(record)
        del model[: max(0, len(model) - size)]
        while len(model) > 1 and sum(len(r.raw) for r in model) > max_bytes:
            del model[0]
        assert (ring.first, ring.last) == ((model[0].seq if model else last + 1), last)
        assert ring.bytes == sum(len(r.raw) for r in model)
        if model:
            assert ring.take(ring.first, len(model) + 3) == model
            middle = model[len(model) // 2 :]
            assert ring.take(middle[0].seq, 2) == middle[:2]
    assert ring.capacity <= size


def test_an_idle_ring_is_small_and_grows_only_to_its_bound() -> None:
    ring = Ring(4096, 1 << 30, 0)
    assert len(ring.slots) == 16
    for seq in range(1, 5000):
        ring.push(_record(seq, 1))
    assert len(ring.slots) == 4096
    assert ring.first == 5000 - 4096 and ring.last == 4999
