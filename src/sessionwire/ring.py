"""A session's ring: its recent records, once, in a circular list.

Subscribers are cursors into it: reading a batch is a slice, not a queue per
subscriber. It is bounded in records and in bytes; the oldest records leave it
first (a subscriber that needs them reads them from the log). The list starts
small and doubles up to its bound as records arrive, so an idle session costs a
few hundred bytes, not a full ring of empty slots.
"""

from __future__ import annotations

from typing import cast

from .events import Record

INITIAL = 16


class Ring:
    """The records ``first..last`` of a session, in a circular list indexed by ``seq % capacity``.

    The list starts small and doubles up to ``size`` as records arrive, so an idle
    session costs a few hundred bytes, not ``size`` slots.
    """

    __slots__ = ("bytes", "capacity", "first", "last", "max_bytes", "size", "slots")

    def __init__(self, size: int, max_bytes: int, last: int) -> None:
        self.size = size
        self.capacity = min(size, INITIAL)
        self.slots: list[Record | None] = [None] * self.capacity
        self.max_bytes = max_bytes
        self.first = last + 1
        self.last = last
        self.bytes = 0

    def push(self, record: Record) -> None:
        """Add the record after ``last``, dropping the oldest beyond the bounds."""
        if self.last - self.first + 1 == self.capacity:
            if self.capacity < self.size:
                self._grow()
            else:
                self._drop_first()
        self.slots[record.seq % self.capacity] = record
        self.last = record.seq
        self.bytes += len(record.raw)
        while self.bytes > self.max_bytes and self.first < self.last:
            self._drop_first()

    def _grow(self) -> None:
        capacity = min(self.size, self.capacity * 2)
        slots: list[Record | None] = [None] * capacity
        old, old_capacity = self.slots, self.capacity
        for seq in range(self.first, self.last + 1):
            slots[seq % capacity] = old[seq % old_capacity]
        self.slots, self.capacity = slots, capacity

    def _drop_first(self) -> None:
        i = self.first % self.capacity
        dropped = self.slots[i]
        if dropped is not None:
            self.bytes -= len(dropped.raw)
        self.slots[i] = None
        self.first += 1

    def reset(self, last: int) -> None:
        """Forget every record; the next one pushed is ``last + 1``."""
        self.capacity = min(self.size, INITIAL)
        self.slots = [None] * self.capacity
        self.first = last + 1
        self.last = last
        self.bytes = 0

    def take(self, start: int, count: int) -> list[Record]:
        """Up to ``count`` records from seq ``start`` (``first <= start <= last``)."""
        stop = min(self.last, start + count - 1)
        i, j = start % self.capacity, stop % self.capacity
        slots = self.slots
        taken = slots[i : j + 1] if i <= j else slots[i:] + slots[: j + 1]
        return cast(list[Record], taken)
