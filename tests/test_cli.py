"""The command line: new, send, tail (rendered into a recording rich console), replay, schema, serve flags."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from rich.console import Console

from conftest import free_port
from server_util import ThreadServer, running, settings_for
from sessionwire import Client
from sessionwire.backends import open_log
from sessionwire.backends.sqlite import SQLiteLog
from sessionwire.cli import DEFAULT_URL, main, tail_session
from sessionwire.cli.main import web_link
from sessionwire.server.settings import DEFAULT_PORT, Settings
from sessionwire.tokenstore import TokenStore
from sessionwire.view import SessionView

SESSIONWIRE = Path(sys.executable).with_name("sessionwire")


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with running(settings_for(free_port(), token_delay_ms=1.0)) as srv:
        yield srv


@pytest.fixture
def runner(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"SESSIONWIRE_CONFIG_DIR": str(tmp_path / "config")})


def test_schema() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert "session.created" in json.dumps(schema["$defs"]) and schema["title"] == "sessionwire record"


def test_new_send_follow_and_tail_json(server: ThreadServer, runner: CliRunner, tmp_path: Path) -> None:
    created = runner.invoke(main, ["new", "--url", server.url, "--title", "from the cli"])
    assert created.exit_code == 0, created.output
    session = created.stdout.strip()
    tokens = json.loads((tmp_path / "config" / "tokens.json").read_text())
    assert session in tokens[server.url]
    follow = runner.invoke(main, ["send", "--url", server.url, session, "hello there", "--follow"])
    assert follow.exit_code == 0, follow.output
    assert "hello there" in follow.output
    sent = runner.invoke(main, ["send", "--url", server.url, session, "/long 5"])
    assert sent.exit_code == 0 and sent.output.strip().startswith("t_")
    tailed = runner.invoke(main, ["tail", "--url", server.url, session, "--json", "--exit-idle"])
    assert tailed.exit_code == 0, tailed.output
    lines = [json.loads(line) for line in tailed.output.splitlines()]
    assert [r["seq"] for r in lines] == list(range(1, len(lines) + 1))
    assert lines[0]["type"] == "session.created" and lines[0]["title"] == "from the cli"
    assert lines[-1]["type"] == "turn.completed"
    live = runner.invoke(main, ["tail", "--url", server.url, session, "--exit-idle"])
    assert live.exit_code == 0, live.output
    assert f"session {session}" in live.output and "w5" in live.output and "hello there" in live.output
    # no token known: a clear error
    unknown = runner.invoke(main, ["send", "--url", server.url, "s_unknown", "hi"])
    assert unknown.exit_code != 0 and "no token known" in unknown.output
    wrong = runner.invoke(main, ["send", "--url", server.url, "--token", "sw1.x.y", session, "hi"])
    assert wrong.exit_code == 1 and "token" in wrong.output


async def test_tail_renders_messages_jobs_and_approvals(server: ThreadServer) -> None:
    async with Client(server.url) as client:
        created = await client.create_session(title="tailed")
        await client.send(created.id, "/job 20 indexing")
        await client.send(created.id, "/approve deploy")
        console = Console(record=True, width=100, force_terminal=True, color_system=None)

        def approval_pending(view: SessionView) -> bool:
            jobs_done = view.state.jobs and all(j.status == "completed" for j in view.state.jobs.values())
            pending = any(a.status == "pending" for a in view.state.approvals.values())
            return bool(jobs_done and pending)

        async with asyncio.timeout(20):
            await tail_session(client, created.id, 0, console, stop=approval_pending)
        text = console.export_text()
        assert f"session {created.id}" in text and "tailed" in text
        assert re.search(r"job j_\S+ indexing · completed 20/20", text)
        assert "w20" in text  # the job's message, printed once it completed
        assert re.search(r"approval a_\S+ pending: deploy", text)
        assert "assistant · job" in text and "user · turn" in text


def test_replay(tmp_path: Path, runner: CliRunner) -> None:
    url = f"sqlite:///{tmp_path / 'replay.db'}"

    async def write() -> None:
        log = open_log(url)
        try:
            from sessionwire.events import MessageCompleted, SessionCreated, Status, TextPart

            await log.append("s_r", [SessionCreated(title="replayed"), Status(text="one")])
            await log.append(
                "s_r",
                [MessageCompleted(message="m1", role="assistant", parts=[TextPart(text="hi")]), Status(text="two")],
            )
        finally:
            await log.aclose()

    asyncio.run(write())
    # A server holds the file (and its lock) open: replay still reads it, read-only.
    held = SQLiteLog(str(tmp_path / "replay.db"))
    try:
        _replay_while_held(url, runner)
    finally:
        asyncio.run(held.aclose())


def _replay_while_held(url: str, runner: CliRunner) -> None:
    state = runner.invoke(main, ["replay", url, "s_r", "--state"])
    assert state.exit_code == 0, state.output
    folded = json.loads(state.output)
    assert folded["seq"] == 4 and folded["title"] == "replayed" and folded["status"]["text"] == "two"
    until = json.loads(runner.invoke(main, ["replay", url, "s_r", "--until", "2", "--state"]).output)
    assert until["seq"] == 2 and until["status"]["text"] == "one" and not until["messages"]
    exported = runner.invoke(main, ["replay", url, "s_r", "--json", "--until", "3"]).output.splitlines()
    assert [json.loads(line)["seq"] for line in exported] == [1, 2, 3]
    transcript = runner.invoke(main, ["replay", url, "s_r"])
    assert transcript.exit_code == 0, transcript.output
    assert transcript.output.splitlines() == ["session s_r · replayed", "assistant", "  hi"]
    for flags in ([], ["--json"], ["--state"]):
        missing = runner.invoke(main, ["replay", url, "s_missing", *flags])
        assert missing.exit_code == 1 and "no records" in missing.output, flags
    both = runner.invoke(main, ["replay", url, "s_r", "--json", "--state"])
    assert both.exit_code == 2 and "not both" in both.output


def test_serve_settings_from_flags_and_env() -> None:
    assert DEFAULT_URL.endswith(f":{DEFAULT_PORT}")
    env = {
        "SESSIONWIRE_PORT": "9100",
        "SESSIONWIRE_ALLOWED_ORIGINS": "http://a, http://b",
        "SESSIONWIRE_HEARTBEAT": "2",
    }
    settings = Settings.load(env=env, host="0.0.0.0", allowed_origins=())
    assert settings.port == 9100 and settings.host == "0.0.0.0" and settings.heartbeat == 2.0
    assert settings.allowed_origins == ["http://a", "http://b"]
    assert settings.url == "http://127.0.0.1:9100"
    assert Settings.load(env=env, port=9200).port == 9200
    assert Settings.load(env={}).store_url.startswith("sqlite:///")
    with pytest.raises(ValueError, match="SESSIONWIRE_PORT"):
        Settings.load(env={"SESSIONWIRE_PORT": "nope"})
    with pytest.raises(ValueError, match="agent"):
        Settings.load(env={"SESSIONWIRE_AGENT": "nope"})
    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    for flag in ["--host", "--port", "--store", "--agent", "--token-delay-ms", "--log-level", "--admin-token"]:
        assert flag in help_text


def test_an_unreachable_server_is_a_clean_error(runner: CliRunner) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for args in (["new"], ["send", "s_x", "hi", "--token", "t"], ["tail", "s_x", "--token", "t"]):
        result = runner.invoke(main, [*args, "--url", url])
        assert result.exit_code == 1, (args, result.output)
        assert f"cannot reach the server at {url}" in result.output
        assert isinstance(result.exception, SystemExit)  # ClickException, not a traceback


def test_tail_with_a_wrong_token_is_a_clean_error(server: ThreadServer, runner: CliRunner) -> None:
    session = runner.invoke(main, ["new", "--url", server.url]).stdout.strip()
    result = runner.invoke(main, ["tail", session, "--url", server.url, "--token", "nope"])
    assert result.exit_code == 1 and "token" in result.output and "Traceback" not in result.output


def test_replay_of_a_missing_or_unknown_store_is_a_clean_error(tmp_path: Path, runner: CliRunner) -> None:
    missing = runner.invoke(main, ["replay", f"sqlite:///{tmp_path / 'none.db'}", "s_x"])
    assert missing.exit_code == 1 and "cannot open the log" in missing.output and "none.db" in missing.output
    unknown = runner.invoke(main, ["replay", "bogus://x", "s_x"])
    assert unknown.exit_code == 1 and "unknown store URL scheme" in unknown.output


def test_python_dash_m_knows_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sessionwire.cli", "bench", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "--tiny" in result.stdout


def test_remembered_tokens_are_private_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "config" / "tokens.json"
    path.parent.mkdir()
    loose = path.with_suffix(".tmp")
    loose.write_text("{}")  # a leftover of a crashed write, readable by everyone
    loose.chmod(0o644)
    store = TokenStore(path)
    store.put("http://h:1/", "s_1", "secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.get("http://h:1", "s_1") == "secret" and not loose.exists()


async def test_tail_shows_markup_in_titles_and_ids_as_text(server: ThreadServer) -> None:
    """Titles, actions and ids are data: rich must not read them as markup (a stray closing tag crashed it)."""
    async with Client(server.url) as client:
        created = await client.create_session(title="[/] title")
        await client.publish(
            created.id,
            [
                {"type": "job.started", "job": "[/job]", "title": "[bold]index[/bold] [/x]"},
                {"type": "job.progress", "job": "[/job]", "done": 1, "total": 2},
                {"type": "message.started", "message": "m[/1]", "role": "assistant", "job": "[/job]"},
                {"type": "approval.requested", "approval": "[/a]", "action": "rm [red]-rf[/] [/z]"},
            ],
        )
        console = Console(record=True, width=120, force_terminal=True, color_system=None)
        async with asyncio.timeout(20):
            await tail_session(client, created.id, 0, console, stop=lambda view: bool(view.state.approvals))
    text = console.export_text()
    for literal in ["[/] title", "[bold]index[/bold] [/x]", "[/job]", "rm [red]-rf[/] [/z]", "[/a]", "running 1/2"]:
        assert literal in text, literal


def test_token_file_problems_are_clean_errors(server: ThreadServer, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")  # the config dir would have to live under a file: no write can succeed, even as root
    unwritable = CliRunner(env={"SESSIONWIRE_CONFIG_DIR": str(blocker / "config")})
    created = unwritable.invoke(main, ["new", "--url", server.url])
    assert created.exit_code == 1 and isinstance(created.exception, SystemExit), created.output
    assert "was created but its token was not saved" in created.output
    session, token = re.search(r"session (\S+) was created.*--token (\S+)", created.output).groups()  # type: ignore[union-attr]
    sent = unwritable.invoke(main, ["send", "--url", server.url, "--token", token, session, "hi"])
    assert sent.exit_code == 0, sent.output
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "tokens.json").write_text("{not json")
    result = CliRunner(env={"SESSIONWIRE_CONFIG_DIR": str(corrupt)}).invoke(
        main, ["send", "--url", server.url, "s", "hi"]
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "cannot read the token file" in result.output


def test_new_prints_the_id_alone_and_the_web_link_on_stderr(server: ThreadServer, tmp_path: Path) -> None:
    env = {**os.environ, "SESSIONWIRE_CONFIG_DIR": str(tmp_path / "config"), "NO_PROXY": "127.0.0.1"}
    done = subprocess.run(
        [str(SESSIONWIRE), "new", "--url", server.url + "/"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    session = done.stdout.strip()
    assert done.stdout == session + "\n" and re.fullmatch(r"s_\w+", session)  # scripts read it as it is
    token = TokenStore(tmp_path / "config" / "tokens.json").get(server.url, session)
    assert token is not None
    link = f"{server.url}/#/s/{session}?token={quote(token, safe='')}"
    assert f"open it in the web UI: {link}\n" in done.stderr
    assert "whoever holds it can read and act in the conversation" in done.stderr
    # The page reads the id and token back from what was encoded.
    assert web_link("http://h:1/", "s/a b", "t+k=/") == "http://h:1/#/s/s%2Fa%20b?token=t%2Bk%3D%2F"


def test_version() -> None:
    done = subprocess.run([str(SESSIONWIRE), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == f"sessionwire, version {version('sessionwire')}\n"
