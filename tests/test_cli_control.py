"""``sessionwire approve``, ``deny`` and ``cancel`` against a real server, error paths included."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conftest import free_port
from server_util import ThreadServer, running, settings_for, wait_until
from sessionwire import Client
from sessionwire.cli import main
from sessionwire.state import SessionState
from sessionwire.tokenstore import TokenStore


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with running(settings_for(free_port(), token_delay_ms=1.0)) as srv:
        yield srv


@pytest.fixture
def runner(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"SESSIONWIRE_CONFIG_DIR": str(tmp_path / "config")})


class Session:
    """A session of the test server whose token the CLI remembers (made with ``sessionwire new``)."""

    def __init__(self, server: ThreadServer, runner: CliRunner, tmp_path: Path) -> None:
        self.url, self.runner = server.url, runner
        created = runner.invoke(main, ["new", "--url", self.url])
        assert created.exit_code == 0, created.output
        self.id = created.stdout.strip()
        self.token = TokenStore(tmp_path / "config" / "tokens.json").get(self.url, self.id)

    def cli(self, *args: str) -> Result:
        """Run ``sessionwire COMMAND --url URL ARGS...`` (the token is the one ``new`` remembered)."""
        return self.runner.invoke(main, [args[0], "--url", self.url, *args[1:]])

    def call(self, method: str, *args: Any) -> Any:
        """Call a method of the Python client on this session."""

        async def go() -> Any:
            async with Client(self.url, token=self.token) as client:
                return await getattr(client, method)(self.id, *args)

        return asyncio.run(go())

    def wait(self, condition: Callable[[SessionState], bool], what: str) -> SessionState:
        """Poll the session's state until ``condition(state)`` holds (10 s at most); that state."""
        seen: list[SessionState] = []

        def check() -> bool:
            seen[:] = [self.call("state")]
            return condition(seen[0])

        wait_until(check, what=what)
        return seen[0]

    def pending_approval(self) -> str:
        self.call("send", "/approve deploy")
        state = self.wait(lambda s: any(a.status == "pending" for a in s.approvals.values()), "the approval")
        return next(a.id for a in state.approvals.values() if a.status == "pending")


def test_approve_and_deny_resolve_a_pending_approval(server: ThreadServer, runner: CliRunner, tmp_path: Path) -> None:
    session = Session(server, runner, tmp_path)
    first = session.pending_approval()
    approved = session.cli("approve", session.id, first, "--by", "alice")
    assert approved.exit_code == 0, approved.output
    assert approved.stdout == f"approval {first} approved\n"
    state = session.wait(lambda s: s.approvals[first].status == "approved", "the decision")
    assert state.approvals[first].by == "alice"
    session.wait(lambda s: all(t.status == "completed" for t in s.turns.values()), "the turn to end")
    # Already resolved: a clear error that says how, exit code 1.
    again = session.cli("deny", session.id, first)
    assert again.exit_code == 1 and f"approval {first} was already resolved: approved by alice" in again.output
    # Unknown: exit code 1, naming it.
    unknown = session.cli("approve", session.id, "a_nope")
    assert unknown.exit_code == 1 and "has no approval 'a_nope'" in unknown.output, unknown.output
    second = session.pending_approval()
    denied = session.cli("deny", session.id, second)
    assert denied.exit_code == 0 and denied.stdout == f"approval {second} denied\n", denied.output
    state = session.wait(lambda s: all(t.status == "completed" for t in s.turns.values()), "the turn to end")
    assert state.approvals[second].status == "denied" and state.approvals[second].by is None
    answer = state.messages[state.message_order[-1]].parts[0]
    assert "Denied, so I did not deploy." in getattr(answer, "text", "")


def test_cancel_the_running_turn_a_given_turn_or_a_job(server: ThreadServer, runner: CliRunner, tmp_path: Path) -> None:
    session = Session(server, runner, tmp_path)
    idle = session.cli("cancel", session.id)
    assert idle.exit_code == 1 and f"no turn is running in session {session.id}" in idle.output
    session.pending_approval()  # a turn that waits for its approval: it runs until cancelled
    running_turn = next(iter(session.call("state").turns))
    cancelled = session.cli("cancel", session.id)
    assert cancelled.exit_code == 0 and cancelled.stdout == f"cancelling turn {running_turn}\n", cancelled.output
    session.wait(lambda s: s.turns[running_turn].status == "cancelled", "the turn to be cancelled")
    again = session.cli("cancel", session.id, "--turn", running_turn)
    assert again.exit_code == 1 and "has already ended" in again.output, again.output
    unknown = session.cli("cancel", session.id, "--turn", "t_nope")
    assert unknown.exit_code == 1 and "t_nope" in unknown.output and "Traceback" not in unknown.output
    job = session.call("start_job", "forever", "/long 100000").id
    session.wait(lambda s: s.jobs.get(job) is not None and s.jobs[job].progress is not None, "the job to run")
    stopped = session.cli("cancel", session.id, "--job", job)
    assert stopped.exit_code == 0 and stopped.stdout == f"cancelling job {job}\n", stopped.output
    session.wait(lambda s: s.jobs[job].status == "cancelled", "the job to be cancelled")
    both = session.cli("cancel", session.id, "--turn", "t", "--job", "j")
    assert both.exit_code == 2 and "not both" in both.output
