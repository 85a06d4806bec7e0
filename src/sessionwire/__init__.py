"""sessionwire: a typed, durable, ordered event channel for every conversation of an AI agent."""

from __future__ import annotations

from .channel import ChannelOptions, Control, Session, Subscription
from .client import Client
from .errors import (
    Conflict,
    CursorAhead,
    CursorExpired,
    Forbidden,
    LogClosed,
    NotFound,
    SessionExists,
    SessionNotFound,
    SessionwireError,
    StoreLocked,
    TurnRejected,
    Unauthorized,
)
from .events import PROTOCOL_VERSION, Event, InvalidEvent, Record, UnknownEvent
from .hub import Hub
from .log import EventLog, open_log
from .record import OpaqueEvent
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
    "LogClosed",
    "NotFound",
    "OpaqueEvent",
    "Record",
    "Session",
    "SessionExists",
    "SessionNotFound",
    "SessionState",
    "SessionwireError",
    "StoreLocked",
    "Subscription",
    "TurnRejected",
    "Unauthorized",
    "UnknownEvent",
    "fold",
    "fold_records",
    "json_schema",
    "open_log",
]
