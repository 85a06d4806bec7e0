"""The public surface: ``sessionwire.__all__`` is pinned (add a name here when you export one)."""

from __future__ import annotations

import inspect
import re
import types

import sessionwire
from sessionwire import errors

EXPORTED = {
    "PROTOCOL_VERSION",
    "ChannelOptions",
    "Client",
    "Conflict",
    "Control",
    "CursorAhead",
    "CursorExpired",
    "Event",
    "EventLog",
    "Forbidden",
    "Hub",
    "InvalidEvent",
    "LifecycleViolation",
    "LogClosed",
    "LogUnavailable",
    "NotFound",
    "OpaqueEvent",
    "ProviderError",
    "Record",
    "RuntimeClosed",
    "ServerError",
    "Session",
    "SessionExists",
    "SessionNotFound",
    "SessionState",
    "SessionwireError",
    "Store",
    "StoreLocked",
    "Subscription",
    "TokenFileError",
    "ToolError",
    "TurnRejected",
    "Unauthorized",
    "UnknownEvent",
    "fold",
    "fold_records",
    "json_schema",
    "open_log",
    "open_store",
}


def test_all_is_pinned() -> None:
    assert len(sessionwire.__all__) == len(set(sessionwire.__all__)), "a name is exported twice"
    assert set(sessionwire.__all__) == EXPORTED


def test_all_imports_are_exported() -> None:
    # Every public name of the package namespace is in __all__, and every name in __all__ exists.
    public = {
        name
        for name, value in vars(sessionwire).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert public == set(sessionwire.__all__)
    for name in sessionwire.__all__:
        assert getattr(sessionwire, name) is not None


def test_pinned_call_shapes() -> None:
    # The names outside code relies on (issue 2) keep their shape.
    assert sessionwire.PROTOCOL_VERSION == 1
    assert inspect.ismethod(sessionwire.Hub.open)
    assert list(inspect.signature(sessionwire.fold).parameters) == ["state", "record"]
    assert list(inspect.signature(sessionwire.fold_records).parameters) == ["records", "state"]
    assert callable(sessionwire.Record.to_json) and inspect.ismethod(sessionwire.Record.from_json)
    assert issubclass(sessionwire.InvalidEvent, ValueError)
    for name in ("publish", "subscribe", "state"):
        assert callable(getattr(sessionwire.Session, name)), name


def test_every_exported_error_is_in_the_tree() -> None:
    # One tree: every exported exception is a SessionwireError with a snake_case code, drawn in the docstring.
    tree = (errors.__doc__ or "").split("Tree::")[1].split("\n\n")[1]
    exported = [v for v in vars(sessionwire).values() if isinstance(v, type) and issubclass(v, BaseException)]
    assert len(exported) == 20
    for error in exported:
        assert issubclass(error, sessionwire.SessionwireError), error
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", error.code), error
        assert re.search(rf"(^ *|── ){error.__name__}( |$)", tree, re.M), error
