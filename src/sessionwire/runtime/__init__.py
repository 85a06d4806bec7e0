"""The agent runtime: turns, background jobs, tools, approvals, providers and crash recovery."""

from __future__ import annotations

from .api import AgentRuntime, Decision
from .cluster import Cluster
from .context import RunContext
from .messages import MessageStream, ToolCallStream
from .providers.base import Provider, ProviderError, Reply
from .providers.openai import OpenAIProvider
from .providers.scripted import ScriptedProvider
from .recovery import LocalOwnership, Ownership, Recovered
from .routed import RoutedRuntime
from .runtime import Dispatched, Policy, Runtime, RuntimeClosed
from .tools import Tool, ToolContext, ToolError, ToolRegistry

__all__ = [
    "AgentRuntime",
    "Cluster",
    "Decision",
    "Dispatched",
    "LocalOwnership",
    "MessageStream",
    "OpenAIProvider",
    "Ownership",
    "Policy",
    "Provider",
    "ProviderError",
    "Recovered",
    "Reply",
    "RoutedRuntime",
    "RunContext",
    "Runtime",
    "RuntimeClosed",
    "ScriptedProvider",
    "Tool",
    "ToolCallStream",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
]
