"""Server settings: defaults, then ``SESSIONWIRE_*`` environment variables, then CLI flags."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
ENV_PREFIX = "SESSIONWIRE_"

Policy = Literal["queue", "reject", "interrupt"]


def default_store() -> str:
    """The embedded default store: a SQLite file in the user's data directory."""
    directory = Path(platformdirs.user_data_dir("sessionwire", appauthor=False))
    return f"sqlite:///{directory / 'sessionwire.db'}"


def default_static_dir() -> Path:
    """Where the built web UI lives inside the package."""
    return Path(__file__).resolve().parent.parent / "static"


@dataclasses.dataclass(kw_only=True)
class Settings:
    """Everything the server can be configured with.

    Every field can be set by an environment variable named ``SESSIONWIRE_`` plus the
    field name in upper case (``SESSIONWIRE_PORT=9000``); lists are comma-separated.

    Attributes:
        host: Interface to listen on.
        port: TCP port to listen on.
        store: Event log URL (``sqlite:///...``, ``memory://``, ``redis://...``); None = the embedded default.
        agent: ``scripted`` (the built-in demo agent) or ``openai`` (an OpenAI-compatible API).
        token_delay_ms: Milliseconds per token of the scripted agent.
        log_level: uvicorn's log level.
        admin_token: A token that acts on every session and may list and delete sessions.
        allowed_origins: Origins allowed by CORS and for WebSockets, besides the server's own.
        max_body: Largest request body or WebSocket message in bytes (larger: 413).
        heartbeat: Seconds of silence after which an SSE stream gets a heartbeat comment
            (WebSockets rely on the protocol's own pings).
        policy: What a turn does when another is running: ``queue``, ``reject`` or ``interrupt``.
        coalesce_ms: Window in which the runtime merges token deltas.
        approval_timeout: Seconds before a pending approval expires.
        openai_base_url: Base URL of the OpenAI-compatible API (``--agent openai``; else ``OPENAI_BASE_URL``).
        model: Model name for the OpenAI-compatible API (``SESSIONWIRE_MODEL``).
        openai_api_key: API key for the OpenAI-compatible API (else ``OPENAI_API_KEY``).
        static_dir: Folder of the built web UI; None = the package's ``static`` folder.
        idempotency_keys: 0 turns Idempotency-Key off (any other value: on; ``memory://`` keeps the newest 10,000).
        idempotency_ttl: Seconds an Idempotency-Key's reply is kept in the store (SQLite, Redis).
        public_url: The URL browsers reach the server at, if not ``http://<host>:<port>`` (a proxy,
            a LAN address): its origin may change state and open WebSockets (see :mod:`.origin`).
        shutdown_timeout: Seconds uvicorn waits for connections at shutdown before cancelling them.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    store: str | None = None
    agent: Literal["scripted", "openai"] = "scripted"
    token_delay_ms: float = 20.0
    log_level: str = "info"
    admin_token: str | None = None
    allowed_origins: list[str] = dataclasses.field(default_factory=list)
    max_body: int = 1024 * 1024
    heartbeat: float = 15.0
    policy: Policy = "queue"
    coalesce_ms: float = 30.0
    approval_timeout: float = 300.0
    openai_base_url: str | None = None
    model: str | None = None
    openai_api_key: str | None = None
    static_dir: str | None = None
    idempotency_keys: int = 10_000
    idempotency_ttl: float = 86400.0
    public_url: str | None = None
    shutdown_timeout: float = 3.0

    @property
    def store_url(self) -> str:
        """The store URL, the embedded default if none was set."""
        return self.store or default_store()

    @property
    def url(self) -> str:
        """The URL the server can be reached at."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``SESSIONWIRE_*`` variables of ``env`` (default ``os.environ``), then ``overrides``.

        Overrides that are None are ignored, so CLI flags that were not given keep the lower layers.

        Raises:
            ValueError: a variable or override has a value of the wrong kind.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _parse(field.name, str(field.type), raw)
        for name, value in overrides.items():
            if name not in {f.name for f in dataclasses.fields(cls)}:
                raise ValueError(f"unknown setting {name!r}")
            if value is not None and value != ():
                values[name] = list(value) if isinstance(value, tuple) else value
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ValueError if a setting is out of range."""
        if self.agent not in ("scripted", "openai"):
            raise ValueError(f"agent must be 'scripted' or 'openai', not {self.agent!r}")
        if self.policy not in ("queue", "reject", "interrupt"):
            raise ValueError(f"policy must be queue, reject or interrupt, not {self.policy!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, not {self.port}")
        if self.max_body < 1 or self.heartbeat <= 0 or self.token_delay_ms < 0:
            raise ValueError("max_body and heartbeat must be positive and token_delay_ms not negative")
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"public_url is http(s)://host[:port], not {self.public_url!r}")


def _parse(name: str, kind: str, raw: str) -> Any:
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("list"):
            return [part.strip() for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
    if "None" in kind and raw == "":
        return None
    return raw
