"""What a session's channel is given: its bounds (ring, lag limit, snapshots, batches) and where it counts appends."""

from __future__ import annotations

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
