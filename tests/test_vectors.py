"""The shared test vectors: folding each vector's records gives its expected state.

The same files test the TypeScript fold, so they are plain JSON: wire records in,
``SessionState.to_dict()`` out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sessionwire.events import EVENT_TYPES, Record
from sessionwire.state import SessionState, apply, fold, fold_records

VECTORS = Path(__file__).parent / "vectors"
PATHS = sorted(VECTORS.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _records(vector: dict[str, Any]) -> list[Record]:
    return [Record.from_json(json.dumps(r)) for r in vector["records"]]


def test_there_are_enough_vectors_and_they_cover_every_type() -> None:
    assert len(PATHS) >= 12
    seen = {r["type"] for path in PATHS for r in _load(path)["records"]}
    assert set(EVENT_TYPES) <= seen, set(EVENT_TYPES) - seen
    assert seen - set(EVENT_TYPES), "no vector has a record of an unknown type"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_vector_is_well_formed(path: Path) -> None:
    vector = _load(path)
    assert set(vector) == {"name", "description", "records", "expected"}
    assert vector["name"] == path.stem
    assert vector["description"]
    assert vector["records"]
    for record in vector["records"]:
        assert list(record)[:5] == ["v", "session", "seq", "ts", "type"]
        assert record["v"] == 1
    assert len({r["session"] for r in vector["records"]}) == 1
    # The expected state is in canonical form: it survives the state's own round trip.
    assert SessionState.from_dict(vector["expected"]).to_dict() == vector["expected"]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_fold_record_by_record(path: Path) -> None:
    vector = _load(path)
    state: SessionState | None = None
    for record in _records(vector):
        state = fold(state, record)
    assert state is not None
    assert state.to_dict() == vector["expected"]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_fold_records(path: Path) -> None:
    vector = _load(path)
    assert fold_records(_records(vector)).to_dict() == vector["expected"]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_apply_in_place_and_from_a_snapshot(path: Path) -> None:
    # What the hub does: apply in place, and after an eviction go on from a stored snapshot.
    vector = _load(path)
    records = _records(vector)
    half = len(records) // 2
    state = SessionState()
    for record in records[:half]:
        apply(state, record)
    restored = SessionState.from_json(state.to_json())
    for record in records[half:]:
        apply(restored, record)
    assert restored.to_dict() == vector["expected"]
    assert json.loads(restored.to_json()) == vector["expected"]
