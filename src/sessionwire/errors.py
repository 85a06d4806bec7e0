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
    │   ├── TurnRejected     a turn refused by the ``reject`` policy
    │   ├── Fenced           an append of work whose owner was taken over (its lease lapsed)
    │   └── LifecycleViolation  an append that breaks a turn's, job's or approval's lifecycle
    ├── LogClosed            the log (or hub) is closed
    │   ├── LogUnavailable   the log's server was unreachable for longer than its retry window
    │   └── RuntimeClosed    the runtime is not running: not started yet, or closed
    ├── LogBehind            the log has fewer records of a session than were delivered (it lost writes)
    ├── StoreLocked          another process has the log's file open
    ├── InvalidEvent         an event does not match the protocol (also a ``ValueError``)
    ├── ProviderError        the provider could not answer a turn or job
    ├── ToolError            a tool could not do what it was asked
    ├── ServerError          the server answered with an error that has no more specific class
    └── TokenFileError       the CLI's token file can't be read or written (also a ``RuntimeError``)

Every error has a stable snake_case ``code`` (``ProviderError`` and ``ServerError``
may carry a more specific one).
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


class Fenced(Conflict):
    """An append refused: it was made for work whose runtime lost its lease and was taken over.

    Another process ended that work (and wrote its terminal) while the runtime stalled; the
    runtime stops it without writing anything more.
    """

    code = "fenced"


class LifecycleViolation(Conflict):
    """An append refused by the log: it breaks the lifecycle of a turn, a job or an approval.

    ``code`` names the rule: ``already_started`` (opened twice), ``never_started`` (a terminal,
    or a resolution, for one that never opened), ``already_ended`` (a second terminal or
    resolution), ``after_end`` (a record for one that has ended), ``owned_by_runtime`` (an
    external producer naming the runtime's work or approvals). Nothing of the append is written.
    """

    RULES = ("already_started", "never_started", "already_ended", "after_end", "owned_by_runtime")
    """Every rule's code."""

    def __init__(self, code: str, kind: str, subject: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.kind = kind
        """``turn``, ``job`` or ``approval`` (empty when a client got it from a server)."""
        self.subject = subject
        """The turn's, job's or approval's id (empty when a client got it from a server)."""


class LogClosed(SessionwireError):
    """The log or hub was closed."""

    code = "closed"


class LogUnavailable(LogClosed):
    """The log's server could not be reached for longer than the log's retry window.

    A :class:`LogClosed` for a while (HTTP 503): calls work again once the server is back.
    """

    code = "log_unavailable"


class RuntimeClosed(LogClosed):
    """The runtime is not running: not started yet, or closed. A :class:`LogClosed`, so handlers map it alike."""

    code = "runtime_closed"


class LogBehind(SessionwireError):
    """An append refused: the log holds fewer records of the session than this process delivered.

    The store lost its last writes (a Redis restart with ``appendfsync everysec``). Appending
    now would give seqs that subscribers saw to other records; the channel restores what it
    holds first (see :meth:`sessionwire.Hub.rewound`).
    """

    code = "log_behind"

    def __init__(self, session: str, last: int, known: int) -> None:
        super().__init__(f"the log has session {session!r} up to seq {last}, but seq {known} was delivered")
        self.session = session
        self.last = last
        self.known = known


class StoreLocked(SessionwireError):
    """Another process has the log's file open (one process per SQLite file)."""

    code = "store_locked"

    def __init__(self, path: str) -> None:
        super().__init__(
            f"the log {path!r} is in use by another process (lock {path + '.lock'!r} is held); "
            "stop it or use another file"
        )
        self.path = path


class InvalidEvent(SessionwireError, ValueError):
    """An event did not match the protocol (wrong type, missing or bad field)."""

    code = "invalid_event"


class ProviderError(SessionwireError):
    """The provider could not answer; the message ends the turn or job as ``failed``."""

    code = "provider_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ToolError(SessionwireError):
    """A tool could not do what it was asked; the message becomes the call's error result."""

    code = "tool_error"


class ServerError(SessionwireError):
    """The server answered with an error that has no more specific class."""

    code = "server_error"

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class TokenFileError(SessionwireError, RuntimeError):
    """The token file can't be read or written (its path and the reason are in the message)."""

    code = "token_file_error"
