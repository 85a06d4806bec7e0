"""A session's ring: its recent records, once, in a circular list.

Subscribers are cursors into it: reading a batch is a slice, not a queue per
subscriber. It is bounded in records and in bytes; the oldest records leave it
first (a subscriber that needs them reads them from the log).
"""

from __future__ import annotations

from typing import cast

from .events import Record


class Ring:
    """The records ``first..last`` of a session, in a circular list indexed by ``seq % size``."""

    __slots__ = ("bytes", "first", "last", "max_bytes", "size", "slots")

    def __init__(self, size: int, max_bytes: int, last: int) -> None:
        self.slots: list[Record | None] = [None] * size
        self.size = size
        self.max_bytes = max_bytes
        self.first = last + 1
        self.last = last
        self.bytes = 0

    def push(self, record: Record) -> None:
        """Add the record after ``last``, dropping the oldest beyond the bounds."""
        slots, size = self.slots, self.size
        if self.last - self.first + 1 == size:
            self._drop_first()
        slots[record.seq % size] = record
        self.last = record.seq
        self.bytes += len(record.raw)
        while self.bytes > self.max_bytes and self.first < self.last:
            self._drop_first()

    def _drop_first(self) -> None:
        i = self.first % self.size
        dropped = self.slots[i]
        if dropped is not None:
            self.bytes -= len(dropped.raw)
        self.slots[i] = None
        self.first += 1

    def reset(self, last: int) -> None:
        """Forget every record; the next one pushed is ``last + 1``."""
        self.slots = [None] * self.size
        self.first = last + 1
        self.last = last
        self.bytes = 0

    def take(self, start: int, count: int) -> list[Record]:
        """Up to ``count`` records from seq ``start`` (``first <= start <= last``)."""
        stop = min(self.last, start + count - 1)
        i, j = start % self.size, stop % self.size
        slots = self.slots
        taken = slots[i : j + 1] if i <= j else slots[i:] + slots[: j + 1]
        return cast(list[Record], taken)
