"""Fuzz the HTTP API from its own /openapi.json with schemathesis and its default checks.

No request makes the server fail (no 5xx), and the document is true: every request the schema
allows is accepted, every one it forbids is refused, and every answer matches the documented
status codes, headers and bodies. Every operation gets positive and negative cases, half of them
aimed at a real session with the admin token so they reach the handlers. The streaming routes
(SSE, WebSocket, AG-UI, the AI SDK's chat) are excluded here and tested on their own
(test_server_streams.py, test_agui.py, test_aisdk.py); the body
limit is set above what the fuzzer sends (it is tested on its own, test_server_input.py).
"""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from conftest import free_port
from server_util import running, settings_for

ADMIN = "fuzz-admin"


def test_no_server_errors() -> None:
    config = settings_for(free_port(), admin_token=ADMIN, max_body=16 * 1024 * 1024, policy="reject")
    with running(config) as srv:
        session = httpx.post(srv.url + "/v1/sessions", json={"title": "fuzzed"}).json()["session"]
        streams = r"(/events|/v1/ws|/v1/agui|/v1/aisdk/chat|/stream)$"
        schema = schemathesis.openapi.from_url(srv.url + "/openapi.json").exclude(path_regex=streams)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 14
        for operation in operations:
            fuzz_operation(operation, srv.url, session)


def fuzz_operation(operation: Any, url: str, session: str) -> None:
    """Run positive and negative cases of one operation; fail on any check's failure."""
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases, aim=st.booleans())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case: Any, aim: bool) -> None:
        # DELETE never aims at the shared session: the other operations need it.
        if aim and operation.method != "delete" and "session" in (case.path_parameters or {}):
            case.path_parameters["session"] = session
        case.call_and_validate(
            base_url=url,
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=10,
        )

    fuzz()
