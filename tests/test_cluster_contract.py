"""Per-session guarantees hold for the session, whichever server process receives a request.

Each test runs on two real ``sessionwire serve`` processes on one Redis, and on one
process on a SQLite file (there "A" and "B" are the same process), so both backends
keep one contract.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cluster_util import Stream, auth, create, serving, typed
from server_util import ProcessServer

LEASE = 1.0
ADMIN = "admin-secret"


@pytest.fixture(params=["redis", "sqlite"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ProcessServer, ProcessServer]]:
    """Two processes on one Redis, or one process on SQLite given twice."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").fresh_url()
        with serving(url + f"?lease={LEASE}", 2, "--admin-token", ADMIN) as (a, b):
            yield a, b
    else:
        with serving(f"sqlite:///{tmp_path / 'wire.db'}", 1, "--admin-token", ADMIN) as (a,):
            yield a, a


async def post(client: httpx.AsyncClient, url: str, token: str, body: dict[str, object]) -> dict[str, str]:
    answer = await client.post(url, json=body, headers=auth(token))
    assert answer.is_success, answer.text
    return dict(answer.json())


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
