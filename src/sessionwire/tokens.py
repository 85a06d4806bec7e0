"""Session tokens: ``sw1.<session id, base64url>.<random>``; only their hashes are stored.

A token names its session, so checking one is a single metadata read; it grants that session
only, and stops working when the session's token is rotated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

__all__ = ["new_token", "token_hash", "token_session"]


def new_token(session_id: str) -> str:
    """A new random token for ``session_id``."""
    tag = base64.urlsafe_b64encode(session_id.encode()).decode().rstrip("=")
    return f"sw1.{tag}.{secrets.token_urlsafe(24)}"


def token_session(token: str) -> str | None:
    """The session a token names, or None if it is not a token."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != "sw1":
        return None
    tag = parts[1]
    try:
        return base64.urlsafe_b64decode(tag + "=" * (-len(tag) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def token_hash(token: str) -> str:
    """What is stored of a token (and tags the subscriptions it opens)."""
    return hashlib.sha256(token.encode()).hexdigest()
