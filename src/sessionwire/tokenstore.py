"""Session tokens the CLI remembers, in a JSON file in the user's config directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import platformdirs


def default_path() -> Path:
    """``tokens.json`` in the user's config directory (``SESSIONWIRE_CONFIG_DIR`` overrides it)."""
    directory = os.environ.get("SESSIONWIRE_CONFIG_DIR") or platformdirs.user_config_dir("sessionwire", appauthor=False)
    return Path(directory) / "tokens.json"


class TokenStore:
    """Tokens by server URL and session id."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"cannot read the token file {self.path}: {exc}") from None
        return data if isinstance(data, dict) else {}

    def get(self, url: str, session: str) -> str | None:
        """The token remembered for ``session`` on the server at ``url``."""
        return self._load().get(url.rstrip("/"), {}).get(session)

    def put(self, url: str, session: str, token: str) -> None:
        """Remember a token (the file is private to the user)."""
        data = self._load()
        data.setdefault(url.rstrip("/"), {})[session] = token
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.chmod(0o600)
        tmp.replace(self.path)
