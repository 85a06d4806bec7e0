"""Providers: what answers a turn or runs a job."""

from __future__ import annotations

from .base import Provider, ProviderError, Reply
from .scripted import ScriptedProvider

__all__ = ["Provider", "ProviderError", "Reply", "ScriptedProvider"]
