"""``sessionwire replay`` of a real conversation: a transcript by default, ``--json``, ``--state``, ``--until``."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from conftest import free_port
from server_util import running, settings_for
from sessionwire import Client
from sessionwire.cli import main
from sessionwire.state import SessionState


async def converse(url: str) -> tuple[str, SessionState]:
    """One of each: reasoning, a tool, a job, an approval (approved by alice), a failure. The session and its state."""
    async with Client(url) as client:
        session = (await client.create_session(title="all of it")).id

        async def until(condition: Callable[[SessionState], bool]) -> SessionState:
            async with asyncio.timeout(10):
                while True:
                    state = await client.state(session)
                    if condition(state):
                        return state
                    await asyncio.sleep(0.02)

        def pending(state: SessionState) -> list[str]:
            return [a.id for a in state.approvals.values() if a.status == "pending"]

        def ended(turn: str) -> Callable[[SessionState], bool]:
            def check(state: SessionState) -> bool:
                running = [x for x in [*state.turns.values(), *state.jobs.values()] if x.status == "running"]
                return turn in state.turns and not running and not pending(state)

            return check

        for text in ["/think cats", '/tool add {"a": 1, "b": 2}', "/job 3 indexing"]:
            await client.send(session, text)
        last = await client.send(session, "/approve deploy")
        state = await until(lambda state: bool(pending(state)))
        await client.resolve_approval(session, pending(state)[0], "approve", by="alice")
        await until(ended(last.id))
        failing = await client.send(session, "/fail")
        return session, await until(ended(failing.id))


def test_replay_prints_a_readable_transcript(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'wire.db'}"
    runner = CliRunner()
    with running(settings_for(free_port(), store=store, token_delay_ms=0.0)) as server:
        session, state = asyncio.run(converse(server.url))
        # The server still holds the file: replay reads it read-only.
        transcript = runner.invoke(main, ["replay", store, session])
        records = runner.invoke(main, ["replay", store, session, "--json"])
        folded = runner.invoke(main, ["replay", store, session, "--state"])
    assert transcript.exit_code == 0, transcript.output
    text = transcript.output
    job = next(iter(state.jobs))
    approval = next(iter(state.approvals))
    failed = next(t.id for t in state.turns.values() if t.status == "failed")
    expected = [
        f"session {session} · all of it",
        "user · turn t_\\S+\n  /think cats",
        "assistant · turn t_\\S+\n  thinking: Thinking about cats, step by step.\n  My answer about cats: it is cats.",
        'assistant · turn t_\\S+\n  tool add\\({"a": 1, "b": 2}\\) · completed: 3',
        "add returned 3",
        f"job {job} started: indexing · turn t_\\S+",
        f"assistant · job {job}\n  w1 w2 w3",
        f"job {job} indexing · completed 3/3: indexing: 3 words",
        f"approval {approval} requested: deploy · turn t_\\S+",
        f"approval {approval} approved: deploy · by alice · turn t_\\S+",
        'tool perform\\({"action": "deploy"}\\) · completed: done: deploy',
        "Approved, so I did it: done: deploy",
        "This turn is about to fail.",
        f"turn {failed} failed: the scripted provider was asked to fail \\(/fail\\)\\s+\\(scripted_failure\\)",
    ]
    at = 0
    for pattern in expected:  # each in the transcript, in this order
        found = re.compile(pattern).search(text, at)
        assert found, f"{pattern!r} not after position {at} of:\n{text}"
        at = found.end()
    assert "still open" not in text and "Traceback" not in text
    lines = [json.loads(line) for line in records.output.splitlines()]
    assert records.exit_code == 0 and [r["seq"] for r in lines] == list(range(1, state.seq + 1))
    assert folded.exit_code == 0 and json.loads(folded.output) == state.to_dict()
    # --until stops part way: what was still open then is listed at the end.
    asked = next(r["seq"] for r in lines if r["type"] == "approval.requested")
    part = runner.invoke(main, ["replay", store, session, "--until", str(asked)])
    assert part.exit_code == 0, part.output
    assert part.output.count(f"approval {approval} requested: deploy") == 1 and "alice" not in part.output
    tail = part.output[part.output.index(f"— still open at seq {asked}:") :]
    assert f"approval {approval} pending: deploy" in tail and f"session {session} · seq {asked}" in tail
    until = ["replay", store, session, "--until", str(asked)]
    assert json.loads(runner.invoke(main, [*until, "--state"]).output)["seq"] == asked
    assert len(runner.invoke(main, [*until, "--json"]).output.splitlines()) == asked
