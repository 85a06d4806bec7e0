"""Build the agent runtime the settings ask for (scripted or OpenAI-compatible)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from ..hub import Hub
from ..runtime import AgentRuntime
from .settings import Settings

logger = logging.getLogger("sessionwire.server")


def make_provider(settings: Settings) -> Any:
    """The provider of ``settings.agent``."""
    from ..runtime import OpenAIProvider, ScriptedProvider

    if settings.agent == "openai":
        return OpenAIProvider(model=settings.model, base_url=settings.openai_base_url, api_key=settings.openai_api_key)
    return ScriptedProvider(delay=settings.token_delay_ms / 1000)


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, hub: Hub) -> AsyncIterator[AgentRuntime]:
    """A running runtime on ``hub``: a member of the store's cluster, its commands routed to the work's process.

    With a store of one process the cluster is this process alone and routing finds nobody else.
    """
    from ..runtime import Cluster, Runtime

    options: dict[str, Any] = {
        "policy": settings.policy,
        "coalesce_ms": settings.coalesce_ms,
        "approval_timeout": settings.approval_timeout,
    }
    async with contextlib.AsyncExitStack() as stack:
        provider = make_provider(settings)
        if hasattr(provider, "__aenter__"):
            provider = await stack.enter_async_context(provider)  # e.g. the OpenAI provider's HTTP client
        # A lease per runtime; with a shared store (Redis) the others end its work if it dies.
        member = await stack.enter_async_context(Cluster.open(hub))
        runtime = await stack.enter_async_context(
            Runtime(hub, provider, owner=member.owner, ownership=member, **options)
        )
        yield await stack.enter_async_context(member.route(runtime))
