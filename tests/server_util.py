"""Real servers for tests: uvicorn in a background thread, or `sessionwire serve` as a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from sessionwire.server import Settings, create_app, make_server
from sessionwire.server.runner import Server


def wait_until(condition: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition()`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


class ThreadServer:
    """A real uvicorn on 127.0.0.1 (a free port) running the app in a background thread."""

    def __init__(self, settings: Settings, **app_kwargs: Any) -> None:
        self.settings = settings
        self.app = create_app(settings, **app_kwargs)
        self.server: Server = make_server(settings, self.app)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def ctx(self) -> Any:
        return self.app.state.wire

    def start(self) -> ThreadServer:
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), what="uvicorn to start")
        if not self.server.started:
            raise RuntimeError("uvicorn did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        if self.thread.is_alive():
            raise RuntimeError("uvicorn did not stop within 15 s")


@contextlib.contextmanager
def running(settings: Settings, **app_kwargs: Any) -> Iterator[ThreadServer]:
    """Run a :class:`ThreadServer` for the duration of the block."""
    server = ThreadServer(settings, **app_kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def settings_for(port: int, store: str = "memory://", **overrides: Any) -> Settings:
    """Settings for a test server: fast scripted agent, quiet logs, short heartbeat."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "store": store,
        "token_delay_ms": 1.0,
        "log_level": "warning",
        "static_dir": os.devnull,
        "coalesce_ms": 5.0,
        **overrides,
    }
    return Settings.load(env={}, **values)


class ProcessServer:
    """``sessionwire serve`` in a subprocess (for SIGTERM and restart tests)."""

    def __init__(self, port: int, store: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.args = [
            sys.executable,
            "-m",
            "sessionwire.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--store",
            store,
            "--log-level",
            "warning",
            *args,
        ]
        self.env = {**os.environ, "NO_PROXY": "127.0.0.1", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self._out = tempfile.TemporaryFile()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ProcessServer:
        self.process = subprocess.Popen(self.args, env=self.env, stdout=self._out, stderr=subprocess.STDOUT)

        def up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                return httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=20, what="sessionwire serve to answer /healthz")
        return self

    def terminate(self, timeout: float = 10.0) -> int:
        """Send SIGTERM and wait for the exit; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code

    def kill(self) -> None:
        """Stop the process if it still runs and release its output file."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._out.close()

    def output(self) -> str:
        """What the process printed so far (stdout and stderr)."""
        self._out.seek(0)
        return self._out.read().decode(errors="replace")


class Frame:
    """One SSE frame: ``id`` (None for control frames), ``event`` and ``data`` (decoded JSON)."""

    def __init__(self, id: int | None, event: str, data: Any) -> None:
        self.id, self.event, self.data = id, event, data

    def __repr__(self) -> str:
        return f"Frame(id={self.id}, event={self.event!r})"


async def sse_frames(response: httpx.Response) -> Any:
    """The SSE frames of a streaming httpx response (comments are yielded as ``Frame(None, ':', text)``)."""
    import json

    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                ident = fields.get("id")
                yield Frame(int(ident) if ident else None, fields.get("event", "message"), json.loads(fields["data"]))
            fields = {}
        elif line.startswith(":"):
            yield Frame(None, ":", line[1:].strip())
        else:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


def auth(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


class CuttingProxy:
    """A TCP proxy in front of a server whose connections the test can cut at any moment."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._writers: set[Any] = set()
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> CuttingProxy:
        import asyncio

        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        self._server.close()
        await self._server.wait_closed()

    def cut(self) -> None:
        """Close every open connection, both ways, at once."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: Any, writer: Any) -> None:
        import asyncio

        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: Any, dst: Any) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))
