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

from collections.abc import Callable, Sequence

from ..errors import LifecycleViolation
from ..events import AnyEvent, Event, event_owner, lifecycle_steps

__all__ = ["OPEN", "Plan", "plan", "restored", "settle", "violation"]

OPEN = "oO"
"""The states of an open subject (lower case: an external producer opened it)."""

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

    __slots__ = ("external", "outcomes", "subjects")

    def __init__(self, subjects: list[str], outcomes: list[str], external: bool) -> None:
        self.subjects = subjects
        self.outcomes = outcomes
        self.external = external

    def __bool__(self) -> bool:
        return bool(self.subjects)


def plan(events: Sequence[Event], external: bool = False) -> Plan:
    """Fold the lifecycle steps of ``events`` (appended together, in order) per subject."""
    actions: dict[str, list[str]] = {}
    for event in events:
        for action, kind, ident in lifecycle_steps(event):
            subject = f"{kind}:{ident}"
            seen = actions.get(subject)
            if seen is None:
                actions[subject] = [action]
            elif action != "name" or seen[-1] != "name":  # a name after a name changes nothing
                seen.append(action)
    return Plan(list(actions), [_outcomes(a) for a in actions.values()], external)


def _outcomes(actions: list[str]) -> str:
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


def restored(events: Sequence[AnyEvent]) -> list[list[tuple[str, str, bool]]]:
    """The states records put back into a log that lost them set, per record (see ``EventLog.restore``).

    Per record, ``(subject, letter, owned)``: ``o`` for a subject it opens (owned if the record
    names an owner, or names work opened owned before it), ``c`` for one it closes (a store
    keeps the case it holds). The records were checked when first appended: nothing is checked.
    """
    owned: set[str] = set()
    out = []
    for event in events:
        steps = lifecycle_steps(event)
        mine = event_owner(event) is not None or any(f"{k}:{i}" in owned for _, k, i in steps)
        changes = []
        for action, kind, ident in steps:
            subject = f"{kind}:{ident}"
            if action == "open":
                if mine:
                    owned.add(subject)
                changes.append((subject, "o", mine))
            elif action == "close":
                changes.append((subject, "c", subject in owned))
        out.append(changes)
    return out
