"""The Redis live feed: records appended by other processes reach this process's channels.

With a shared log (Redis), a turn runs in the process that accepted it, and
subscribers connected to any other process must see its records live. Each
process runs one :class:`RedisFeed`: a single reader task on a dedicated
connection that blocks in one ``XREAD`` on the streams of every session open
here (not one connection per subscriber), each from the channel's own last seq,
and hands what it reads to the channel's ``deliver``. Deliver drops what the channel
already has (this process's own appends, delivered at once) and takes the rest
in seq order, so a subscriber sees one sequence whichever process appended.

The set of streams changes when the hub opens or evicts a session; the reader
is woken from its blocking read by an entry in a small stream of its own.
While Redis is unreachable the reader retries with backoff and the channels'
live subscribers get a ``lagging`` frame; it resumes from the channels' last
seqs, so nothing is missed and nothing is delivered twice, then ``caught_up``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any, cast

from ...events import Record
from ..base import FeedTarget
from .log import TRANSIENT, RedisLog

__all__ = ["RedisFeed"]

_logger = logging.getLogger("sessionwire.backends.redis")


class RedisFeed:
    """One reader per process over the Redis streams of the sessions open in it.

    Args:
        log: The Redis log whose streams to read.
        block_ms: How long one ``XREAD`` blocks before it is renewed.
        count: Records read per stream per ``XREAD``, at most.
    """

    def __init__(self, log: RedisLog, block_ms: int = 5000, count: int = 1024) -> None:
        self._log = log
        self.block_ms = block_ms
        self.count = count
        self._sessions: dict[str, FeedTarget] = {}
        self._wake_key = log.keys.wake(secrets.token_hex(8))
        self._wake_id = b"0-0"
        self._generation = 0  # XREADs issued
        self._woken = -1  # the XREAD a wake was last sent for
        self._blocked = False
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.reads = 0
        self.records_delivered = 0
        self.errors = 0
        self.connected = False
        self._behind = False  # a read failed: the channels were told their feed is behind
        self._behind_since = 0.0

    # ------------------------------------------------------------------ sessions

    def watch(self, session: FeedTarget) -> None:
        """Feed this channel with its session's records appended anywhere, from its ``last_seq``."""
        if self._closed:
            return
        self._sessions[session.id] = session
        if self._behind:
            session.feed_behind(True)
        self._changed.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sessionwire redis feed")
        self._wake()

    @property
    def lag(self) -> float:
        """Seconds the feed has been behind (its reads failing); 0 while it is live."""
        return time.monotonic() - self._behind_since if self._behind else 0.0

    def unwatch(self, session_id: str) -> None:
        """Stop feeding the session's channel."""
        # No wake: a stream read once more costs less than a round trip.
        self._sessions.pop(session_id, None)

    @property
    def watched(self) -> list[str]:
        """Ids of the sessions fed here."""
        return list(self._sessions)

    def _wake(self) -> None:
        # Only a blocked read needs a wake, and one wake per read is enough: the next
        # read takes in every change made meanwhile.
        if self._blocked and self._woken != self._generation:
            self._woken = self._generation
            task = asyncio.create_task(self._send_wake())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send_wake(self) -> None:
        try:
            async with self._log.client.pipeline(transaction=False) as pipe:
                pipe.xadd(self._wake_key, {"w": "1"}, maxlen=1, approximate=False)
                pipe.expire(self._wake_key, 3600)
                await pipe.execute()
        except TRANSIENT:
            pass  # the reader is failing too; it re-reads the watched set when it reconnects

    # ------------------------------------------------------------------ the reader

    async def _run(self) -> None:
        reader = self._log.connect(single_connection_client=True, socket_timeout=self.block_ms / 1000 + 10)
        # Raw replies: nested lists are all we need, and much cheaper than redis-py's dicts.
        reader.response_callbacks.pop("XREAD", None)
        delay = 0.02
        try:
            while not self._closed:
                if not self._sessions:
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                streams: dict[Any, Any] = {self._wake_key: self._wake_id}
                for session_id, session in self._sessions.items():
                    streams[self._log.keys.stream(session_id)] = b"%d-0" % session.last_seq
                self._generation += 1
                self._blocked = True
                try:
                    reply = await reader.xread(streams, count=self.count, block=self.block_ms)
                except Exception as exc:
                    # A lost connection, or an error answer (a key of the wrong type, Redis
                    # loading): either way the feed is behind until a read succeeds again.
                    self.errors += 1
                    self.connected = not isinstance(exc, TRANSIENT)
                    if not self._behind:
                        if self.connected:
                            _logger.warning("sessionwire: the Redis feed's read failed: %s", exc)
                        self._behind = True
                        self._behind_since = time.monotonic()
                        for session in self._sessions.values():
                            session.feed_behind(True)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                finally:
                    self._blocked = False
                delay = 0.02
                self.connected = True
                self.reads += 1
                if reply:
                    try:
                        self._dispatch(cast(Any, reply))
                    except Exception:
                        # A bad entry must not stop every session's live feed in this process.
                        self.errors += 1
                        _logger.exception("sessionwire: the Redis feed could not deliver a read")
                if self._behind:
                    # Back, with what was missed delivered: the subscribers are live again.
                    self._behind = False
                    for session in self._sessions.values():
                        session.feed_behind(False)
        finally:
            await reader.aclose()

    def _dispatch(self, reply: list[Any] | dict[bytes, Any]) -> None:
        prefix = self._log.keys.stream_prefix
        # RESP3 answers XREAD with a map, RESP2 with a list of pairs.
        for key, entries in reply.items() if isinstance(reply, dict) else reply:
            if key == self._wake_key.encode():
                self._wake_id = entries[-1][0]
                continue
            session = self._sessions.get(key[len(prefix) :].decode())
            if session is None or session.closed:
                continue
            last = session.last_seq
            records = []
            for entry_id, fields in entries:
                seq = int(entry_id[:-2])  # "<seq>-0"
                if seq > last:
                    records.append(Record.from_json(fields[1]))
            if records:
                self.records_delivered += len(records)
                session.deliver(records)

    # ------------------------------------------------------------------ close

    async def aclose(self) -> None:
        """Stop the reader and close its connection."""
        if self._closed:
            return
        self._closed = True
        self._sessions.clear()
        task, self._task = self._task, None
        if task is not None:
            # A blocked XREAD does not end on cancel (redis-py reads the reply out first): wake it.
            self._changed.set()
            if self._blocked:
                await self._send_wake()
            done, _ = await asyncio.wait({task}, timeout=1.0)
            if not done:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pending in list(self._tasks):
            pending.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(*TRANSIENT):
            await self._log.client.delete(self._wake_key)
