"""Several real `sessionwire serve` processes on one Redis share every session.

A turn runs in the process that accepted it; subscribers on any process see the
same records; commands reach the owner; a killed owner's work is ended by the
others within the lease time; a Redis restart loses and repeats nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from cluster_util import Stream, create, serving, typed
from conftest import RedisServer
from server_util import ProcessServer, auth

LEASE = 1.0


@pytest.fixture(scope="module")
def trio(redis_server: RedisServer) -> Iterator[list[ProcessServer]]:
    with serving(redis_server.fresh_url() + f"?lease={LEASE}", 3) as servers:
        yield servers


async def test_a_turn_on_a_reaches_subscribers_on_b_and_c_identically(trio: list[ProcessServer]) -> None:
    a, b, c = trio
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        on_b, on_c = Stream(client, b, session, token), Stream(client, c, session, token)
        await on_b.wait_for(typed("session.created"))
        await on_c.wait_for(typed("session.created"))
        sent = (
            await client.post(f"{a.url}/v1/sessions/{session}/turns", json={"text": "/long 300"}, headers=auth(token))
        ).json()
        end_b = await on_b.wait_for(typed("turn.completed", turn=sent["turn"]))
        end_c = await on_c.wait_for(typed("turn.completed", turn=sent["turn"]))
        assert end_b == end_c
        records_b = [r for r in on_b.records if r["seq"] <= end_b["seq"]]
        records_c = [r for r in on_c.records if r["seq"] <= end_c["seq"]]
        await on_b.aclose()
        await on_c.aclose()
        state_a = (await client.get(f"{a.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
        state_c = (await client.get(f"{c.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
    assert records_b == records_c
    assert [r["seq"] for r in records_b] == list(range(1, end_b["seq"] + 1))
    text = "".join(r["text"] for r in records_b if r["type"] == "message.delta")
    assert text.split() == [f"w{i}" for i in range(1, 301)]
    started = next(r for r in records_b if r["type"] == "turn.started")
    assert state_a == state_c and state_a["turns"][sent["turn"]]["owner"] == started["owner"]


async def test_cancel_via_c_stops_a_turn_running_on_a(trio: list[ProcessServer]) -> None:
    a, _, c = trio
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        on_c = Stream(client, c, session, token)
        sent = (
            await client.post(
                f"{a.url}/v1/sessions/{session}/turns", json={"text": "/long 100000"}, headers=auth(token)
            )
        ).json()
        await on_c.wait_for(typed("message.delta", turn=sent["turn"]))
        cancel = await client.post(f"{c.url}/v1/sessions/{session}/turns/{sent['turn']}/cancel", headers=auth(token))
        assert cancel.status_code == 202, cancel.text
        end = await on_c.wait_for(lambda r: r["type"].startswith("turn.") and r["type"] != "turn.started")
        assert end["type"] == "turn.cancelled" and end["turn"] == sent["turn"]
        # Cancelling it again, anywhere, says it has ended.
        again = await client.post(f"{c.url}/v1/sessions/{session}/turns/{sent['turn']}/cancel", headers=auth(token))
        assert again.status_code == 409
        unknown = await client.post(f"{c.url}/v1/sessions/{session}/turns/t_nope/cancel", headers=auth(token))
        assert unknown.status_code == 404
        await on_c.aclose()


async def test_approval_via_b_resumes_a_tool_on_a(trio: list[ProcessServer]) -> None:
    a, b, _ = trio
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        on_b = Stream(client, b, session, token)
        sent = (
            await client.post(
                f"{a.url}/v1/sessions/{session}/turns", json={"text": "/approve deploy"}, headers=auth(token)
            )
        ).json()
        requested = await on_b.wait_for(typed("approval.requested"))
        answer = await client.post(
            f"{b.url}/v1/sessions/{session}/approvals/{requested['approval']}",
            json={"decision": "approve", "by": "ops"},
            headers=auth(token),
        )
        assert answer.status_code == 200, answer.text
        resolved = await on_b.wait_for(typed("approval.resolved"))
        assert resolved["decision"] == "approved" and resolved["by"] == "ops"
        end = await on_b.wait_for(lambda r: r["type"] in ("turn.completed", "turn.failed", "turn.cancelled"))
        assert end == {**end, "type": "turn.completed", "turn": sent["turn"]}
        tool = await on_b.wait_for(typed("tool.result"))
        assert tool.get("error") is None
        await on_b.aclose()


async def test_killed_owner_work_is_interrupted_by_the_others_within_the_lease(redis_server: RedisServer) -> None:
    store = redis_server.fresh_url() + f"?lease={LEASE}"
    with serving(store, 1) as (a,):
        async with httpx.AsyncClient(timeout=30) as client:
            session, token = await create(client, a)
            base = f"{a.url}/v1/sessions/{session}"
            turn = (await client.post(f"{base}/turns", json={"text": "/long 100000"}, headers=auth(token))).json()
            job = (
                await client.post(f"{base}/jobs", json={"title": "big", "prompt": "/long 100000"}, headers=auth(token))
            ).json()
            # B and C start while A's work runs: A's lease is live, so their recovery leaves it alone.
            with serving(store, 2) as (b, c):
                on_c = Stream(client, c, session, token)
                await on_c.wait_for(typed("job.progress", job=job["job"]))
                await on_c.wait_for(typed("message.delta", turn=turn["turn"]))
                assert not [r for r in on_c.records if r["type"].endswith(".interrupted")]
                assert a.process is not None
                a.process.kill()  # SIGKILL: no clean-up of any kind
                killed = time.monotonic()
                ended_turn = await on_c.wait_for(typed("turn.interrupted", turn=turn["turn"]), timeout=10)
                ended_job = await on_c.wait_for(typed("job.interrupted", job=job["job"]), timeout=10)
                took = time.monotonic() - killed
                # The lease runs out within LEASE of the last renewal; the others check every LEASE/4.
                assert took < LEASE * 1.25 + 1.5, took
                assert "stopped" in ended_turn["reason"] and "stopped" in ended_job["reason"]
                state = (await client.get(f"{b.url}/v1/sessions/{session}", headers=auth(token))).json()["state"]
                assert state["turns"][turn["turn"]]["status"] == "interrupted"
                assert state["jobs"][job["job"]]["status"] == "interrupted"
                # B and C both saw the lease expire; only one of them wrote the terminals.

                terminals = [r for r in on_c.records if r["type"] in ("turn.interrupted", "job.interrupted")]
                assert len(terminals) == 2
                await on_c.aclose()


async def metrics(server: ProcessServer) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"{server.url}/metrics")
    assert answer.status_code == 200, answer.text
    return answer.text


def feed_lag(metrics: httpx.Response) -> float:
    assert metrics.status_code == 200, metrics.text
    line = next(x for x in metrics.text.splitlines() if x.startswith("sessionwire_feed_lag_seconds "))
    return float(line.split()[1])


async def test_redis_restart_mid_turn_loses_and_repeats_nothing(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path, appendonly=True)
    redis.start()
    try:
        # Leases shorter than the outage: they lapse while Redis is down, yet nobody's work is ended.
        with serving(redis.url + "?lease=1.5", 2) as (a, b):
            async with httpx.AsyncClient(timeout=60) as client:
                session, token = await create(client, a)
                on_b = Stream(client, b, session, token)
                sent = (
                    await client.post(
                        f"{a.url}/v1/sessions/{session}/turns", json={"text": "/long 800"}, headers=auth(token)
                    )
                ).json()
                await on_b.wait_for(typed("message.delta", turn=sent["turn"]))
                redis.stop()  # a clean shutdown: the AOF holds every appended record
                outage = asyncio.get_running_loop().time()
                # Health says so, with the reason, on every process; B's feed shows its lag.
                for server in (a, b):
                    health = await client.get(f"{server.url}/healthz")
                    assert health.status_code == 503 and "unreachable" in health.json()["reason"], health.text
                await asyncio.sleep(0.3)
                assert feed_lag(await client.get(f"{b.url}/metrics")) > 0
                await asyncio.sleep(2.0 - (asyncio.get_running_loop().time() - outage))  # longer than a lease
                redis.start()
                for server in (a, b):
                    assert (await client.get(f"{server.url}/healthz")).json() == {"ok": True, "runtime": True}
                end = await on_b.wait_for(lambda r: r["type"] in ("turn.completed", "turn.failed"), timeout=40)
                records = [r for r in on_b.records if r["seq"] <= end["seq"]]
                await on_b.wait_for_frame("caught_up")
                controls = [f.event for f in on_b.frames if f.event in ("lagging", "caught_up")]
                assert feed_lag(await client.get(f"{b.url}/metrics")) == 0
                # A's lease lapsed in the outage: it holds it again within a third of a lease.
                for _ in range(30):
                    if re.search(r'^sessionwire_lease_held\{owner="rt_\w+"\} 1$', await metrics(a), re.M):
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(await metrics(a))
                await on_b.aclose()
            # B's subscriber was told its feed was cut, and when it was back.
            assert controls == ["lagging", "caught_up"]
            assert end["type"] == "turn.completed", end
            assert [r["type"] for r in records if r["type"].endswith("interrupted")] == []
            assert [r["seq"] for r in records] == list(range(1, end["seq"] + 1))
            text = "".join(r["text"] for r in records if r["type"] == "message.delta")
            assert text.split() == [f"w{i}" for i in range(1, 801)]
    finally:
        redis.stop()


async def test_an_owner_stopped_past_its_lease_writes_nothing_after_it_was_taken_over(
    redis_server: RedisServer,
) -> None:
    with serving(redis_server.fresh_url() + f"?lease={LEASE}", 2) as (a, b):
        assert a.process is not None
        async with httpx.AsyncClient(timeout=30) as client:
            session, token = await create(client, a)
            on_b = Stream(client, b, session, token)
            base = f"{a.url}/v1/sessions/{session}"
            turn = (await client.post(base + "/turns", json={"text": "/long 100000"}, headers=auth(token))).json()
            job = (
                await client.post(base + "/jobs", json={"title": "t", "prompt": "/long 100000"}, headers=auth(token))
            ).json()
            await on_b.wait_for(typed("message.delta", turn=turn["turn"]))
            await on_b.wait_for(typed("message.delta", job=job["job"]))
            os.kill(a.process.pid, signal.SIGSTOP)  # A stalls (a GC pause, a frozen VM) past its lease
            try:
                ends = [
                    await on_b.wait_for(typed("turn.interrupted", turn=turn["turn"]), timeout=LEASE * 10),
                    await on_b.wait_for(typed("job.interrupted", job=job["job"]), timeout=LEASE * 10),
                ]
            finally:
                os.kill(a.process.pid, signal.SIGCONT)
            await asyncio.sleep(LEASE * 2)  # A runs again: its turn and job would go on appending
            # A serves new work under a new generation of its lease.
            new = (await client.post(base + "/turns", json={"text": "/long 5"}, headers=auth(token))).json()["turn"]
            await on_b.wait_for(typed("turn.completed", turn=new))
            records = list(on_b.records)
            await on_b.aclose()
        taken_over = max(e["seq"] for e in ends)
        late = [r for r in records if r["seq"] > taken_over and (r.get("turn"), r.get("job")) != (new, None)]
        late = [r for r in late if r.get("turn") == turn["turn"] or r.get("job") == job["job"]]
        assert late == [], late[:3]
        assert [r["seq"] for r in records] == list(range(1, records[-1]["seq"] + 1))
        assert "stops: runtime" in a.output() and "was taken over" in a.output()


def _command(data: bytes, pos: int) -> tuple[list[bytes], int]:
    """One RESP command of an AOF at ``pos``: its arguments, and where the next command starts."""
    end = data.index(b"\r\n", pos)
    count, pos = int(data[pos + 1 : end]), end + 2
    args = []
    for _ in range(count):
        end = data.index(b"\r\n", pos)
        size = int(data[pos + 1 : end])
        args.append(data[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2
    return args, pos


def truncate_aof_before(directory: Path, stream: str, entry: str) -> None:
    """Cut Redis's AOF before the transaction that added ``entry`` to ``stream`` (Redis is stopped).

    What a crash with ``appendfsync everysec`` can do: Redis comes back without that write
    and every write after it.
    """
    path = next((directory / "appendonlydir").glob("*.incr.aof"))
    data = path.read_bytes()
    pos, multi = 0, 0
    while pos < len(data):
        start = pos
        args, pos = _command(data, pos)
        if args[0].upper() == b"MULTI":
            multi = start
        elif args[0].upper() == b"XADD" and args[1:3] == [stream.encode(), entry.encode()]:
            path.write_bytes(data[:multi])
            return
    raise AssertionError(f"no XADD of {entry} to {stream} in {path}")


async def test_records_a_restarted_redis_lost_come_back_before_anything_new(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path, appendonly=True)
    redis.start()
    try:
        with serving(redis.url + f"?lease={LEASE}", 2) as (a, b):
            async with httpx.AsyncClient(timeout=30) as client:
                session, token = await create(client, a)
                on_a, on_b = Stream(client, a, session, token), Stream(client, b, session, token)
                for i in range(10):
                    body = {"events": [{"type": "status", "text": f"s{i}"}]}
                    sent = await client.post(f"{a.url}/v1/sessions/{session}/records", json=body, headers=auth(token))
                    assert sent.status_code == 200, sent.text
                for stream in (on_a, on_b):
                    await stream.wait_for(lambda r: r["seq"] == 11)
                redis.stop()
                truncate_aof_before(tmp_path, f"sw:x:{session}", "9-0")
                redis.start()
                raw = aioredis.Redis.from_url(redis.url)
                try:
                    assert int(await raw.hget(f"sw:h:{session}", "last")) == 8  # 9..11 were delivered, then lost
                finally:
                    await raw.aclose()
                # The next append (through B) finds Redis behind: 9..11 come back first, as delivered.
                body = {"events": [{"type": "status", "text": "after"}]}
                sent = await client.post(f"{b.url}/v1/sessions/{session}/records", json=body, headers=auth(token))
                assert sent.status_code == 200 and sent.json()["seqs"] == [12], sent.text
                for stream in (on_a, on_b):
                    assert (await stream.wait_for(lambda r: r["seq"] == 12))["text"] == "after"
                fresh = Stream(client, a, session, token)
                await fresh.wait_for(lambda r: r["seq"] == 12)
                for stream in (on_a, on_b, fresh):
                    await stream.aclose()
            assert "put them back" in a.output() + b.output()
        assert [r["seq"] for r in on_a.records] == list(range(1, 13))
        assert on_a.records == on_b.records == fresh.records  # one record per seq, everywhere
    finally:
        redis.stop()
