"""A conversation's title: renamed by a person, or named once by the server from its first message.

The title lives in the log, as ``session.renamed`` records folded like any other (the latest
wins; an ``auto`` one applies only while the conversation has no title), so every subscriber
and tab sees a rename live and two renames at once end with one title everywhere. The
metadata the admin list shows follows the folded state: after each rename it stores the
title as of the latest seq it has seen, never an older one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .events import Record, SessionRenamed

if TYPE_CHECKING:
    from .backends import SessionMeta
    from .hub import Hub

AUTO_LENGTH = 80
"""The longest title the server gives a conversation from its first message."""

TITLE_SEQ = "title_seq"
"""The key of ``SessionMeta.data`` with the seq the stored title stands at."""


def auto_title(text: str) -> str | None:
    """The title a first message gives: its first non-blank line, at most 80 characters (None if blank)."""
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= AUTO_LENGTH else line[: AUTO_LENGTH - 1].rstrip() + "…"
    return None


async def rename(hub: Hub, session_id: str, title: str, *, auto: bool = False) -> Record:
    """Record ``session.renamed`` in a session's log and store the title the admin list shows.

    Raises:
        SessionNotFound: the session does not exist.
    """
    await hub.meta(session_id)
    session = await hub.session(session_id)
    record = await session.publish(SessionRenamed(title=title, auto=auto))
    await sync_title(hub, session_id, record.seq)
    return record


async def sync_title(hub: Hub, session_id: str, seq: int) -> None:
    """Store in the session's metadata its title as the fold has it, at ``seq`` or later."""
    session = await hub.session(session_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    while session.last_seq < seq:  # an earlier append may still be in flight: wait for its delivery
        waiter = session.waiter()
        try:
            await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
        except TimeoutError:
            break
        finally:
            session.forget(waiter)
    title, at = session.title, session.last_seq  # read together: no await between them

    def change(meta: SessionMeta) -> bool:
        stored = meta.data.get(TITLE_SEQ)
        if isinstance(stored, int) and stored >= at:
            return False  # a later title is stored already
        meta.title = title
        meta.data[TITLE_SEQ] = at
        return True

    await hub.update_meta(session_id, change)
