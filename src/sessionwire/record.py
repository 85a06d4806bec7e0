"""The Record envelope, re-exported from :mod:`sessionwire.events.record` where it lives."""

from __future__ import annotations

from .events.record import OpaqueEvent, Record, encode_record, record_prefix

__all__ = ["OpaqueEvent", "Record", "encode_record", "record_prefix"]
