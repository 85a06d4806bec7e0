"""The ``sessionwire`` command line: serve, new, send, tail, approve, deny, cancel, replay, schema, bench."""

from __future__ import annotations

from .common import DEFAULT_URL
from .main import main
from .tail import tail_session

__all__ = ["DEFAULT_URL", "main", "tail_session"]
