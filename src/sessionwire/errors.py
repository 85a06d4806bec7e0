"""The errors sessionwire raises.

Tree::

    SessionwireError
    ├── SessionNotFound      no session with that id
    ├── SessionExists        a session with that id already exists
    ├── CursorExpired        the log no longer holds the records after that cursor
    ├── CursorAhead          the cursor is beyond the session's last seq
    ├── Unauthorized         a missing or wrong token
    ├── Forbidden            a valid token of another session
    ├── NotFound             an unknown turn, job or approval
    ├── Conflict             the request conflicts with the state (e.g. already resolved)
    │   └── TurnRejected     a turn refused by the ``reject`` policy
    ├── LogClosed            the log (or hub) is closed
    └── StoreLocked          another process has the log's file open

``InvalidEvent`` (a ``ValueError``) lives in :mod:`sessionwire.events`.
"""

from __future__ import annotations


class SessionwireError(Exception):
    """Base of every sessionwire error."""

    code = "error"


class SessionNotFound(SessionwireError, LookupError):
    """No session with that id."""

    code = "session_not_found"

    def __init__(self, session: str) -> None:
        super().__init__(f"session {session!r} not found")
        self.session = session


class SessionExists(SessionwireError):
    """A session with that id already exists."""

    code = "session_exists"

    def __init__(self, session: str) -> None:
        super().__init__(f"session {session!r} already exists")
        self.session = session


class CursorExpired(SessionwireError):
    """The log no longer holds every record after the cursor (retention dropped them)."""

    code = "cursor_expired"

    def __init__(self, session: str, after: int, first: int) -> None:
        super().__init__(f"session {session!r}: records after seq {after} are gone; the log starts at seq {first}")
        self.session, self.after, self.first = session, after, first


class CursorAhead(SessionwireError):
    """The cursor is beyond the session's last seq (the client's store was reset or belongs elsewhere)."""

    code = "cursor_ahead"

    def __init__(self, session: str, after: int, last: int) -> None:
        super().__init__(f"session {session!r}: cursor {after} is ahead of the last seq {last}")
        self.session, self.after, self.last = session, after, last


class Unauthorized(SessionwireError):
    """A missing or wrong token."""

    code = "unauthorized"


class Forbidden(SessionwireError):
    """A valid token that does not grant this session."""

    code = "forbidden"


class NotFound(SessionwireError, LookupError):
    """An unknown turn, job or approval."""

    code = "not_found"


class Conflict(SessionwireError):
    """The request conflicts with the current state (already resolved, already running...)."""

    code = "conflict"


class TurnRejected(Conflict):
    """A turn refused because another is running and the policy is ``reject``."""

    code = "turn_rejected"


class LogClosed(SessionwireError):
    """The log or hub was closed."""

    code = "closed"


class StoreLocked(SessionwireError):
    """Another process has the log's file open (one process per SQLite file)."""

    code = "store_locked"

    def __init__(self, path: str) -> None:
        super().__init__(
            f"the log {path!r} is in use by another process (lock {path + '.lock'!r} is held); "
            "stop it or use another file"
        )
        self.path = path
