"""The Provider protocol: what answers a turn or runs a job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ...errors import ProviderError as ProviderError
from ...events import Usage

if TYPE_CHECKING:
    from ..context import RunContext


@dataclass(frozen=True)
class Reply:
    """How a turn or job went, for its terminal record.

    Attributes:
        model: The model that answered, when known.
        usage: Token usage, when the provider reports it.
        summary: A short summary of a job's outcome.
    """

    model: str | None = None
    usage: Usage | None = None
    summary: str | None = None


class Provider(Protocol):
    """Answers turns and runs jobs by streaming into a :class:`RunContext`."""

    name: str
    """A short name for logs and settings: ``scripted``, ``openai``."""

    async def run_turn(self, ctx: RunContext) -> Reply:
        """Answer the user's message ``ctx.text``: open messages, stream, call tools."""
        ...

    async def run_job(self, ctx: RunContext) -> Reply:
        """Do the background job ``ctx.title`` with prompt ``ctx.text``, reporting progress."""
        ...
