"""JSON Schema of the wire format, generated from the event models."""

from __future__ import annotations

from typing import Any

import msgspec

from .events import PROTOCOL_VERSION, Event

_ENVELOPE: dict[str, Any] = {
    "v": {"const": PROTOCOL_VERSION, "description": "Protocol version."},
    "session": {"type": "string", "description": "The session the record belongs to."},
    "seq": {"type": "integer", "minimum": 1, "description": "Position in the session: 1, 2, 3, ... with no gap."},
    "ts": {"type": "integer", "description": "When it was appended, ms since the epoch."},
}


def json_schema(envelope: bool = True) -> dict[str, Any]:
    """The JSON Schema of a record (``envelope=True``) or of an event without envelope.

    Every event model is a definition in ``$defs``; the top level is their union,
    discriminated by ``type``. With the envelope, each definition also requires
    ``v``, ``session``, ``seq`` and ``ts``.
    """
    schema: dict[str, Any] = msgspec.json.schema(Event)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sessionwire record" if envelope else "sessionwire event"
    schema["x-protocol-version"] = PROTOCOL_VERSION
    if envelope:
        for definition in schema["$defs"].values():
            if "type" in definition.get("properties", {}) and "enum" in definition["properties"]["type"]:
                definition["properties"] = {**_ENVELOPE, **definition["properties"]}
                definition["required"] = ["v", "session", "seq", "ts", *definition.get("required", [])]
    return schema
