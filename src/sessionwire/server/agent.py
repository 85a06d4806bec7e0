"""Build the agent runtime the settings ask for (scripted or OpenAI-compatible)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from ..hub import Hub
from .settings import Settings

logger = logging.getLogger("sessionwire.server")


def make_provider(settings: Settings) -> Any:
    """The provider of ``settings.agent``."""
    from ..runtime import OpenAIProvider, ScriptedProvider

    if settings.agent == "openai":
        return OpenAIProvider(model=settings.model, base_url=settings.openai_base_url, api_key=settings.openai_api_key)
    return ScriptedProvider(delay=settings.token_delay_ms / 1000)


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, hub: Hub) -> AsyncIterator[Any]:
    """A running :class:`~sessionwire.runtime.Runtime` on ``hub``, or None when the runtime is not installed."""
    try:
        from ..runtime import Runtime
    except ImportError as exc:
        logger.warning("no agent runtime (%s): the command routes answer 503", exc)
        yield None
        return
    options: dict[str, Any] = {
        "policy": settings.policy,
        "coalesce_ms": settings.coalesce_ms,
        "approval_timeout": settings.approval_timeout,
    }
    async with contextlib.AsyncExitStack() as stack:
        provider = make_provider(settings)
        if hasattr(provider, "__aenter__"):
            provider = await stack.enter_async_context(provider)  # e.g. the OpenAI provider's HTTP client
        cluster = getattr(hub.log, "cluster", None)
        if callable(cluster):
            # A log shared by several processes (Redis): a lease per runtime, commands routed to owners.
            member = await stack.enter_async_context(cluster(hub))
            rt = await stack.enter_async_context(
                Runtime(hub, provider, owner=member.owner, ownership=member, **options)
            )
            yield member.route(rt)
            return
        yield await stack.enter_async_context(Runtime(hub, provider, **options))
