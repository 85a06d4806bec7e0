"""``scripted``: a deterministic, offline provider for demos and tests.

It answers plain text with a streamed echo that contains the user's text, one
token per word, and understands a few commands at the start of a message, so
every event type can be produced on demand:

- ``/long N``: exactly N numbered words ``w1 w2 … wN`` (a lost or repeated word shows).
- ``/think [TEXT]``: a reasoning part streamed before the answer.
- ``/tool NAME ARGS``: call tool NAME with the JSON ARGS (streamed), then answer with its result.
- ``/job N TITLE``: start a background job (via the ``start_job`` tool) that streams N
  numbered words with progress k/N; the turn itself completes right away.
- ``/approve ACTION``: call the ``perform`` tool, which needs approval; the answer depends on the decision.
- ``/fail``: the turn fails with an error.

N above ``max_words`` (100,000 by default) is an error that fails the turn.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from ...events import Usage
from .base import ProviderError, Reply

if TYPE_CHECKING:
    from ..context import RunContext
    from ..messages import ToolCallStream

Delay = float | Callable[[int], float]
"""Seconds between a token and the next: a constant, or a function of the token's index."""


class Pace:
    """When each token of one stream is due: the delays before it, counted from the stream's start.

    A provider's tokens come at the provider's pace whatever ours: a stream that fell behind
    (the loop was busy) sends what is due at once instead of waiting a whole delay after each.
    """

    def __init__(self, delay: Delay) -> None:
        self.delay = delay
        self.loop = asyncio.get_running_loop()
        self.due = self.loop.time()

    async def after(self, index: int) -> None:
        """Wait until the token after ``index`` is due (or at least let others run now and then)."""
        delay = self.delay(index) if callable(self.delay) else self.delay
        if delay > 0:
            self.due += delay
            wait = self.due - self.loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                return
        if index % 16 == 15:
            await asyncio.sleep(0)  # let others run, and let a cancel in


class ScriptedProvider:
    """The embedded default provider: deterministic, offline, commands for every event type.

    Args:
        delay: Seconds between two tokens (or a function of the token index); 0 for tests. Tokens
            are paced from the stream's start, as a provider's stream is: one that fell behind
            catches up at once.
        max_words: The largest N ``/long`` and ``/job`` accept.
        model: The model name reported on ``turn.completed``.
    """

    name = "scripted"

    def __init__(self, *, delay: Delay = 0.03, max_words: int = 100_000, model: str = "scripted") -> None:
        if max_words < 1:
            raise ValueError(f"max_words is >= 1, not {max_words}")
        self.delay = delay
        self.max_words = max_words
        self.model = model

    # ------------------------------------------------------------------ turns

    async def run_turn(self, ctx: RunContext) -> Reply:
        """Answer ``ctx.text``: a command or a plain echo."""
        text = ctx.text.strip()
        command, _, rest = text.partition(" ")
        rest = rest.strip()
        out = 0
        if command == "/long":
            n = self._count(rest, "/long")
            out = await self._answer(ctx, numbered(n))
        elif command == "/think":
            message = await ctx.message()
            topic = rest or "nothing in particular"
            out += await self._stream(message.reasoning, words(f"Thinking about {topic}, step by step."))
            out += await self._stream(message.text, words(f"My answer about {topic}: it is {topic}."))
            await message.complete()
        elif command == "/tool":
            name, _, args = rest.partition(" ")
            if not name:
                raise ProviderError("/tool needs a tool name: /tool NAME {json args}", code="bad_command")
            call = await self._call(ctx, name, args.strip() or "{}")
            if call.status == "completed":
                reply = f"{name} returned {json.dumps(call.result)}"
            else:
                reply = f"{name} failed: {call.error}"
            out = await self._answer(ctx, words(reply))
        elif command == "/job":
            count, _, title = rest.partition(" ")
            n = self._count(count, "/job")
            title = title.strip() or "background job"
            call = await self._call(ctx, "start_job", json.dumps({"title": title, "prompt": f"/long {n}"}))
            if call.status != "completed":
                raise ProviderError(f"could not start the job: {call.error}", code="job_not_started")
            out = await self._answer(ctx, words(f"Started job {call.result['job']}: {title}."))
        elif command == "/approve":
            action = rest or "the demo action"
            call = await self._call(ctx, "perform", json.dumps({"action": action}))
            if call.status == "completed":
                reply = f"Approved, so I did it: {call.result}"
            elif call.decision == "denied":
                reply = f"Denied, so I did not {action}."
            elif call.decision == "expired":
                reply = f"Nobody answered in time, so I did not {action}."
            else:
                reply = f"perform failed: {call.error}"
            out = await self._answer(ctx, words(reply))
        elif command == "/fail":
            await self._answer(ctx, words("This turn is about to fail."), complete=False)
            raise ProviderError("the scripted provider was asked to fail (/fail)", code="scripted_failure")
        else:
            out = await self._answer(ctx, words(f"You said: {text}"))
        return Reply(model=self.model, usage=Usage(input_tokens=len(text.split()), output_tokens=out))

    # ------------------------------------------------------------------ jobs

    async def run_job(self, ctx: RunContext) -> Reply:
        """Stream the job's output with progress k/N: ``/long N`` gives N numbered words, else an echo."""
        prompt = ctx.text.strip()
        command, _, rest = prompt.partition(" ")
        tokens = numbered(self._count(rest, "/long")) if command == "/long" else words(f"Working on: {prompt}")
        total = len(tokens)
        message = await ctx.message()
        pace = Pace(self.delay)
        for i, token in enumerate(tokens):
            await message.text(token)
            await ctx.progress(i + 1, total)
            await pace.after(i)
        await message.complete()
        return Reply(model=self.model, summary=f"{ctx.title or 'job'}: {total} words")

    # ------------------------------------------------------------------ helpers

    def _count(self, text: str, command: str) -> int:
        try:
            n = int(text.split()[0]) if text.split() else -1
        except ValueError:
            n = -1
        if not 1 <= n <= self.max_words:
            given = text.split()[0] if text.split() else "nothing"
            raise ProviderError(
                f"{command} N needs a whole number N from 1 to {self.max_words}, not {given}", code="bad_command"
            )
        return n

    async def _call(self, ctx: RunContext, name: str, args: str) -> ToolCallStream:
        message = await ctx.message()
        call = await ctx.call_tool(message, name, args)
        await message.complete()
        return call

    async def _answer(self, ctx: RunContext, tokens: list[str], complete: bool = True) -> int:
        message = await ctx.message()
        count = await self._stream(message.text, tokens)
        if complete:
            await message.complete()
        return count

    async def _stream(self, write: Callable[[str], Awaitable[None]], tokens: Iterable[str]) -> int:
        count = 0
        pace = Pace(self.delay)
        for i, token in enumerate(tokens):
            await write(token)
            count += 1
            await pace.after(i)
        return count


def words(text: str) -> list[str]:
    """``text`` as tokens, one per word, each but the first with its leading space."""
    parts = text.split(" ")
    return [parts[0], *(" " + p for p in parts[1:])]


def numbered(n: int) -> list[str]:
    """The tokens of ``w1 w2 … wN``."""
    return ["w1", *(f" w{i}" for i in range(2, n + 1))]
