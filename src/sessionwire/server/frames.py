"""SSE framing: a record is ``id`` / ``event`` / ``data``; a control frame has no id; a heartbeat is a comment."""

from __future__ import annotations

from collections.abc import Sequence

from ..channel import Control, Item

HEARTBEAT = b": heartbeat\n\n"
RETRY = b"retry: 1000\n\n"


def encode_frames(items: Sequence[Item]) -> bytes:
    """The SSE frames of a batch of records and control frames, as one block of bytes."""
    parts: list[bytes] = []
    for item in items:
        if isinstance(item, Control):
            parts.append(b"event: %b\ndata: %b\n\n" % (item.control.encode(), item.raw))
        else:
            parts.append(b"id: %d\nevent: %b\ndata: %b\n\n" % (item.seq, item.type.encode(), item.raw))
    return b"".join(parts)
