"""The lifecycle rules every log enforces where it assigns seqs.

A turn, a job and an approval each have a lifecycle: opened once (``turn.started``,
``job.started``, ``approval.requested``), closed at most once and only once opened
(a terminal, ``approval.resolved``), and nothing names it after it closed. Records
that break it are refused, whoever appends them. The records carry the rule
(:func:`sessionwire.events.lifecycle_steps`), so a log needs no event model.

A log keeps one state per subject of a session (``turn:<id>``, ``job:<id>``,
``approval:<id>``): ``o`` open, ``c`` closed, upper case when the runtime (an
in-process producer) opened it. External producers (``POST /records``, WebSocket
``publish``) may not name a subject in upper case: ``owned_by_runtime``.

An append is checked as a whole: :func:`plan` folds its records' steps into, per
subject, the outcome for each state the subject may be in (unseen, open, closed),
computed here, so the check where the state lives (memory, a SQLite transaction,
the Redis append script) is one look-up per subject and one letter to read.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ..errors import LifecycleViolation
from ..events import LIFECYCLE_FIELDS, AnyEvent, Event, event_owner, lifecycle_steps

__all__ = ["OPEN", "Plan", "from_snapshot", "plan", "replay", "restored", "settle", "violation"]

OPEN = "oO"
"""The states of an open subject (lower case: an external producer opened it)."""

_NAMES = "uoA"  # the outcomes of records that only name a subject
_REFUSE = frozenset("cC")  # the states that refuse them
_REFUSE_EXTERNAL = frozenset("cCO")  # ... when an external producer appends

_RULES = {
    "S": "already_started",
    "N": "never_started",
    "E": "already_ended",
    "A": "after_end",
}


class Plan:
    """What an append does to the lifecycle of the subjects it names.

    Attributes:
        subjects: Each subject named, ``<kind>:<id>``, in order of first mention.
        outcomes: Per subject, three letters: its outcome when it is unseen, open, closed.
            ``u``/``o``/``c``: the state it is left in; ``S``/``N``/``E``/``A``: the rule it breaks.
        external: Whether an external producer appends (it may not name the runtime's subjects).
    """

    __slots__ = ("external", "naming", "outcomes", "subjects")

    def __init__(self, subjects: list[str], outcomes: list[str], external: bool) -> None:
        self.subjects = subjects
        self.outcomes = outcomes
        self.external = external
        self.naming = all(o == _NAMES for o in outcomes)
        """Whether it only names its subjects (then nothing changes, and only a closed one refuses it)."""

    def __bool__(self) -> bool:
        return bool(self.subjects)


def _reader(fields: tuple[tuple[str, str], ...]) -> tuple[Callable[[Any], tuple[Any, ...]], bool]:
    names = [f for f, _ in fields]
    getter: Callable[[Any], Any] = operator.attrgetter(*names) if names else (lambda _: ())
    if len(names) == 1:  # attrgetter of one name gives the value, not a tuple
        one = getter
        getter = lambda e: (one(e),)  # noqa: E731
    return getter, all(action == "name" for _, action in fields)


_CANONICAL: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}
_READERS = {cls: (_CANONICAL.setdefault(fields, fields), *_reader(fields)) for cls, fields in LIFECYCLE_FIELDS.items()}


_NAMING: dict[tuple[object, tuple[Any, ...], bool], Plan] = {}  # plans of one record that only names subjects


def plan(events: Sequence[Event], external: bool = False) -> Plan:
    """Fold the lifecycle steps of ``events`` (appended together, in order) per subject.

    A plan is read, never changed: the plan of a lone record that only names its subjects (a
    producer publishing deltas one at a time) is kept for the next one that names the same.
    """
    if len(events) == 1:
        reader = _READERS.get(type(events[0]))
        if reader is not None and reader[2]:
            key = (reader[0], reader[1](events[0]), external)
            known = _NAMING.get(key)
            if known is None:
                if len(_NAMING) >= 4096:
                    _NAMING.clear()
                known = _NAMING[key] = _plan(events, external)
            return known
    return _plan(events, external)


def _plan(events: Sequence[Event], external: bool) -> Plan:
    actions: dict[tuple[str, str], list[str]] = {}
    last_fields: object = None
    last_ids: tuple[Any, ...] = ()
    for event in events:
        reader = _READERS.get(type(event))
        if reader is None:  # not a v1 model: its data names its subjects
            last_fields = None
            steps = [((kind, ident), action) for action, kind, ident in lifecycle_steps(event)]
        else:
            fields, get, names_only = reader
            ids = get(event)
            if names_only and fields is last_fields and ids == last_ids:
                continue  # names what the record before named (a run of deltas): nothing new
            last_fields, last_ids = (fields, ids) if names_only else (None, ())
            steps = [((f, i), a) for (f, a), i in zip(fields, ids) if i is not None]
        for key, action in steps:
            seen = actions.get(key)
            if seen is None:
                actions[key] = [action]
            elif action != "name" or seen[-1] != "name":  # a name after a name changes nothing
                seen.append(action)
    return Plan(
        [f"{kind}:{ident}" for kind, ident in actions],
        [_outcomes(tuple(a)) for a in actions.values()],
        external,
    )


@functools.cache
def _outcomes(actions: tuple[str, ...]) -> str:
    out = ""
    for state in "uoc":
        for action in actions:
            if action == "open":
                if state != "u":
                    state = "S"
                    break
                state = "o"
            elif action == "close":
                if state != "o":
                    state = "N" if state == "u" else "E"
                    break
                state = "c"
            elif state == "c":
                state = "A"
                break
        out += state
    return out


def settle(todo: Plan, state_of: Callable[[str], str | None]) -> list[tuple[str, str]]:
    """Check an append against the subjects' states; the states to store if it may go on.

    Args:
        state_of: A subject's stored state (``o``, ``O``, ``c``, ``C``), or None if unseen.

    Raises:
        LifecycleViolation: the append breaks a rule (nothing of it may be written).
    """
    if todo.naming:  # the common case (deltas): nothing changes; only a closed (or not its) subject refuses
        refused = _REFUSE_EXTERNAL if todo.external else _REFUSE
        for subject in todo.subjects:
            if state_of(subject) in refused:
                break
        else:
            return []
    changes = []
    for subject, outcome in zip(todo.subjects, todo.outcomes):
        current = state_of(subject)
        if todo.external and current is not None and current.isupper():
            raise violation("owned_by_runtime", subject)
        letter = outcome[0 if current is None else 1 if current in OPEN else 2]
        if letter in _RULES:
            raise violation(_RULES[letter], subject)
        if letter != "u" and (current is None or letter != current.lower()):
            owned = (current is None and not todo.external) or (current is not None and current.isupper())
            changes.append((subject, letter.upper() if owned else letter))
    return changes


def violation(code: str, subject: str) -> LifecycleViolation:
    """The error of an append that breaks rule ``code`` (a rule's name or letter) for ``subject``."""
    code = _RULES.get(code, code)
    kind, _, ident = subject.partition(":")
    what = f"{kind} {ident!r}"
    approval = kind == "approval"
    message = {
        "already_started": f"{what} was already {'requested' if approval else 'started'}",
        "never_started": f"{what} was never {'requested' if approval else 'started'}: it cannot "
        + ("be resolved" if approval else "end"),
        "already_ended": f"{what} was already {'resolved' if approval else 'ended'}: it ends once",
        "after_end": f"{what} has {'been resolved' if approval else 'ended'}: nothing more may name it",
        "owned_by_runtime": f"{what} belongs to the runtime: an external producer may not append to it"
        + (" (resolve it through the approvals route)" if approval else ""),
    }.get(code, f"{what}: {code}")
    return LifecycleViolation(code, kind, ident, message)


def restored(events: Sequence[AnyEvent]) -> list[tuple[list[tuple[str, str, bool]], list[str]]]:
    """The states records put back into a log that lost them set, per record (see ``EventLog.restore``).

    Per record: its changes, ``(subject, letter, owned)`` (``o`` for a subject it opens, owned
    if the record names an owner or names work opened owned before it in ``events``; ``c`` for
    one it closes, a store keeps the case it holds), and the other subjects it names (a subject
    it opens is owned too if the store holds one of those owned). The records were checked when
    first appended: nothing is checked.
    """
    owned: set[str] = set()
    out = []
    for event in events:
        steps = [(action, f"{kind}:{ident}") for action, kind, ident in lifecycle_steps(event)]
        mine = event_owner(event) is not None or any(subject in owned for _, subject in steps)
        changes = []
        for action, subject in steps:
            if action == "open":
                if mine:
                    owned.add(subject)
                changes.append((subject, "o", mine))
            elif action == "close":
                changes.append((subject, "c", subject in owned))
        out.append((changes, [subject for action, subject in steps if action == "name"]))
    return out


def replay(states: dict[str, str], events: Sequence[AnyEvent]) -> None:
    """Apply records a log holds to ``states``, in order (a backfill of a log written before the rules)."""
    for changes, named in restored(events):
        mine = any((states.get(subject) or "").isupper() for subject in named)
        for subject, letter, owned in changes:
            current = states.get(subject)
            if current is None:
                states[subject] = letter.upper() if owned or mine else letter
            elif letter == "c":
                states[subject] = "C" if current.isupper() else "c"


def from_snapshot(snapshot: bytes) -> dict[str, str]:
    """The states a snapshot (a session's folded state, JSON) implies: for a log whose older records are gone.

    Work with an ``owner`` is the runtime's, and so are the approvals of its work.
    """
    data = msgspec.json.decode(snapshot)
    states: dict[str, str] = {}
    for kind in ("turn", "job"):
        for ident, work in (data.get(kind + "s") or {}).items():
            letter = "o" if work.get("status") == "running" else "c"
            states[f"{kind}:{ident}"] = letter.upper() if work.get("owner") else letter
    for ident, approval in (data.get("approvals") or {}).items():
        letter = "o" if approval.get("status") == "pending" else "c"
        of = [states.get(f"{kind}:{approval.get(kind)}") or "" for kind in ("turn", "job")]
        states[f"approval:{ident}"] = letter.upper() if any(s.isupper() for s in of) else letter
    return states
