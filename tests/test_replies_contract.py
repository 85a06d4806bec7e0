"""The Replies contract (Idempotency-Key replies): one claim per key, replies kept and expiring (every backend)."""

from __future__ import annotations

import asyncio

import pytest

from sessionwire.backends import Reply, Store, open_store


async def test_one_claim_per_key_and_the_reply_for_every_later_claim(store: Store) -> None:
    replies = store.replies
    assert await replies.get("k") is None
    assert await replies.claim("k", "fp", hold=30) is None  # ours: run the request
    running = await replies.claim("k", "fp", hold=30)
    assert running is not None and running.fingerprint == "fp" and running.status == 0
    assert await replies.get("k") == running
    reply = Reply(fingerprint="fp", status=202, body=b'{"turn":"t1"}', media_type="application/json")
    await replies.finish("k", reply, ttl=30)
    assert await replies.claim("k", "fp", hold=30) == reply
    assert await replies.claim("k", "other", hold=30) == reply  # the caller compares fingerprints
    assert await replies.get("k") == reply
    assert await replies.claim("k2", "fp", hold=30) is None  # keys are independent


async def test_concurrent_claims_of_one_key_give_it_to_exactly_one(store: Store) -> None:
    results = await asyncio.gather(*(store.replies.claim("k", "fp", hold=30) for _ in range(20)))
    assert sum(r is None for r in results) == 1


async def test_a_dropped_claim_may_run_again_and_claims_and_replies_expire(store: Store) -> None:
    replies = store.replies
    assert await replies.claim("k", "fp", hold=30) is None
    await replies.drop("k")
    assert await replies.get("k") is None
    assert await replies.claim("k", "fp", hold=0.2) is None
    await asyncio.sleep(0.35)  # the claim of a process that died mid-request lapses
    assert await replies.claim("k", "fp", hold=30) is None
    await replies.finish("k", Reply(fingerprint="fp", status=200, body=b"{}"), ttl=0.2)
    assert (await replies.get("k")) is not None
    await asyncio.sleep(0.35)
    assert await replies.get("k") is None
    assert await replies.claim("k", "fp", hold=30) is None


async def test_durable_stores_keep_replies_across_a_reopen(log_url: str) -> None:
    if log_url.startswith("memory"):
        pytest.skip("memory:// keeps nothing across a reopen, by design")
    reply = Reply(fingerprint="fp", status=201, body=b'{"session":"s1"}', media_type="application/json")
    async with open_store(log_url) as store:
        assert await store.replies.claim("k", "fp", hold=30) is None
        await store.replies.finish("k", reply, ttl=60)
    async with open_store(log_url) as store:
        assert await store.replies.claim("k", "fp", hold=30) == reply
