"""What a session's channel is given: its bounds (ring, lag limit, snapshots, batches) and where it counts appends
(:class:`AppendStats`; the hub's is :class:`HubStats`, which ``/metrics`` reads)."""

from __future__ import annotations

from bisect import bisect_left
from typing import Protocol

import msgspec

SNAPSHOT_BYTES_PER_RECORD = 1024
"""Bytes of snapshot per record since the last one, at most: a state of S bytes is stored every
``max(snapshot_every, S / 1024)`` records (a 10 MB state every 10,000)."""


class ChannelOptions(msgspec.Struct, kw_only=True):
    """Bounds of a session's channel.

    Attributes:
        ring_records: Recent records kept in memory for live subscribers.
        ring_bytes: The ring's bound in bytes of encoded records.
        lag_records: A subscriber further behind than this leaves the live path.
        snapshot_every: Store a snapshot of the state every so many records; a large state waits
            longer (one record per KB of its last snapshot), so a snapshot's cost per record stays
            bounded however much the session holds.
        read_page: Records read from the log per page while catching up.
        max_batch: Records handed to a subscriber per batch, at most.
    """

    ring_records: int = 4096
    ring_bytes: int = 4 * 1024 * 1024
    lag_records: int = 4096
    snapshot_every: int = 1000
    read_page: int = 1024
    max_batch: int = 512

    def snapshot_gap(self, size: int) -> int:
        """Records between a snapshot of ``size`` bytes and the next: ``snapshot_every``, or more.

        A snapshot costs its size, so a large state waits longer (:data:`SNAPSHOT_BYTES_PER_RECORD`
        per record at most).
        """
        return max(self.snapshot_every, size // SNAPSHOT_BYTES_PER_RECORD)

    def __post_init__(self) -> None:
        for name in ("ring_records", "ring_bytes", "lag_records", "snapshot_every", "read_page", "max_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"ChannelOptions.{name} must be >= 1, not {getattr(self, name)}")


class AppendStats(Protocol):
    """Where a channel counts its appends (the hub's statistics)."""

    def appended(self, records: int, seconds: float) -> None:
        """Count one append of ``records`` records that took ``seconds``."""
        ...


_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class HubStats:
    """Counters for ``/metrics``: appends, records and append latency."""

    def __init__(self) -> None:
        self.records_appended = 0
        self.appends = 0
        self.append_seconds = 0.0
        self.latency_buckets = [0] * len(_LATENCY_BUCKETS)

    def appended(self, records: int, seconds: float) -> None:
        """Count one append of ``records`` records that took ``seconds``."""
        self.records_appended += records
        self.appends += 1
        self.append_seconds += seconds
        i = bisect_left(_LATENCY_BUCKETS, seconds)  # the first bound >= seconds
        if i < len(_LATENCY_BUCKETS):
            self.latency_buckets[i] += 1

    @property
    def buckets(self) -> list[tuple[float, int]]:
        """Cumulative latency histogram: (upper bound in seconds, count)."""
        total, out = 0, []
        for bound, count in zip(_LATENCY_BUCKETS, self.latency_buckets):
            total += count
            out.append((bound, total))
        return out
