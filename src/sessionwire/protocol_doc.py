"""Generate ``docs/protocol.md`` from the event models and their JSON Schema.

Run ``python -m sessionwire.protocol_doc > docs/protocol.md`` after changing a model;
``tests/test_schema.py`` fails while the committed file differs from the output.
"""

from __future__ import annotations

import json
import sys
from typing import Any, get_args

import msgspec

from .events import EVENT_TYPES, PROTOCOL_VERSION, TERMINAL_TYPES, MessageDelta
from .record import Record
from .schema import json_schema
from .state import SessionState
from .subscription import ControlName

COMMAND = "python -m sessionwire.protocol_doc > docs/protocol.md"
"""The command that regenerates the document."""

_FAMILIES = [
    ("Session", "session."),
    ("Turns", "turn."),
    ("Messages", "message."),
    ("Tools", "tool."),
    ("Jobs", "job."),
    ("Approvals", "approval."),
    ("Status and errors", ""),
]

_SCOPES = [
    ("turn", "A turn: the agent answering one user message. Ends with exactly one terminal event."),
    ("job", "A background job. It outlives the request (and the turn) that started it; ends with one terminal."),
    ("message", "A message of a turn or a job; its body is a list of parts."),
    ("part", "The index (0, 1, 2, ...) of a part in its message: a text, reasoning or tool part."),
    ("call", "A tool call; it is one tool part of a message."),
    ("approval", "A request for a person to approve or deny something (usually a tool call)."),
]

_CONTROLS = {
    "snapshot": "`at` (the seq the state stands at) and `state` (the folded state, as in the test vectors). "
    "Sent when the log no longer holds the records after the cursor: continue from `at`.",
    "lagging": "The subscriber fell behind the live path and is catching up from the log; nothing is lost.",
    "caught_up": "The subscriber is back on the live path.",
    "heartbeat": "Keeps an idle connection open. On SSE it is a comment line.",
    "ended": "The server ended this subscription, the last frame of it. With `reason` `session_deleted` the "
    "session was deleted (through any server process): it is gone, do not subscribe again. On the WebSocket it "
    "also comes when the session closed here or reading it failed (then with `error`: `code`, `message`, "
    "`status`): subscribe again from the last seq you applied. SSE sends it only for a deleted session, and "
    "otherwise just ends the response.",
}

_FOLD_RULES = """\
`fold(state, record) -> state` is pure: it never reads a clock (expiry, interruption and cancellation are
records) and never changes its input. Python (`sessionwire.fold`) and TypeScript implement the same rules,
and the shared test vectors prove they agree: each `tests/vectors/*.json` is
`{"name", "description", "records": [wire records], "expected": <the state after folding them>}`.

1. A record whose `seq` is not greater than `state.seq` is ignored: replays and duplicates are harmless.
   Any other record sets `seq`, `session` and `updated_at` (its `ts`), whatever its type; a record of an
   unknown type, or an opaque one, does nothing else. (Folding a record of another session is an error.)
2. `session.created` sets `title` and `created_at` (its `ts`). `session.renamed` sets `title`; one with
   `auto: true` (the server's name from the first message) only while `title` is null.
3. A turn or job is created, `running`, by the first of its own records (`turn.*`, `job.*`) or of the
   messages that belong to it (rule 5); other records that name it (status, error, approval, the `turn`
   of `job.started`) don't create it. `turn.started` sets `owner`; `job.started` sets `title`, `turn` and
   `owner`; `job.progress` sets `progress` (all three fields).
4. The first terminal event of a turn or job wins: it sets the status (and `model`/`usage`,
   `summary`, `error`/`code` or `reason`); later terminal, start and progress records for it are ignored.
   A terminal closes every message of its turn or job that is still `streaming` with its own status
   (`completed`, `failed`, `cancelled`, `interrupted`) and clears the status line if it belongs to that
   turn or job (a line belongs to its `job` if it has one, else to its `turn`; a line with neither stays).
5. A message is created by the first record that names it, `streaming`, with role `assistant`; it is
   appended to `message_order` and to the `messages` of its job if it has one, else of its turn. A message
   that first appears after its job or turn ended starts with that terminal status.
   `message.started` sets the role.
6. `message.delta` appends `text` to part `part` (missing parts before it are filled with empty text
   parts; a part of another kind at that index is replaced by an empty one of the delta's kind), only
   while the message is `streaming`.
7. `message.completed` is authoritative: it sets the role, status `completed` and replaces the parts
   with its own, whatever the deltas built, also after a terminal closed the message.
8. `tool.started` and `tool.args.delta` only apply while the message is `streaming`: they make part
   `part` a tool part for `call` (a fresh one, with empty `args`, if it was another part or another call);
   `tool.started` sets `name`, `tool.args.delta` appends to `args` while the part is `streaming`.
9. `tool.called` (`name`, full `args`, status `called`) and `tool.result` (`status`, `result`, `error`)
   update the tool part of `call` in the message (the one at `part`, else the first with that call id),
   also once the message is final. If there is none, they create it at `part` while the message is
   `streaming`, and are ignored otherwise.
10. `approval.requested` creates the approval `pending`, or updates the details (`action`, `call`,
    `expires_at`, `turn`, `job`) of one that exists without changing its status.
    `approval.resolved` sets `status` to its decision and `by`, only while the approval is `pending`
    (creating it if unknown): the first resolution wins.
11. `status` replaces the status line; `error` appends an entry (with its record's `seq`) to `errors`.
"""


def render() -> str:
    """The whole of ``docs/protocol.md``."""
    schema = json_schema()
    defs: dict[str, Any] = schema["$defs"]
    by_type = {cls.__struct_config__.tag: cls.__name__ for cls in EVENT_TYPES.values()}
    example = Record("s_7f3a", 42, 1732400000123, MessageDelta(turn="t_2", message="m_9", part=0, text="Hel")).to_json()
    out = [
        f"# The sessionwire protocol, v{PROTOCOL_VERSION}",
        "",
        f"<!-- Generated from the event models by `{COMMAND}`; do not edit by hand. -->",
        "",
        "An agent runtime publishes typed *events* into the channel of a session; the session's log appends",
        "each one as a *record*: the envelope and the event's fields, flat, in one JSON object. The same JSON",
        "goes over SSE, WebSocket, the log and the export. The JSON Schema of a record is",
        "`sessionwire.json_schema()`.",
        "",
        "```json",
        example,
        "```",
        "",
        "## Envelope",
        "",
        *_table(defs[by_type["status"]], only=("v", "session", "seq", "ts")),
        "| `type` | string | yes | The event type, e.g. `message.delta`; the event's own fields follow it. |",
        "",
        "## Scope ids",
        "",
        "Every event carries the scope ids that apply, always under these names:",
        "",
        "| field | scope |",
        "|---|---|",
        *[f"| `{name}` | {text} |" for name, text in _SCOPES],
        "",
        "## Reading records",
        "",
        "- Readers ignore fields they do not know.",
        "- A record of a type a reader does not know is kept and passed on whole, never an error.",
        "- A record of a known type whose fields do not validate (written by a newer or a buggy producer) is",
        "  kept whole too, as an opaque record (`OpaqueEvent` in Python): replay and subscriptions go on, and",
        "  the fold skips it. Producers cannot write one: a bad event is refused at publish.",
        "- Within a session, `seq` is 1, 2, 3, ... with no gap; every consumer sees records in `seq` order.",
        "- Every turn and job ends with exactly one terminal event: "
        + ", ".join(f"`{t}`" for t in sorted(TERMINAL_TYPES))
        + ".",
        "- `message.completed` carries the message's full body and replaces what its deltas built.",
        "",
        "## Event types",
        "",
    ]
    for title, prefix in _FAMILIES:
        names = [t for t in EVENT_TYPES if t.startswith(prefix) and (prefix or "." not in t)]
        out += [f"- {title}: " + ", ".join(f"[`{t}`](#{_anchor(t)})" for t in names)]
    out.append("")
    for name in EVENT_TYPES:
        definition = defs[by_type[name]]
        terminal = " Terminal." if name in TERMINAL_TYPES and "Terminal" not in definition["description"] else ""
        out += [f"### `{name}`", "", definition["description"] + terminal, ""]
        out += [*_table(definition, skip=("v", "session", "seq", "ts", "type")), ""]
    out += ["## Parts", "", "The parts of a message, in `message.completed`, tagged by `kind`.", ""]
    for part in ("TextPart", "ReasoningPart", "ToolPart"):
        definition = defs[part]
        kind = definition["properties"]["kind"]["enum"][0]
        out += [f"### `{kind}`", "", definition["description"], ""]
        out += [*_table(definition, skip=("kind",)), ""]
    out += ["### Usage", "", defs["Usage"]["description"], "", *_table(defs["Usage"]), ""]
    out += _controls()
    out += ["## The fold", "", _FOLD_RULES.rstrip(), "", *_state(), ""]
    return "\n".join(out)


def _controls() -> list[str]:
    names = list(get_args(ControlName))
    missing = set(names) ^ set(_CONTROLS)
    if missing:
        raise RuntimeError(f"control frames {sorted(missing)} are not documented in protocol_doc._CONTROLS")
    return [
        "## Control frames",
        "",
        "Control frames are not records: they have a `control` name and the `session`, no `seq` of their own,",
        "and are never logged.",
        "",
        "| control | meaning |",
        "|---|---|",
        *[f"| `{name}` | {_CONTROLS[name]} |" for name in names],
        "",
        "On SSE a record is `id: <seq>`, `event: <type>`, `data: <record json>`; a control frame is",
        "`event: <control>`, `data: <json>`, with no `id`. Resume with the `Last-Event-ID` header or `?after=<seq>`.",
        "",
        "On the WebSocket (`/v1/ws`, `subscribe {session, token, after}`) a record or a control frame is its JSON",
        'in one text frame. A subscription made with `"batch": true` gets instead each batch the server has',
        "ready as one text frame: a JSON array of the same objects, in order (`[record, record, control, ...]`,",
        'at most 256 KiB unless one item is larger); its reply says `"batch": true`. Replies are never arrays.',
        "",
    ]


def _state() -> list[str]:
    schema = msgspec.json.schema(SessionState)
    defs: dict[str, Any] = schema["$defs"]
    out = [
        "### The state",
        "",
        "What the fold builds, as `SessionState.to_dict()` gives it; every field is always present.",
        "",
    ]
    order = ["SessionState"] + [name for name in defs if name != "SessionState"]
    for name in order:
        definition = defs[name]
        out += [f"- `{name}`: {definition.get('description', '').replace('``', '`')}"]
        for field, prop in definition["properties"].items():
            out.append(f"  - `{field}`: {_type(prop, links=False)}")
    return out


def _table(definition: dict[str, Any], only: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> list[str]:
    required = set(definition.get("required", ()))
    rows = ["| field | type | required | meaning |", "|---|---|---|---|"]
    for name, prop in definition["properties"].items():
        if name in skip or (only and name not in only):
            continue
        if "description" not in prop:
            raise RuntimeError(f"{definition['title']}.{name} has no description: add one to its model")
        need = "yes" if name in required else f"no, default `{json.dumps(prop.get('default'))}`"
        rows.append(f"| `{name}` | {_type(prop)} | {need} | {prop['description']} |")
    return rows


_LINKS = {"TextPart": "text", "ReasoningPart": "reasoning", "ToolPart": "tool", "Usage": "usage"}


def _type(prop: dict[str, Any], links: bool = True) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{_LINKS[name]})" if links and name in _LINKS else f"`{name}`"
    if "anyOf" in prop:
        return " \\| ".join(_type(p, links) for p in prop["anyOf"])
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type(prop['items'], links)}"
    if kind == "object":
        return f"object of {_type(prop.get('additionalProperties', {}), links)} by id"
    if kind == "string" and "maxLength" in prop:
        return f"string ({prop.get('minLength', 0)}..{prop['maxLength']} chars)"
    if kind == "string" and "minLength" in prop:
        return "string (not empty)"
    if kind == "integer" and "minimum" in prop:
        top = f"..{prop['maximum']}" if "maximum" in prop else " or more"
        return f"integer, {prop['minimum']}{top}"
    return str(kind) if kind else "any JSON"


def _anchor(title: str) -> str:
    return "".join(c for c in title.lower() if c.isalnum() or c in "-_ ").replace(" ", "-")


def main() -> None:
    """Print the document."""
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
