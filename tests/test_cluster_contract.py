# ruff: noqa: F811 (the fixtures imported from cluster_util are parameters here)
"""Per-session guarantees hold for the session, whichever server process receives a request.

Each test runs on two real ``sessionwire serve`` processes on one Redis, and on one
process on a SQLite file (there "A" and "B" are the same process), so both backends
keep one contract.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from cluster_util import ADMIN, LEASE, Stream, auth, create, pair, policy, post, typed  # noqa: F401 (pair, policy: fixtures)
from server_util import ProcessServer


async def test_delete_through_b_ends_the_work_on_a_everywhere_and_the_id_is_created_again(
    pair: tuple[ProcessServer, ProcessServer],
) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        on_a, on_b = Stream(client, a, session, token), Stream(client, b, session, token)
        base = f"{a.url}/v1/sessions/{session}"
        turn = (await post(client, base + "/turns", token, {"text": "/long 100000"}))["turn"]
        job = (await post(client, base + "/jobs", token, {"title": "t", "prompt": "/long 100000"}))["job"]
        await on_a.wait_for(typed("message.delta", turn=turn))
        await on_b.wait_for(typed("job.started", job=job))

        deleted = await client.delete(f"{b.url}/v1/sessions/{session}", headers=auth(ADMIN))
        assert deleted.status_code == 204
        # Subscribers on every process are told, and their streams end.
        for stream in (on_a, on_b):
            ended = await stream.ended()
            assert ended.data == {"control": "ended", "session": session, "reason": "session_deleted"}
        for server in (a, b):
            gone = await client.get(f"{server.url}/v1/sessions/{session}", headers=auth(ADMIN))
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "session_not_found"
            again = await client.delete(f"{server.url}/v1/sessions/{session}", headers=auth(ADMIN))
            assert again.status_code == 404
            refused = await client.post(
                f"{server.url}/v1/sessions/{session}/turns", json={"text": "x"}, headers=auth(token)
            )
            assert refused.status_code in (401, 404)

        # The id can be created again: a fresh session from seq 1, on either process.
        recreated = await client.post(f"{a.url}/v1/sessions", json={"id": session})
        assert recreated.status_code == 201, recreated.text
        fresh = recreated.json()["token"]
        await asyncio.sleep(LEASE * 1.5)  # many of A's token ticks: the deleted work, were it alive, would append
        for server in (a, b):
            stream = Stream(client, server, session, fresh)
            assert (await stream.wait_for(typed("session.created")))["seq"] == 1
            await stream.aclose()
            got = (await client.get(f"{server.url}/v1/sessions/{session}", headers=auth(fresh))).json()
            assert got["seq"] == 1 and got["state"]["turns"] == {} and got["state"]["jobs"] == {}
        # The old token went with the old session.
        old = await client.get(f"{b.url}/v1/sessions/{session}", headers=auth(token))
        assert old.status_code == 401


async def turns_of(client: httpx.AsyncClient, server: ProcessServer, session: str, token: str) -> list[str]:
    got = await client.get(f"{server.url}/v1/sessions/{session}", headers=auth(token))
    return list(got.json()["state"]["turns"])


async def test_an_idempotency_key_runs_a_turn_once_on_either_process_at_once_and_after_a_restart(
    pair: tuple[ProcessServer, ProcessServer],
) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        path = f"/v1/sessions/{session}/turns"
        keyed = {**auth(token), "Idempotency-Key": "turn-once"}
        # The same request through A and B at the same moment: one turn, one reply for both.
        first, second = await asyncio.gather(
            client.post(a.url + path, json={"text": "/long 20"}, headers=keyed),
            client.post(b.url + path, json={"text": "/long 20"}, headers=keyed),
        )
        assert first.status_code == second.status_code == 202, (first.text, second.text)
        assert first.json() == second.json()
        assert "true" in (first.headers.get("idempotent-replayed"), second.headers.get("idempotent-replayed"))
        # A retry on the other process, later.
        third = await client.post(b.url + path, json={"text": "/long 20"}, headers=keyed)
        assert third.json() == first.json() and third.headers["idempotent-replayed"] == "true"
        # The same key with another body is another request: refused.
        reused = await client.post(b.url + path, json={"text": "other"}, headers=keyed)
        assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"
        # After A is killed and started again, the reply is still there (in the store).
        assert a.process is not None
        a.process.kill()
        a.process.wait(timeout=10)
        a.start()
        fourth = await client.post(a.url + path, json={"text": "/long 20"}, headers=keyed)
        assert fourth.status_code == 202 and fourth.json() == first.json(), fourth.text
        assert await turns_of(client, b, session, token) == [first.json()["turn"]]


async def test_a_replayed_key_returns_no_credential_to_a_caller_who_did_not_hold_it(
    pair: tuple[ProcessServer, ProcessServer],
) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        # Creation: the key is the secret that gets the token back; a short one is refused.
        short = await client.post(f"{a.url}/v1/sessions", json={}, headers={"Idempotency-Key": "create-me"})
        assert short.status_code == 422 and "32" in short.json()["error"]["message"]
        secret = {"Idempotency-Key": "create-" + "9f3a" * 8}
        created = await client.post(f"{a.url}/v1/sessions", json={"title": "t"}, headers=secret)
        again = await client.post(f"{b.url}/v1/sessions", json={"title": "t"}, headers=secret)
        assert created.status_code == again.status_code == 201 and created.json() == again.json()
        session, token = created.json()["session"], created.json()["token"]
        # Another key is another session: nobody gets this token without this key.
        other = await client.post(f"{b.url}/v1/sessions", json={"title": "t"}, headers={"Idempotency-Key": "x" * 40})
        assert other.json()["session"] != session and other.json()["token"] != token

        # Keys are scoped by the credential presented: the admin's request with the same key is its own.
        path, body = f"/v1/sessions/{session}/records", {"events": [{"type": "status", "text": "once"}]}
        mine = await client.post(a.url + path, json=body, headers={**auth(token), "Idempotency-Key": "pub-1"})
        admin = await client.post(b.url + path, json=body, headers={**auth(ADMIN), "Idempotency-Key": "pub-1"})
        assert mine.json()["seqs"] != admin.json()["seqs"] and "idempotent-replayed" not in admin.headers

        # Rotation: the retry with the rotated token and the key gets the new token back, anywhere;
        # the same key with any other credential (or none) gets nothing.
        rotate, key = f"/v1/sessions/{session}/token", {"Idempotency-Key": "rotate-" + "7c1e" * 8}
        rotated = await client.post(a.url + rotate, headers={**auth(token), **key})
        assert rotated.status_code == 200, rotated.text
        retried = await client.post(b.url + rotate, headers={**auth(token), **key})
        assert retried.json() == rotated.json() and retried.headers["idempotent-replayed"] == "true"
        for stranger in ({}, auth(ADMIN + "x"), auth(other.json()["token"])):
            refused = await client.post(b.url + rotate, headers={**stranger, **key})
            assert refused.status_code in (401, 403), refused.text
            assert rotated.json()["token"] not in refused.text


def one_at_a_time(records: list[dict[str, Any]]) -> list[str]:
    """The turns in the order they started, checking that no two ever ran at once."""
    running: str | None = None
    started: list[str] = []
    for record in records:
        kind, turn = record["type"], record.get("turn")
        if kind == "turn.started":
            assert running is None, f"turn {turn} started while {running} ran (seq {record['seq']})"
            running = turn
            started.append(turn)
        elif kind in TERMINALS and turn == running:
            running = None
        elif turn is not None and kind != "turn.started" and turn not in started:
            # A queued turn that ends before it starts (cancelled, interrupted) writes started + terminal.
            continue
    return started


TERMINALS = ("turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted")


async def session_records(client: httpx.AsyncClient, server: ProcessServer, session: str, token: str) -> list[Any]:
    stream = Stream(client, server, session, token)
    try:
        await asyncio.sleep(0.3)
        return list(stream.records)
    finally:
        await stream.aclose()


async def until_idle(
    client: httpx.AsyncClient, server: ProcessServer, session: str, token: str, turns: int = 1
) -> dict[str, Any]:
    """The session's state once it has at least ``turns`` turns and none of them runs."""
    async with asyncio.timeout(30):
        while True:
            state = (await client.get(f"{server.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
            if len(state["turns"]) >= turns and all(t["status"] != "running" for t in state["turns"].values()):
                return dict(state)
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("policy", ["reject"])
async def test_reject_lets_one_turn_of_a_session_run_whichever_process_receives_them(
    pair: tuple[ProcessServer, ProcessServer],
) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        for _ in range(5):
            # At the same moment, through A and B: one runs, the other is refused.
            answers = await asyncio.gather(
                *(
                    client.post(f"{s.url}/v1/sessions/{session}/turns", json={"text": "/long 60"}, headers=auth(token))
                    for s in (a, b)
                )
            )
            assert sorted(r.status_code for r in answers) == [202, 409], [r.text for r in answers]
            refused = next(r for r in answers if r.status_code == 409)
            assert refused.json()["error"]["code"] == "turn_rejected"
            # While it runs, on either process.
            for server in (b, a):
                again = await client.post(
                    f"{server.url}/v1/sessions/{session}/turns", json={"text": "x"}, headers=auth(token)
                )
                assert again.status_code == 409, again.text
            await until_idle(client, a, session, token)
        records = await session_records(client, b, session, token)
        assert len(one_at_a_time(records)) == 5


async def test_queue_runs_the_turns_of_every_process_one_at_a_time_in_admission_order(
    pair: tuple[ProcessServer, ProcessServer],
) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        admitted = []
        for server in (a, b, a, b, b, a):
            sent = await client.post(
                f"{server.url}/v1/sessions/{session}/turns", json={"text": "/long 30"}, headers=auth(token)
            )
            assert sent.status_code == 202, sent.text
            admitted.append(sent.json()["turn"])
        state = await until_idle(client, b, session, token, turns=6)
        assert len(state["turns"]) == 6
        assert all(t["status"] == "completed" for t in state["turns"].values()), state["turns"]
        records = await session_records(client, a, session, token)
        assert one_at_a_time(records) == admitted


@pytest.mark.parametrize("policy", ["interrupt"])
async def test_interrupt_ends_the_running_turn_wherever_it_runs(pair: tuple[ProcessServer, ProcessServer]) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        on_b = Stream(client, b, session, token)
        first = (await post(client, f"{a.url}/v1/sessions/{session}/turns", token, {"text": "/long 100000"}))["turn"]
        await on_b.wait_for(typed("message.delta", turn=first))
        second = (await post(client, f"{b.url}/v1/sessions/{session}/turns", token, {"text": "/long 20"}))["turn"]
        ended = await on_b.wait_for(lambda r: r["type"] in TERMINALS and r["turn"] == first)
        assert ended["type"] == "turn.interrupted" and ended["reason"] == "interrupted by a new message"
        done = await on_b.wait_for(lambda r: r["type"] in TERMINALS and r["turn"] == second)
        assert done["type"] == "turn.completed"
        assert one_at_a_time(on_b.records) == [first, second]
        await on_b.aclose()


async def test_rotating_a_token_ends_what_it_opened_on_every_process(pair: tuple[ProcessServer, ProcessServer]) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        old_a, old_b = Stream(client, a, session, token), Stream(client, b, session, token)
        admin = Stream(client, b, session, ADMIN)
        async with websockets.connect(b.url.replace("http", "ws", 1) + "/v1/ws") as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": 1, "session": session, "token": token}))
            for stream in (old_a, old_b, admin):
                await stream.wait_for(typed("session.created"))
            rotated = await client.post(f"{a.url}/v1/sessions/{session}/token", headers=auth(token))
            new = rotated.json()["token"]
            # Within a second, on both processes, whatever the old token opened ends, saying why.
            for stream in (old_a, old_b):
                ended = await stream.ended(timeout=1.0)
                assert ended.data == {"control": "ended", "session": session, "reason": "token_rotated"}
            async with asyncio.timeout(1.0):
                while (frame := json.loads(await ws.recv())).get("control") != "ended":
                    pass
            assert frame == {"control": "ended", "session": session, "reason": "token_rotated"}
        # What the admin token or the new token opens goes on; the old token cannot resume.
        fresh = Stream(client, a, session, new)
        await post(client, f"{b.url}/v1/sessions/{session}/records", new, {"events": [{"type": "status", "text": "x"}]})
        for stream in (admin, fresh):
            assert (await stream.wait_for(typed("status")))["text"] == "x"
            await stream.aclose()
        for server in (a, b):
            resumed = await client.get(
                f"{server.url}/v1/sessions/{session}/events", headers={**auth(token), "Last-Event-ID": "1"}
            )
            assert resumed.status_code == 401
