"""`sessionwire serve` as a real process: SIGTERM ends open streams at once; tokens survive a restart."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import httpx

from conftest import free_port
from server_util import ProcessServer, auth
from sessionwire.server.runner import RedactTokens


def test_sigterm_ends_streams_and_exits_cleanly(tmp_path: Path) -> None:
    server = ProcessServer(free_port(), f"sqlite:///{tmp_path / 'log.db'}").start()
    try:
        created = httpx.post(server.url + "/v1/sessions", json={}).json()
        url = f"{server.url}/v1/sessions/{created['session']}/events"
        with httpx.stream("GET", url, headers=auth(created["token"]), timeout=10) as stream:
            lines = stream.iter_lines()
            assert next(lines).startswith("retry")
            started = time.monotonic()
            code = server.terminate(timeout=10)
            ended = time.monotonic() - started
            rest = list(lines)  # the server ended the stream
        assert code == 0, server.output()
        assert ended < 2.0, f"the process took {ended:.2f}s to exit after SIGTERM"
        assert "event: session.created" in rest
        assert "Traceback" not in server.output()
        assert f"at {server.url}/" in server.output()  # serve prints its URL
    finally:
        server.kill()


def test_tokens_survive_restart_and_rotation_revokes(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'log.db'}"
    port = free_port()
    server = ProcessServer(port, store).start()
    try:
        created = httpx.post(server.url + "/v1/sessions", json={"title": "durable"}).json()
        session, token = created["session"], created["token"]
        assert server.terminate() == 0
        server.kill()
        server = ProcessServer(port, store).start()
        state = httpx.get(f"{server.url}/v1/sessions/{session}", headers=auth(token))
        assert state.status_code == 200 and state.json()["state"]["title"] == "durable"
        rotated = httpx.post(f"{server.url}/v1/sessions/{session}/token", headers=auth(token)).json()["token"]
        assert server.terminate() == 0
        server.kill()
        server = ProcessServer(port, store).start()
        assert httpx.get(f"{server.url}/v1/sessions/{session}", headers=auth(token)).status_code == 401
        assert httpx.get(f"{server.url}/v1/sessions/{session}", headers=auth(rotated)).status_code == 200
    finally:
        server.kill()


def test_access_log_never_shows_a_token() -> None:
    # uvicorn's access log line: client, method, full path with query, HTTP version, status.
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', None, None)
    record.args = ("127.0.0.1:5000", "GET", "/v1/sessions/s1/events?after=3&token=sw1.czE.secret&x=1", "1.1", 200)
    assert RedactTokens().filter(record)
    line = record.getMessage()
    assert "secret" not in line
    assert "/v1/sessions/s1/events?after=3&token=***&x=1" in line


def test_a_second_server_on_the_same_sqlite_file_says_why_it_cannot_start(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'log.db'}"
    server = ProcessServer(free_port(), store).start()
    try:
        args = [str(free_port()) if a == str(server.port) else a for a in server.args]
        result = subprocess.run(args, env=server.env, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode != 0
        assert "in use by another process" in result.stderr and "--store" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert httpx.get(server.url + "/healthz").status_code == 200  # the first one is unharmed
    finally:
        server.kill()
