"""The event checks, re-exported from :mod:`sessionwire.events.validation` where they live."""

from __future__ import annotations

from .events.validation import CHECKS, Check, check_event, make_check

__all__ = ["CHECKS", "Check", "check_event", "make_check"]
