"""Shared fixtures and helpers: logs of every backend, a real redis-server on a free port, free ports,
a SQLite log that says when it stored a snapshot, reading a subscription until n records came."""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sessionwire import Hub
from sessionwire.backends import EventLog, Snapshot, Store, open_log, open_store
from sessionwire.backends.sqlite import SQLiteLog
from sessionwire.channel import Item, Session, Subscription
from sessionwire.events import Record

BACKENDS = ["memory", "sqlite", "redis"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WatchedLog(SQLiteLog):
    """A real SQLite log that also tells when a snapshot was stored (tests wait on it, not on time)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.snapshots: list[int] = []
        self.stored = asyncio.Event()

    async def save_snapshot(self, session: str, snapshot: Snapshot) -> None:
        await super().save_snapshot(session, snapshot)
        self.snapshots.append(snapshot.at)
        self.stored.set()

    async def wait_snapshot(self, at_least: int) -> int:
        """Wait until a snapshot at ``at_least`` or later is stored; its seq."""
        async with asyncio.timeout(10):
            while max(self.snapshots, default=0) < at_least:
                self.stored.clear()
                await self.stored.wait()
        return max(self.snapshots)


async def take_records(sub: Subscription, n: int, timeout: float = 10.0) -> tuple[list[Record], list[Item]]:
    """Read until ``n`` records came; return them and every item (controls included)."""
    items: list[Item] = []
    records: list[Record] = []
    async with asyncio.timeout(timeout):
        while len(records) < n:
            batch = await sub.batch()
            assert batch, "the subscription ended early"
            items.extend(batch)
            records.extend(i for i in batch if isinstance(i, Record))
    return records, items


class RedisServer:
    """A redis-server process of the test's own, on a free port."""

    def __init__(self, directory: Path, appendonly: bool = False) -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._db = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run scripts/setup.sh --dev")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--dir",
                str(self.directory),
                "--databases",
                "256",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def fresh_url(self) -> str:
        """A URL on a database no other test used (there are 256), flushed first."""
        self._db = (self._db + 1) % 256
        url = f"redis://127.0.0.1:{self.port}/{self._db}"
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(f"SELECT {self._db}\r\nFLUSHDB\r\n".encode())
            sock.recv(64)
        return url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole test session (tests use separate databases)."""
    with tempfile.TemporaryDirectory(prefix="sw-redis-") as directory:
        server = RedisServer(Path(directory))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(params=BACKENDS)
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty log of each backend (ids: memory, sqlite, redis)."""
    backend = request.param
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.fresh_url()


@pytest.fixture
async def store(log_url: str) -> AsyncIterator[Store]:
    """A fresh store of each backend (ids: memory, sqlite, redis), closed after the test."""
    async with open_store(log_url) as opened:
        yield opened


@pytest.fixture
async def log(log_url: str) -> AsyncIterator[EventLog]:
    """A fresh log of each backend, closed after the test."""
    opened = open_log(log_url)
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    """A hub on a fresh memory log (files may define their own)."""
    async with Hub.open("memory://") as opened:
        yield opened


@pytest.fixture
async def session(hub: Hub) -> Session:
    """A created session ``s1`` on the ``hub`` fixture."""
    created, _ = await hub.create_session("s1", title="test")
    return created


@pytest.fixture(autouse=True)
def _no_proxy() -> None:
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the browser tests ``browser`` and run them last: Playwright's sync API keeps an event loop
    running in the main thread for the rest of the session, and an asyncio test after it could not start
    its own. ``scripts/test.sh`` runs them in a pytest process of their own."""
    fixtures = {"page", "browser", "context"}
    browser = [item for item in items if fixtures & set(getattr(item, "fixturenames", ()))]
    for item in browser:
        item.add_marker(pytest.mark.browser)
    if browser:
        chosen = set(browser)
        items[:] = [item for item in items if item not in chosen] + browser


class _Unobserved(logging.Handler):
    """Collects asyncio's reports of failures nobody observed ("Task exception was never retrieved")."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "never retrieved" in message or message.startswith("Exception in callback"):
            self.seen.append(f"{message}: {record.exc_info[1] if record.exc_info else ''}")


_UNOBSERVED = _Unobserved()


@pytest.fixture(autouse=True)
def _no_unobserved_failures() -> Iterator[None]:
    """Fail a test after which a background task's exception went unobserved: nothing fails silently.

    A task in a reference cycle is reported only when the collector runs: the session's end
    collects and fails the run for those (a collection after every test doubled its time).
    """
    logger = logging.getLogger("asyncio")
    if _UNOBSERVED not in logger.handlers:
        logger.addHandler(_UNOBSERVED)
    before = len(_UNOBSERVED.seen)
    yield
    seen = _UNOBSERVED.seen[before:]
    if seen:
        pytest.fail("unobserved failures in background tasks:\n" + "\n".join(seen), pytrace=False)


@pytest.fixture(autouse=True)
def _tasks_shown_before_a_timeout(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print every asyncio task's stack shortly before pytest-timeout ends a hung test.

    The timeout's traceback shows only the event loop waiting; what hangs is some task's await.
    """
    marker = request.node.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker and marker.args else float(request.config.getini("timeout") or 0)
    if limit <= 10:
        yield
        return
    timer = threading.Timer(limit - 5, _print_tasks, args=(request.node.nodeid,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _print_tasks(test: str) -> None:
    # From another thread, for a diagnosis only: the loop's thread is stuck waiting.
    out = io.StringIO()
    for task in list(asyncio.tasks._all_tasks):  # every loop's tasks (3.11)
        if not task.done():
            print(f"--- {task!r}", file=out)
            task.print_stack(file=out)
    print(f"\n{test} is about to time out; its unfinished asyncio tasks:\n{out.getvalue()}", file=sys.__stderr__)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = len(_UNOBSERVED.seen)
    gc.collect()
    late = _UNOBSERVED.seen[before:]
    if late:
        print("\nunobserved failures in background tasks, found at the end:\n" + "\n".join(late))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
