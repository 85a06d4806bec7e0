"""Checks that an event holds what its model declares, before it is appended.

:func:`to_event` takes an event as a typed model or as a plain dict and returns it
validated, or raises :class:`~sessionwire.errors.InvalidEvent`.

msgspec checks types and constraints when it decodes or converts, not when a
model is built, so ``MessageDelta(message="m" * 201, ...)`` builds fine and
would be stored as a record that no reader can decode. A full round trip
(encode, then decode as the model, as a reader would) costs about 0.4 µs per
event on the publish path; instead, one check function per event model is
generated from its msgspec type info: a class test and a bound or two per field
(about 0.15 µs for a delta). Fields of nested types (parts, usage) use a
conversion, only for themselves. When the fast check is not sure (a subclass, an
enum member) the full round trip decides.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import msgspec.inspect as mi

from ..errors import InvalidEvent
from .models import EVENT_TYPES, PROTOCOL_VERSION, AnyEvent, Event, UnknownEvent, _Event

Check = Callable[[Any], bool]


def _expr(info: mi.Type, hint: str) -> str:
    """A Python expression true when ``v`` surely matches ``info`` (false: the full check decides).

    ``hint`` names the field's type hint, for the fallback.
    """
    while isinstance(info, mi.Metadata):  # a description: no constraint of its own
        info = info.type
    if isinstance(info, mi.AnyType):
        return "True"
    if isinstance(info, mi.NoneType):
        return "v is None"
    if isinstance(info, mi.BoolType):
        return "v.__class__ is bool"
    if isinstance(info, mi.StrType) and info.pattern is None:
        low = info.min_length or 0
        if info.max_length is not None:
            return f"(v.__class__ is str and {low} <= len(v) <= {info.max_length})"
        return f"(v.__class__ is str and len(v) >= {low})" if low else "v.__class__ is str"
    if isinstance(info, mi.IntType) and info.multiple_of is None:
        bounds = ["v.__class__ is int"]
        if info.ge is not None or info.gt is not None:
            bounds.append(f"v >= {info.ge}" if info.ge is not None else f"v > {info.gt}")
        if info.le is not None or info.lt is not None:
            bounds.append(f"v <= {info.le}" if info.le is not None else f"v < {info.lt}")
        return "(" + " and ".join(bounds) + ")"
    if isinstance(info, mi.LiteralType) and all(isinstance(x, str) for x in info.values):
        return f"v in {tuple(info.values)!r}"
    if isinstance(info, mi.UnionType):
        # None first: the cheapest test, and the usual value of an optional field.
        types = sorted(info.types, key=lambda t: not isinstance(t, mi.NoneType))
        return "(" + " or ".join(_expr(t, hint) for t in types) + ")"
    # Nested structs, lists and the like: the full round trip, for this field only.
    return f"_converts(v, {hint})"


def _converts(value: Any, hint: Any) -> bool:
    try:
        msgspec.convert(msgspec.to_builtins(value), hint)
    except (msgspec.ValidationError, TypeError, ValueError):
        return False
    return True


def make_check(cls: type[Any]) -> Check:
    """A function ``check(event) -> bool``, true when ``event`` (a ``cls``) surely decodes back.

    False means "not sure" (e.g. a ``str`` subclass): :func:`check_event` then does the full check.
    """
    hints = typing.get_type_hints(cls, include_extras=True)
    env: dict[str, Any] = {"_converts": _converts}
    lines = ["def check(e):"]
    for i, field in enumerate(mi.type_info(cls).fields):  # type: ignore[attr-defined]
        env[f"_h{i}"] = hints[field.name]
        lines += [f"    v = e.{field.name}", f"    if not {_expr(field.type, f'_h{i}')}:", "        return False"]
    lines.append("    return True")
    exec("\n".join(lines), env)
    return env["check"]  # type: ignore[no-any-return]


def _make_checks() -> Mapping[type[Any], Check]:
    return {cls: make_check(cls) for cls in EVENT_TYPES.values()}


CHECKS: Mapping[type[Any], Check] = _make_checks()
"""The check function of every v1 event model, by model (built once, at import)."""


def check_event(event: Any) -> None:
    """Raise :class:`InvalidEvent` unless the typed ``event`` encodes and decodes back as its model.

    Raises:
        InvalidEvent: a field has the wrong type or breaks its model's constraints.
    """
    cls = type(event)
    check = CHECKS.get(cls)
    if check is not None and check(event):
        return
    try:  # not sure: what a reader would do decides (e.g. an IntEnum member as a part index passes)
        msgspec.json.decode(msgspec.json.encode(event), type=cls)
    except (msgspec.ValidationError, msgspec.EncodeError, TypeError, ValueError) as exc:
        raise InvalidEvent(f"invalid {event.type} event: {exc}") from None


def to_event(value: AnyEvent | dict[str, Any]) -> Event:
    """Validate an event given as a model or as a plain dict in wire form (no envelope).

    Envelope keys (``v``, ``session``, ``seq``, ``ts``) and unknown fields in a dict are ignored.

    Raises:
        InvalidEvent: the type is unknown or a field is missing or malformed.
    """
    check = CHECKS.get(value.__class__)  # a v1 model (the hot path: one lookup, no isinstance)
    if check is not None:
        if not check(value):
            check_event(value)  # not sure, or invalid: the full check decides
        return value  # type: ignore[return-value]
    if not isinstance(value, dict):
        if isinstance(value, _Event):
            check_event(value)  # a subclass of a model
            return value
        if isinstance(value, UnknownEvent):
            raise InvalidEvent(f"unknown event type {value.type!r}: only v{PROTOCOL_VERSION} types can be published")
        raise InvalidEvent(f"an event is a typed event or a dict, not {type(value).__name__}")
    kind = value.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidEvent(f"unknown event type {kind!r}; known types: {', '.join(EVENT_TYPES)}")
    try:
        # Unknown keys, the envelope's among them, are ignored by the conversion.
        return msgspec.convert(value, cls)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        if "got `float`" in str(exc):
            # JSON has one number type: 7.0 is an integer to JSON Schema (and to our schema's readers).
            try:
                return msgspec.convert(_integral(value, mi.type_info(cls)), cls)  # type: ignore[no-any-return]
            except msgspec.ValidationError as again:
                exc = again
        raise InvalidEvent(f"invalid {kind} event: {exc}") from None


def _integral(value: Any, info: mi.Type) -> Any:
    """``value`` with each float the type ``info`` wants as an int made one, if it has no fraction.

    Only where the model says int (nested models too): free-form values (a tool's result) stay as sent.
    """
    while isinstance(info, mi.Metadata):
        info = info.type
    if isinstance(info, mi.UnionType):
        for member in info.types:
            converted = _integral(value, member)
            if converted is not value:
                return converted
        return value
    if isinstance(info, mi.IntType):
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        if info.tag_field is not None and value.get(info.tag_field) != info.tag:
            return value  # another member of a tagged union
        fields = {f.encode_name: f.type for f in info.fields}
        out = {k: _integral(v, fields[k]) if k in fields else v for k, v in value.items()}
        return value if all(out[k] is v for k, v in value.items()) else out
    if isinstance(info, mi.ListType) and isinstance(value, list):
        items = [_integral(v, info.item_type) for v in value]
        return value if all(a is b for a, b in zip(items, value)) else items
    return value
