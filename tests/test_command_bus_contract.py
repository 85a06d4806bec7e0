"""The CommandBus contract: a command reaches the process that runs the work, and its answer comes back.

On every backend a command that no other process runs is answered False at once; on Redis,
where other processes exist, the one whose handler carries it out answers True, the others
"not mine", and an error of the one that runs the work comes back as that error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conftest import RedisServer
from sessionwire.backends import Command, Store, open_store
from sessionwire.backends.redis import RedisLog
from sessionwire.errors import Conflict, Forbidden, LogUnavailable, NotFound, SessionwireError

CANCEL = Command(op="cancel_turn", session="s1", target="t1")


class Handler:
    """Carries out the commands for the work it runs; NotFound for the rest."""

    def __init__(self, runs: set[str] | None = None, error: Exception | None = None) -> None:
        self.runs = runs or set()
        self.error = error
        self.done: list[Command] = []

    async def __call__(self, command: Command) -> None:
        if self.error is not None:
            raise self.error
        if command.target not in self.runs and not command.every:
            raise NotFound(f"no {command.target}")
        self.done.append(command)


@contextlib.asynccontextmanager
async def stores(url: str, count: int) -> AsyncIterator[list[Store]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(open_store(url)) for _ in range(count)]


async def test_a_command_nobody_else_runs_is_answered_false_at_once(store: Store) -> None:
    handler = Handler(runs={"t1"})
    async with store.commands.serve(handler):
        async with asyncio.timeout(2):  # at once: not after the command timeout (30 s here)
            # The sender's own handler is not asked: the bus carries commands to the *other* processes.
            assert await store.commands.send(CANCEL) is False
            assert await store.commands.send(Command(op="close_session", session="s1", every=True)) is False
    assert handler.done == []
    await store.commands.aclose()
    await store.commands.aclose()  # closing twice is harmless


async def test_the_process_that_runs_the_work_carries_it_out(redis_server: RedisServer) -> None:
    url = redis_server.fresh_url() + "?command_timeout=5"
    async with stores(url, 3) as (a, b, c):
        owner, bystander = Handler(runs={"t1"}), Handler()
        async with b.commands.serve(owner), c.commands.serve(bystander):
            async with asyncio.timeout(2):  # every answer comes back well before the timeout
                assert await a.commands.send(CANCEL) is True
                assert await a.commands.send(Command(op="cancel_turn", session="s1", target="t_none")) is False
            assert owner.done == [CANCEL] and bystander.done == []
            # Sent to every process: each carries it out, and the sender waits for all of them.
            everyone = Command(op="close_session", session="s1", every=True)
            assert await a.commands.send(everyone) is True
            assert owner.done[-1] == everyone and bystander.done == [everyone]
        # Out of its serve context a process carries out nothing more.
        async with asyncio.timeout(2):
            assert await a.commands.send(CANCEL) is False
        assert owner.done == [CANCEL, everyone]


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (LogUnavailable("redis is gone"), LogUnavailable),
        (Forbidden("not yours"), SessionwireError),
        (RuntimeError("a bug"), SessionwireError),
    ],
    ids=["log_unavailable", "sessionwire_error", "other"],
)
async def test_a_failure_of_the_process_that_runs_the_work_comes_back_as_an_error(
    redis_server: RedisServer, error: Exception, raised: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    async with stores(redis_server.fresh_url() + "?command_timeout=5", 2) as (a, b):
        async with b.commands.serve(Handler(error=error)):
            async with asyncio.timeout(2):
                with pytest.raises(raised, match=str(error)):
                    await a.commands.send(CANCEL)


async def test_not_mine_answers_are_conflicts_and_bad_arguments_too(redis_server: RedisServer) -> None:
    async with stores(redis_server.fresh_url() + "?command_timeout=5", 3) as (a, b, c):
        async with b.commands.serve(Handler(error=Conflict("ended"))), c.commands.serve(Handler(error=ValueError())):
            async with asyncio.timeout(2):
                assert await a.commands.send(CANCEL) is False


async def test_a_command_for_every_process_waits_for_every_answer(redis_server: RedisServer) -> None:
    async with stores(redis_server.fresh_url() + "?command_timeout=5", 3) as (a, b, c):
        gate, entered = asyncio.Event(), asyncio.Event()
        quick, slow = Handler(), Handler()

        async def held_back(command: Command) -> None:
            entered.set()
            await gate.wait()
            await slow(command)

        everyone = Command(op="close_session", session="s1", every=True)
        async with b.commands.serve(quick), c.commands.serve(held_back):
            async with asyncio.timeout(2):
                sending = asyncio.create_task(a.commands.send(everyone))
                await entered.wait()
                while not quick.done:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                # B carried it out (its answer is on its way), C has not: the sender still waits.
                # A bounded look is the only way to see that something does not happen.
                done, _ = await asyncio.wait({sending}, timeout=0.2)
                assert not done
                gate.set()
                assert await sending is True
        assert quick.done == [everyone] and slow.done == [everyone]


async def test_stores_on_other_databases_never_meet(redis_server: RedisServer) -> None:
    # Pub/sub ignores the database number: the bus's channels name it.
    async with stores(redis_server.fresh_url(), 1) as (a,), stores(redis_server.fresh_url(), 1) as (other,):
        handler = Handler(runs={"t1"})
        async with other.commands.serve(handler):
            async with asyncio.timeout(2):
                assert await a.commands.send(CANCEL) is False
                assert await a.commands.send(Command(op="close_session", session="s1", every=True)) is False
        assert handler.done == []


async def test_a_failure_that_answers_before_the_publish_returns_is_still_raised(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with stores(redis_server.fresh_url() + "?command_timeout=5", 2) as (a, b):
        assert isinstance(a.log, RedisLog)
        client = a.log.client
        publish = client.publish

        async def late(*args: Any, **kwargs: Any) -> Any:
            receivers = await publish(*args, **kwargs)
            await asyncio.sleep(0.2)  # the owner's answer is in before the sender hears the count
            return receivers

        async with b.commands.serve(Handler(error=LogUnavailable("gone"))):
            with pytest.raises(LogUnavailable):  # a first command: both buses listen from now on
                await a.commands.send(Command(op="warm_up", session="s0"))
            monkeypatch.setattr(client, "publish", late)
            async with asyncio.timeout(2):
                with pytest.raises(LogUnavailable, match="gone"):
                    await a.commands.send(CANCEL)
