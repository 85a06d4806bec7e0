# ruff: noqa: F811 (the fixtures imported from cluster_util are parameters here)
"""Titles on the server: ``POST /v1/sessions/{id}/title`` records ``session.renamed``, which every
subscriber sees live, the admin list shows, and the first message names an untitled session by."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from cluster_util import ADMIN, Stream, auth, create, pair, policy, typed  # noqa: F401 (pair, policy: fixtures)
from server_util import ProcessServer
from sessionwire import Hub
from sessionwire.titles import AUTO_LENGTH, auto_title


async def rename(
    client: httpx.AsyncClient, server: ProcessServer, session: str, token: str, title: Any
) -> httpx.Response:
    return await client.post(f"{server.url}/v1/sessions/{session}/title", json={"title": title}, headers=auth(token))


async def state(client: httpx.AsyncClient, server: ProcessServer, session: str, token: str) -> dict[str, Any]:
    answer = await client.get(f"{server.url}/v1/sessions/{session}", headers=auth(token))
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["state"])


JSON = {"content-type": "application/json"}


async def listed_title(client: httpx.AsyncClient, server: ProcessServer, session: str) -> Any:
    listed = (await client.get(f"{server.url}/v1/sessions", headers=auth(ADMIN))).json()["sessions"]
    return next(s["title"] for s in listed if s["id"] == session)


async def test_a_rename_reaches_every_subscriber_live_on_every_process(
    pair: tuple[ProcessServer, ProcessServer],
) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        watchers = [Stream(client, a, session, token), Stream(client, b, session, token)]
        await asyncio.gather(*(w.wait_for(typed("session.created")) for w in watchers))
        answer = await rename(client, a, session, token, "  Trip to Lisbon ")
        assert answer.status_code == 200, answer.text
        reply = answer.json()
        assert reply["session"] == session and reply["title"] == "Trip to Lisbon" and reply["seq"] == 2
        for watcher in watchers:
            record = await watcher.wait_for(typed("session.renamed"))
            assert record["title"] == "Trip to Lisbon" and record["seq"] == 2
            assert record.get("auto", False) is False
        for server in (a, b):
            assert (await state(client, server, session, token))["title"] == "Trip to Lisbon"
            assert await listed_title(client, server, session) == "Trip to Lisbon"
        for watcher in watchers:
            await watcher.aclose()


async def test_two_clients_naming_a_new_conversation_at_once_end_with_one_title_everywhere(
    pair: tuple[ProcessServer, ProcessServer],
) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        watcher = Stream(client, b, session, token)
        names = [f"{who} {i}" for i in range(6) for who in ("tab A", "tab B")]
        answers = await asyncio.gather(
            *(rename(client, a if name.startswith("tab A") else b, session, token, name) for name in names)
        )
        assert all(answer.status_code == 200 for answer in answers), [x.text for x in answers]
        last = max(answers, key=lambda answer: answer.json()["seq"]).json()
        await watcher.wait_for(lambda r: r["seq"] == last["seq"])
        renames = [r for r in watcher.records if r["type"] == "session.renamed"]
        assert len(renames) == len(names) and renames[-1]["title"] == last["title"]
        for server in (a, b):
            assert (await state(client, server, session, token))["title"] == last["title"]
            assert await listed_title(client, server, session) == last["title"]
        await watcher.aclose()


async def test_the_first_message_names_an_untitled_conversation_once(pair: tuple[ProcessServer, ProcessServer]) -> None:
    a, _ = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        watcher = Stream(client, a, session, token)
        first = "\n   Plan   the trip to Lisbon  \nwith the details on the second line"
        for text in (first, "a second message never renames it"):
            sent = await client.post(f"{a.url}/v1/sessions/{session}/turns", json={"text": text}, headers=auth(token))
            assert sent.status_code == 202, sent.text
            await watcher.wait_for(typed("turn.completed", turn=sent.json()["turn"]))
        renames = [r for r in watcher.records if r["type"] == "session.renamed"]
        assert [(r["title"], r["auto"]) for r in renames] == [("Plan the trip to Lisbon", True)]
        assert (await state(client, a, session, token))["title"] == "Plan the trip to Lisbon"
        assert await listed_title(client, a, session) == "Plan the trip to Lisbon"

        # A person's name is never replaced by the first message's.
        named, token2 = await create(client, a)
        assert (await rename(client, a, named, token2, "Mine")).status_code == 200
        sent = await client.post(f"{a.url}/v1/sessions/{named}/turns", json={"text": "hello"}, headers=auth(token2))
        assert sent.status_code == 202
        named_watcher = Stream(client, a, named, token2)
        await named_watcher.wait_for(typed("turn.completed"))
        assert not [r for r in named_watcher.records if r["type"] == "session.renamed" and r.get("auto")]
        assert (await state(client, a, named, token2))["title"] == "Mine"
        for w in (watcher, named_watcher):
            await w.aclose()


async def test_bad_renames_get_clear_errors_and_change_nothing(pair: tuple[ProcessServer, ProcessServer]) -> None:
    a, _ = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        other, other_token = await create(client, a)
        url = f"{a.url}/v1/sessions/{session}/title"
        cases: list[tuple[Any, int, str]] = [
            ((await rename(client, a, session, token, "   ")), 422, "invalid"),
            ((await rename(client, a, session, token, "x" * 501)), 422, "invalid"),
            ((await rename(client, a, session, token, 7)), 422, "invalid"),
            ((await client.post(url, content=b"{", headers={**auth(token), **JSON})), 400, "malformed_json"),
            ((await client.post(url, json={"title": "t"})), 401, "unauthorized"),
            ((await rename(client, a, session, other_token, "t")), 403, "forbidden"),
            ((await rename(client, a, "s_nobody", token, "t")), 403, "forbidden"),
        ]
        for answer, status, code in cases:
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
        assert (await state(client, a, session, token))["title"] is None
        assert (await state(client, a, session, token))["seq"] == 1
        assert other


async def test_an_idempotent_rename_is_recorded_once(pair: tuple[ProcessServer, ProcessServer]) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        headers = {**auth(token), "Idempotency-Key": "rename-1"}
        url = f"/v1/sessions/{session}/title"
        first = await client.post(a.url + url, json={"title": "Once"}, headers=headers)
        again = await client.post(b.url + url, json={"title": "Once"}, headers=headers)
        assert first.status_code == again.status_code == 200 and first.json() == again.json()
        assert (await state(client, a, session, token))["seq"] == 2


async def test_an_external_producer_renames_too_and_the_admin_list_follows(
    pair: tuple[ProcessServer, ProcessServer],
) -> None:
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as client:
        session, token = await create(client, a)
        events = [{"type": "session.renamed", "title": "From a bridge"}]
        url = f"{b.url}/v1/sessions/{session}/records"
        answer = await client.post(url, json={"events": events}, headers=auth(token))
        assert answer.status_code == 200, answer.text
        for server in (a, b):
            assert await listed_title(client, server, session) == "From a bridge"


def test_auto_title_is_the_first_line_at_most_80_characters() -> None:
    assert auto_title("  \n\n  hello   world \n second") == "hello world"
    assert auto_title(" \n\t\n") is None
    long = auto_title("word " * 40)
    assert long is not None and len(long) == AUTO_LENGTH and long.endswith("…")


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
async def test_a_hub_keeps_the_latest_title_in_its_metadata(url: str, tmp_path: Any) -> None:
    from sessionwire.titles import rename as rename_session

    store = f"sqlite:///{tmp_path / 't.db'}" if url == "sqlite" else url
    async with Hub.open(store) as hub:
        session, _ = await hub.create_session(title="first")
        await asyncio.gather(*(rename_session(hub, session.id, f"name {i}") for i in range(20)))
        final = (await session.state()).title
        assert final is not None and final.startswith("name ")
        assert (await hub.meta(session.id)).title == final
        await rename_session(hub, session.id, "ignored", auto=True)  # it has a title: the auto name does nothing
        assert (await session.state()).title == final == (await hub.meta(session.id)).title
