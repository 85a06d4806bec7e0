"""``/v1/ws``: a subscription the server ends says so with an ``ended`` frame; the others go on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from websockets.asyncio.client import connect

from conftest import free_port
from server_util import auth, running, settings_for


async def test_a_subscription_ended_by_the_server_says_so_and_the_others_go_on() -> None:
    with running(settings_for(free_port(), token_delay_ms=2.0, admin_token="admin-secret")) as server:
        ws_url = server.url.replace("http", "ws") + "/v1/ws"
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            gone, gone_token = (await http.post("/v1/sessions", json={})).json().values()
            kept, kept_token = (await http.post("/v1/sessions", json={})).json().values()
            async with connect(ws_url) as ws:

                async def until(done: Any) -> list[dict[str, Any]]:
                    out: list[dict[str, Any]] = []
                    async with asyncio.timeout(20):
                        while not out or not done(out[-1]):
                            out.append(json.loads(await ws.recv()))
                    return out

                await ws.send(json.dumps({"op": "subscribe", "id": 1, "session": gone, "token": gone_token}))
                await ws.send(json.dumps({"op": "subscribe", "id": 2, "session": kept, "token": kept_token}))
                await until(lambda m: m.get("reply") == 2)
                deleted = await http.delete(f"/v1/sessions/{gone}", headers=auth("admin-secret"))
                assert deleted.status_code == 204
                frames = await until(lambda m: m.get("control") == "ended")
                assert frames[-1] == {"control": "ended", "session": gone, "reason": "session_deleted"}
                # The socket and the other subscription live on; the ended one may be subscribed again.
                await ws.send(json.dumps({"op": "send_turn", "id": 3, "session": kept, "text": "/long 20"}))
                frames = await until(lambda m: m.get("type") == "turn.completed")
                assert {f["session"] for f in frames if "seq" in f} == {kept}
                assert all(f.get("control") != "ended" for f in frames)
                await ws.send(json.dumps({"op": "subscribe", "id": 4, "session": gone}))
                answer = (await until(lambda m: m.get("reply") == 4))[-1]
                assert answer["error"]["status"] in (401, 404), answer  # its token went with it
                await ws.send(json.dumps({"op": "unsubscribe", "id": 5, "session": kept}))
                assert (await until(lambda m: m.get("reply") == 5))[-1]["ok"]
