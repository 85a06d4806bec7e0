"""JSON Schema of the wire format, generated from the event models."""

from __future__ import annotations

from typing import Any

import msgspec

from .events import PROTOCOL_VERSION, Event


def envelope_schema() -> dict[str, dict[str, Any]]:
    """The envelope's fields, in wire order, as JSON Schema properties (a fresh copy)."""
    return {
        "v": {"const": PROTOCOL_VERSION, "description": "Protocol version."},
        "session": {"type": "string", "minLength": 1, "description": "The session the record belongs to."},
        "seq": {
            "type": "integer",
            "minimum": 1,
            "description": "Position in the session: 1, 2, 3, ... with no gap, assigned by the log.",
        },
        "ts": {"type": "integer", "minimum": 0, "description": "When it was appended, ms since the epoch."},
    }


def json_schema(envelope: bool = True) -> dict[str, Any]:
    """The JSON Schema of a record (``envelope=True``) or of an event without envelope.

    Every event model is a definition in ``$defs``; the top level is their union,
    discriminated by ``type``. With the envelope, each definition also requires
    ``v``, ``session``, ``seq`` and ``ts``. Unknown fields are allowed, as readers
    ignore them.
    """
    schema: dict[str, Any] = msgspec.json.schema(Event)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sessionwire record" if envelope else "sessionwire event"
    schema["description"] = (
        f"One record of the sessionwire wire format, v{PROTOCOL_VERSION}: the envelope and the event's fields, flat."
        if envelope
        else f"One sessionwire event, v{PROTOCOL_VERSION}, without envelope: what a producer publishes."
    )
    schema["x-protocol-version"] = PROTOCOL_VERSION
    for definition in schema["$defs"].values():
        properties = definition.get("properties", {})
        if "enum" not in properties.get("type", {}):
            continue  # a part or a nested model, not an event
        properties["type"] = {**properties["type"], "description": "The event type."}
        if envelope:
            head = envelope_schema()
            definition["properties"] = {**head, **properties}
            definition["required"] = [*head, *definition.get("required", [])]
    return schema
