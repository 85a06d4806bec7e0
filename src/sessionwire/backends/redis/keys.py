"""The Redis keys of one store (prefix ``sw``), named in one place.

``<p>:x:<session>`` a session's stream (entry id ``<seq>-0``, field ``d``); ``<p>:h:<session>``
its hash (``last``, ``first``, ``snap_at``, ``snap``, ``meta``); ``<p>:w:<session>`` the lifecycle
state of each turn, job and approval it names; ``<p>:deleted:<session>`` a deleted
session's tombstone (for a day, or until it is created again); ``<p>:sessions`` the ids with
metadata; ``<p>:owners`` and ``<p>:owned:<owner>`` which runtime owners started work in which
sessions (written by the append script); ``<p>:lease:<owner>`` an owner's lease;
``<p>:reaping:<owner>`` the claim on a dead owner's clean-up; ``<p>:generation:<owner>`` and
``<p>:fenced:<owner>`` its lease's generation and the generation it was fenced at; ``<p>:line:<session>`` a session's
turn line; ``<p>:batch:<client>`` a log
client's last batch, for retries; ``<p>:reply:<key>`` the first reply to a request key;
``<p>:wake:<reader>`` a feed reader's wake-up stream;
``<p>:<db>:commands`` and ``<p>:<db>:answers:<bus>`` the command bus's pub/sub channels (pub/sub
ignores the database number: the channels name it, so stores on other databases never meet).
"""

from __future__ import annotations


class Keys:
    """Key builders for one prefix."""

    def __init__(self, prefix: str = "sw", db: int = 0) -> None:
        self.prefix = prefix
        self.db = db
        self.sessions = f"{prefix}:sessions"
        self.owners = f"{prefix}:owners"
        self.commands = f"{prefix}:{db}:commands"
        self.stream_prefix = f"{prefix}:x:".encode()

    def stream(self, session: str) -> str:
        """The stream of a session's records."""
        return f"{self.prefix}:x:{session}"

    def hash(self, session: str) -> str:
        """The hash of a session's counter, bounds, snapshot and metadata."""
        return f"{self.prefix}:h:{session}"

    def lifecycle(self, session: str) -> str:
        """A session's lifecycle states: subject (``turn:<id>``...) -> state (see ..lifecycle)."""
        return f"{self.prefix}:w:{session}"

    def deleted(self, session: str) -> str:
        """A deleted session's tombstone: appends to it are refused while it lasts."""
        return f"{self.prefix}:deleted:{session}"

    def generation(self, owner: str) -> str:
        """An owner's lease generation (a counter, bumped at each take)."""
        return f"{self.prefix}:generation:{owner}"

    def fenced(self, owner: str) -> str:
        """An owner's fenced generation: the log refuses its appends up to it."""
        return f"{self.prefix}:fenced:{owner}"

    def line(self, session: str) -> str:
        """A session's turn line: ``<turn>\t<owner>`` entries in admission order (a list)."""
        return f"{self.prefix}:line:{session}"

    def reply(self, key: str) -> str:
        """The first reply to a request key (Idempotency-Key), with a TTL."""
        return f"{self.prefix}:reply:{key}"

    def owned(self, owner: str) -> str:
        """The set of sessions where ``owner`` started work."""
        return f"{self.prefix}:owned:{owner}"

    def lease(self, owner: str) -> str:
        """An owner's lease (a key with a TTL)."""
        return f"{self.prefix}:lease:{owner}"

    def reaping(self, owner: str) -> str:
        """The claim on a dead owner's clean-up."""
        return f"{self.prefix}:reaping:{owner}"

    def batch(self, client: str) -> str:
        """A log client's last batch and its answer."""
        return f"{self.prefix}:batch:{client}"

    def wake(self, reader: str) -> str:
        """A feed reader's wake-up stream."""
        return f"{self.prefix}:wake:{reader}"

    def answers(self, bus: str) -> str:
        """The pub/sub channel of the answers to a bus's commands."""
        return f"{self.prefix}:{self.db}:answers:{bus}"
