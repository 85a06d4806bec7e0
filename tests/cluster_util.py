"""Helpers for the tests that run real ``sessionwire serve`` processes side by side on one store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import free_port
from server_util import Frame, ProcessServer, auth, sse_frames

LEASE = 1.0
ADMIN = "admin-secret"


@pytest.fixture
def policy() -> str:
    """The servers' turn policy (tests parametrize it)."""
    return "queue"


@pytest.fixture(params=["redis", "sqlite"])
def pair(request: pytest.FixtureRequest, tmp_path: Path, policy: str) -> Iterator[tuple[ProcessServer, ProcessServer]]:
    """Two processes on one Redis, or one process on SQLite given twice (so both backends keep one contract)."""
    args = ("--admin-token", ADMIN, "--policy", policy)
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").fresh_url()
        with serving(url + f"?lease={LEASE}", 2, *args) as (a, b):
            yield a, b
    else:
        with serving(f"sqlite:///{tmp_path / 'wire.db'}", 1, *args) as (a,):
            yield a, a


async def post(client: httpx.AsyncClient, url: str, token: str, body: dict[str, object]) -> dict[str, str]:
    answer = await client.post(url, json=body, headers=auth(token))
    assert answer.is_success, answer.text
    return dict(answer.json())


NODE = Path(__file__).parent / "node"
"""The official clients of other protocols, pinned in its lockfile (``scripts/setup.sh --dev`` installs them)."""


def node_client(package: str) -> Any:
    """A skip mark for the tests of a protocol whose client package is not installed."""
    return pytest.mark.skipif(
        shutil.which("node") is None or not (NODE / "node_modules" / package).is_dir(),
        reason="Node and tests/node's packages are installed by scripts/setup.sh --dev",
    )


async def run_client(script: str, server: ProcessServer, session: str, token: str, *args: str) -> dict[str, Any]:
    """Run one scenario of ``tests/node/<script>.mjs`` against ``server``: the JSON it prints.

    A client that fails, or writes anything to stderr (a warning), fails the test.
    """
    process = await asyncio.create_subprocess_exec(
        "node",
        str(NODE / f"{script}.mjs"),
        server.url,
        session,
        token,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert not err.strip(), err.decode()
    return dict(json.loads(out))


@contextlib.contextmanager
def serving(store: str, count: int, *args: str) -> Iterator[list[ProcessServer]]:
    """``count`` servers on ``store``, started side by side."""
    servers = [ProcessServer(free_port(), store, "--token-delay-ms", "2", *args) for _ in range(count)]
    try:
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda s: s.start(), servers))
        yield servers
    finally:
        for server in servers:
            server.kill()


class Stream:
    """An SSE subscription read in the background: its frames, and a way to wait for one."""

    def __init__(self, client: httpx.AsyncClient, server: ProcessServer, session: str, token: str) -> None:
        self.frames: list[Frame] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read(client, f"{server.url}/v1/sessions/{session}/events", token))

    async def _read(self, client: httpx.AsyncClient, url: str, token: str) -> None:
        async with client.stream("GET", url, headers=auth(token), params={"after": 0}) as response:
            assert response.status_code == 200
            async for frame in sse_frames(response):
                self.frames.append(frame)
                self._changed.set()

    @property
    def records(self) -> list[dict[str, Any]]:
        return [f.data for f in self.frames if f.id is not None]

    async def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
        """The first record that matches, waiting for it."""
        async with asyncio.timeout(timeout):
            while True:
                for record in self.records:
                    if match(record):
                        return record
                if self._task.done():
                    self._task.result()
                    raise AssertionError("the stream ended")
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_frame(self, event: str, timeout: float = 20.0) -> Frame:
        """The first frame of that event name (a record type or a control), waiting for it."""
        async with asyncio.timeout(timeout):
            while True:
                for frame in self.frames:
                    if frame.event == event:
                        return frame
                if self._task.done():
                    self._task.result()
                    raise AssertionError("the stream ended")
                self._changed.clear()
                await self._changed.wait()

    async def ended(self, timeout: float = 20.0) -> Frame:
        """The ``ended`` frame, once the stream ended after it."""
        frame = await self.wait_for_frame("ended", timeout)
        async with asyncio.timeout(timeout):
            await self._task
        return frame

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def typed(kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r["type"] == kind and all(r.get(k) == v for k, v in fields.items())


async def create(client: httpx.AsyncClient, server: ProcessServer) -> tuple[str, str]:
    created = (await client.post(server.url + "/v1/sessions", json={})).json()
    return created["session"], created["token"]


__all__ = ["Stream", "auth", "create", "serving", "typed"]
