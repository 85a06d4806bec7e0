"""The OpenAPI 3.1 document of the HTTP API (hand-written; request bodies and events from the models)."""

from __future__ import annotations

from typing import Any

import msgspec

from ..events import PROTOCOL_VERSION
from ..schema import json_schema
from .bodies import CreateSession, Rename, ResolveApproval, SendTurn, StartJob

_REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(name=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    words = {
        400: "Malformed JSON, or a cursor that is not an integer in 0..2^63-1 (invalid_cursor).",
        401: "A missing or unknown token.",
        403: "A valid token of another session, or a browser request from a foreign Origin.",
        404: "An unknown session, turn, job or approval.",
        409: "A conflict with the session's state.",
        413: "The body is over the size limit.",
        415: "A POST body that is not Content-Type: application/json.",
        422: "A missing or invalid field (an Idempotency-Key of the wrong length, too).",
        503: "The server runs no agent runtime.",
    }
    return {str(s): _json(_ref("ErrorReply"), words[s]) for s in statuses}


def _obj(required: list[str], **props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required}


_STR = {"type": "string"}
_INT = {"type": "integer"}
_SESSION_PARAM = {"name": "session", "in": "path", "required": True, "schema": _STR}
_TOKEN_QUERY = {
    "name": "token",
    "in": "query",
    "required": False,
    "schema": _STR,
    "description": "The session token, for clients that cannot set headers (EventSource).",
}
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "A retry with the same key returns the first response and starts nothing twice.",
}
_SECRET_IDEMPOTENCY = {
    **_IDEMPOTENCY,
    "schema": {"type": "string", "minLength": 32, "maxLength": 255},
    "description": "A retry with the same key gets the first response (its token too) and starts nothing twice: "
    "the key is the secret that gets the token back, at least 32 characters (a random UUID).",
}
_AUTHED = [401, 403, 404]
_AGUI_RUN = {
    "type": "object",
    "required": ["threadId", "runId", "messages"],
    "properties": {
        "threadId": {"type": "string", "description": "The session id."},
        "runId": _STR,
        "messages": {
            "type": "array",
            "items": {"type": "object", "required": ["role"], "properties": {"id": _STR, "role": _STR}},
        },
        "tools": {"type": "array"},
        "context": {"type": "array"},
        "state": {},
        "forwardedProps": {},
        "resume": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["interruptId", "status"],
                "properties": {"interruptId": _STR, "status": {"enum": ["resolved", "cancelled"]}, "payload": {}},
            },
        },
    },
}
_AISDK_CHAT = {
    "type": "object",
    "required": ["id", "messages"],
    "properties": {
        "id": {"type": "string", "description": "The session id."},
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["role"],
                "properties": {
                    "id": _STR,
                    "role": {"enum": ["user", "assistant", "system"]},
                    "parts": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
        "trigger": {"enum": ["submit-message", "regenerate-message"]},
        "messageId": _STR,
    },
}


def _command(summary: str, body: str | None, ok: int, response: dict[str, Any], *extra: dict[str, Any]) -> Any:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": [_SESSION_PARAM, *extra, _IDEMPOTENCY],
        "responses": {str(ok): _json(response, "Accepted."), **_errors(400, *_AUTHED, 409, 413, 415, 422, 503)},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return {"post": op}


def openapi() -> dict[str, Any]:
    """The OpenAPI document of every route."""
    _, request_schemas = msgspec.json.schema_components(
        [CreateSession, Rename, SendTurn, StartJob, ResolveApproval], ref_template=_REF
    )
    events = json_schema(envelope=False)
    defs = events.pop("$defs")
    rewritten = msgspec.json.decode(msgspec.json.encode(defs).replace(b'"#/$defs/', b'"#/components/schemas/'))
    event_union = msgspec.json.decode(
        msgspec.json.encode(
            {k: v for k, v in events.items() if k in ("anyOf", "oneOf", "discriminator", "$ref")}
        ).replace(b'"#/$defs/', b'"#/components/schemas/')
    )
    schemas: dict[str, Any] = {
        **rewritten,
        **request_schemas,
        "Event": event_union,
        "PublishRecords": _obj(["events"], events={"type": "array", "items": _ref("Event"), "minItems": 1}),
        "ErrorReply": _obj(["error"], error=_obj(["code", "message"], code=_STR, message=_STR)),
    }
    turn_ok = _obj(
        ["session", "turn", "after", "policy"],
        session=_STR,
        turn=_STR,
        after=_INT,
        policy={"enum": ["queue", "reject", "interrupt"]},
    )
    job_ok = _obj(["session", "job", "after"], session=_STR, job=_STR, after=_INT)
    paths: dict[str, Any] = {
        "/v1/sessions": {
            "post": {
                "summary": "Create a session; its first record is session.created.",
                "parameters": [_SECRET_IDEMPOTENCY],
                # Required: even an empty one is JSON ({}), so a cross-site form cannot create sessions.
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CreateSession")}}},
                "responses": {
                    "201": _json(_obj(["session", "token"], session=_STR, token=_STR), "The session and its token."),
                    **_errors(400, 403, 409, 413, 415, 422),
                },
            },
            "get": {
                "summary": "List the sessions (admin token).",
                "responses": {
                    "200": _json(_obj(["sessions"], sessions={"type": "array", "items": {"type": "object"}}), "OK."),
                    **_errors(401, 403),
                },
            },
        },
        "/v1/sessions/{session}": {
            "get": {
                "summary": "The session's folded state and the seq it stands at.",
                "parameters": [_SESSION_PARAM],
                "responses": {
                    "200": _json(
                        _obj(["session", "seq", "state"], session=_STR, seq=_INT, state={"type": "object"}), "OK."
                    ),
                    **_errors(*_AUTHED),
                },
            },
            "delete": {
                "summary": "Delete a session and all its records (admin token).",
                "parameters": [_SESSION_PARAM],
                "responses": {"204": {"description": "Deleted."}, **_errors(*_AUTHED)},
            },
        },
        "/v1/sessions/{session}/title": {
            "post": {
                "summary": "Rename the session: records session.renamed, which every subscriber sees.",
                "parameters": [_SESSION_PARAM, _IDEMPOTENCY],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Rename")}}},
                "responses": {
                    "200": _json(
                        _obj(["session", "title", "seq"], session=_STR, title=_STR, seq=_INT), "The title recorded."
                    ),
                    **_errors(400, *_AUTHED, 409, 413, 415, 422, 503),
                },
            }
        },
        "/v1/sessions/{session}/token": {
            "post": {
                "summary": "Rotate the session's token; the old one stops working.",
                "parameters": [_SESSION_PARAM, _SECRET_IDEMPOTENCY],
                "responses": {
                    "200": _json(_obj(["session", "token"], session=_STR, token=_STR), "The new token."),
                    **_errors(*_AUTHED, 409, 413, 415, 422),
                },
            }
        },
        "/v1/sessions/{session}/records": {
            "post": {
                "summary": "Append a batch of events (wire form, no envelope); one bad event rejects the batch.",
                "parameters": [_SESSION_PARAM, _IDEMPOTENCY],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("PublishRecords")}}},
                "responses": {
                    "200": _json(
                        _obj(["session", "seqs"], session=_STR, seqs={"type": "array", "items": _INT}), "Appended."
                    ),
                    **_errors(400, *_AUTHED, 409, 413, 415, 422),
                },
            }
        },
        "/v1/sessions/{session}/events": {
            "get": {
                "summary": "The session's records as Server-Sent Events, from Last-Event-ID or ?after.",
                "x-streaming": True,
                "parameters": [
                    _SESSION_PARAM,
                    _TOKEN_QUERY,
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                    },
                    {"name": "Last-Event-ID", "in": "header", "required": False, "schema": _STR},
                ],
                "responses": {
                    "200": {
                        "description": "id: <seq> / event: <type> / data: <record>; control frames without id.",
                        "content": {"text/event-stream": {"schema": _STR}},
                    },
                    **_errors(400, *_AUTHED, 409),
                },
            }
        },
        "/v1/sessions/{session}/turns": _command("Send a turn.", "SendTurn", 202, turn_ok),
        "/v1/sessions/{session}/turns/{turn}/cancel": _command(
            "Cancel a turn.",
            None,
            202,
            {"type": "object"},
            {"name": "turn", "in": "path", "required": True, "schema": _STR},
        ),
        "/v1/sessions/{session}/jobs": _command("Start a background job.", "StartJob", 202, job_ok),
        "/v1/sessions/{session}/jobs/{job}/cancel": _command(
            "Cancel a job.",
            None,
            202,
            {"type": "object"},
            {"name": "job", "in": "path", "required": True, "schema": _STR},
        ),
        "/v1/sessions/{session}/approvals/{approval}": _command(
            "Approve or deny.",
            "ResolveApproval",
            200,
            {"type": "object"},
            {"name": "approval", "in": "path", "required": True, "schema": _STR},
        ),
        "/v1/agui": {
            "post": {
                "summary": "AG-UI (HttpAgent, CopilotKit): the events of a run over a turn of the session.",
                "description": (
                    "`threadId` is the session id; the session token is the bearer token. A new user message is "
                    "sent as a turn; `resume` answers the interrupts (approvals) of the previous run and streams "
                    "the rest of their turn. `tools`, `context`, `state` and `forwardedProps` are not used."
                ),
                "x-streaming": True,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _AGUI_RUN}}},
                "responses": {
                    "200": {
                        "description": "SSE: `data: <AG-UI event>` from RUN_STARTED to RUN_FINISHED or RUN_ERROR.",
                        "content": {"text/event-stream": {"schema": _STR}},
                    },
                    **_errors(400, *_AUTHED, 409, 413, 415, 422, 503),
                },
            }
        },
        "/v1/aisdk/chat": {
            "post": {
                "summary": "The Vercel AI SDK's chat (useChat, DefaultChatTransport): a UI message stream of a turn.",
                "description": (
                    "`id` is the session id; the session token is the bearer token. A new user message is sent as a "
                    "turn (its `id` becomes the message's id in the log); one the session has seen streams its turn "
                    "again; approval answers resolve the approvals and stream the rest of their turn; "
                    "`trigger: regenerate-message` sends the last user text again."
                ),
                "x-streaming": True,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _AISDK_CHAT}}},
                "responses": {
                    "200": {
                        "description": "SSE: `data: <chunk>` per UI message chunk, then `data: [DONE]`.",
                        "headers": {"x-vercel-ai-ui-message-stream": {"schema": {"const": "v1"}}},
                        "content": {"text/event-stream": {"schema": _STR}},
                    },
                    **_errors(400, *_AUTHED, 409, 413, 415, 422, 503),
                },
            }
        },
        "/v1/aisdk/chat/{session}/stream": {
            "get": {
                "summary": "The AI SDK's resume: the session's running or queued turn from its beginning, then live.",
                "x-streaming": True,
                "parameters": [_SESSION_PARAM],
                "responses": {
                    "200": {
                        "description": "The UI message stream of the turn, as for POST /v1/aisdk/chat.",
                        "content": {"text/event-stream": {"schema": _STR}},
                    },
                    "204": {"description": "No turn of the session runs or waits."},
                    **_errors(*_AUTHED),
                },
            }
        },
        "/v1/ws": {
            "get": {
                "summary": "WebSocket: several sessions on one socket (ops with replies; see the docs).",
                "description": (
                    'Client ops are `{"op", "id", ...}`, each answered by `{"reply": id, "ok": true, ...}` or '
                    '`{"reply": id, "error": {"code", "message", "status"}}`. `subscribe {session, token, after, '
                    "batch?}` streams a session's records after `after`, one JSON object per text frame (control "
                    'frames carry `session`); with `"batch": true` each batch the server has ready comes as ONE '
                    "text frame holding a JSON array of those objects, in order. `unsubscribe {session}` stops it. "
                    "Also: `send_turn`, `cancel_turn`, `start_job`, `cancel_job`, `resolve_approval`, `publish`, "
                    '`state`. A subscription the server ends gets `{"control": "ended", "session", "error"?}`.'
                ),
                "x-streaming": True,
                "responses": {"101": {"description": "Switching protocols."}},
            }
        },
        "/v1/schema": {
            "get": {"summary": "The records' JSON Schema.", "responses": {"200": _json({"type": "object"}, "OK.")}}
        },
        "/openapi.json": {"get": {"summary": "This document.", "responses": {"200": _json({"type": "object"}, "OK.")}}},
        "/healthz": {
            "get": {
                "summary": "Health: whether the store answers.",
                "responses": {
                    "200": _json(_obj(["ok"], ok={"type": "boolean"}, runtime={"type": "boolean"}), "OK."),
                    "503": _json(
                        _obj(["ok", "reason"], ok={"type": "boolean"}, runtime={"type": "boolean"}, reason=_STR),
                        "The store (Redis, the SQLite file) does not answer; `reason` says why.",
                    ),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics.",
                "responses": {"200": {"description": "OK.", "content": {"text/plain": {"schema": _STR}}}},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "sessionwire", "version": f"v{PROTOCOL_VERSION}"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
    }
