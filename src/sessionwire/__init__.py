"""sessionwire: a typed, durable, ordered event channel for every conversation of an AI agent."""

from __future__ import annotations

from .backends import EventLog, Store, open_log, open_store
from .channel import ChannelOptions, Control, Session, Subscription
from .client import Client
from .errors import (
    Conflict,
    CursorAhead,
    CursorExpired,
    Forbidden,
    InvalidEvent,
    LifecycleViolation,
    LogClosed,
    LogUnavailable,
    NotFound,
    ProviderError,
    RuntimeClosed,
    ServerError,
    SessionExists,
    SessionNotFound,
    SessionwireError,
    StoreLocked,
    TokenFileError,
    ToolError,
    TurnRejected,
    Unauthorized,
)
from .events import PROTOCOL_VERSION, Event, OpaqueEvent, Record, UnknownEvent
from .hub import Hub
from .schema import json_schema
from .state import SessionState, fold, fold_records

__all__ = [
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
]
