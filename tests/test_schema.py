"""The JSON Schema of the records, and docs/protocol.md, both generated from the event models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from sessionwire import json_schema, protocol_doc
from sessionwire.events import EVENT_TYPES, InvalidEvent, Record
from sessionwire.record import OpaqueEvent

ROOT = Path(__file__).parent.parent
VECTORS = sorted((Path(__file__).parent / "vectors").glob("*.json"))


def _vector_records() -> list[dict[str, Any]]:
    return [r for path in VECTORS for r in json.loads(path.read_text(encoding="utf-8"))["records"]]


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_schema_has_every_type() -> None:
    for envelope in (True, False):
        schema = json_schema(envelope=envelope)
        assert schema["x-protocol-version"] == 1
        assert set(schema["discriminator"]["mapping"]) == set(EVENT_TYPES)
        assert len(schema["anyOf"]) == len(EVENT_TYPES)
        for name, ref in schema["discriminator"]["mapping"].items():
            definition = schema["$defs"][ref.rsplit("/", 1)[1]]
            assert definition["properties"]["type"]["enum"] == [name]
            assert definition["description"]
            assert all("description" in prop for prop in definition["properties"].values()), name
            required = definition["required"]
            assert ("v" in required and "seq" in required) == envelope


def test_schema_validates_every_vector_record(validator: jsonschema.protocols.Validator) -> None:
    records = _vector_records()
    known = [r for r in records if r["type"] in EVENT_TYPES]
    assert {r["type"] for r in known} == set(EVENT_TYPES)
    for record in known:
        errors = list(validator.iter_errors(record))
        assert not errors, (record, [e.message for e in errors])


def test_schema_and_decoder_agree_on_the_vectors(validator: jsonschema.protocols.Validator) -> None:
    for record in _vector_records():
        if record["type"] in EVENT_TYPES:
            Record.from_json(json.dumps(record))  # does not raise
        else:
            assert not validator.is_valid(record)  # the v1 schema only knows v1 types


def test_event_schema_validates_events_without_envelope() -> None:
    schema = json_schema(envelope=False)
    validator = jsonschema.validators.validator_for(schema)(schema)
    for record in _vector_records():
        if record["type"] in EVENT_TYPES:
            event = {k: v for k, v in record.items() if k not in ("v", "session", "seq", "ts")}
            assert validator.is_valid(event), event


GOOD = {"v": 1, "session": "s", "seq": 1, "ts": 0, "type": "message.delta", "message": "m", "part": 0, "text": "x"}


@pytest.mark.parametrize(
    ("change", "decodes"),
    [
        ({"seq": 0}, False),
        ({"ts": -1}, False),
        ({"session": ""}, False),
        ({"session": 5}, False),
        ({"message": ""}, False),
        ({"part": -1}, False),
        ({"part": "0"}, False),
        ({"kind": "image"}, False),
        ({"text": None}, False),
        ({"turn": ""}, False),
        # Readers are lenient where the v1 schema is strict: a later version, an unknown type.
        ({"v": 2}, True),
        ({"type": "message.deltas"}, True),
    ],
    ids=lambda c: ",".join(f"{k}={v!r}" for k, v in c.items()) if isinstance(c, dict) else str(c),
)
def test_schema_rejects_malformed_records(
    validator: jsonschema.protocols.Validator, change: dict[str, Any], decodes: bool
) -> None:
    assert validator.is_valid(GOOD)
    bad = {**GOOD, **change}
    assert not validator.is_valid(bad)
    if decodes:
        Record.from_json(json.dumps(bad))
    elif set(change) <= {"v", "session", "seq", "ts", "type"}:
        with pytest.raises(InvalidEvent):
            Record.from_json(json.dumps(bad))
    else:
        # A good envelope around bad event fields: kept whole, opaque, so a session stays readable.
        assert isinstance(Record.from_json(json.dumps(bad)).event, OpaqueEvent)


def test_schema_allows_unknown_fields(validator: jsonschema.protocols.Validator) -> None:
    assert validator.is_valid({**GOOD, "x_future": [1, 2]})


def test_missing_required_fields_are_rejected(validator: jsonschema.protocols.Validator) -> None:
    for name in ("v", "session", "seq", "ts", "type", "message", "part", "text"):
        assert not validator.is_valid({k: v for k, v in GOOD.items() if k != name}), name


def test_protocol_doc_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert committed == protocol_doc.render(), (
        f"docs/protocol.md differs from the event models; regenerate it with `{protocol_doc.COMMAND}`"
    )


def test_protocol_doc_covers_every_type_and_control_frame() -> None:
    text = protocol_doc.render()
    for name in EVENT_TYPES:
        assert f"### `{name}`" in text
    for control in ("snapshot", "lagging", "caught_up", "heartbeat"):
        assert f"| `{control}` |" in text
    for scope in ("turn", "job", "message", "part", "call", "approval"):
        assert f"| `{scope}` |" in text
