"""Session tokens the CLI remembers, in a JSON file in the user's config directory."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import platformdirs

from .errors import TokenFileError as TokenFileError


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
            raise TokenFileError(f"cannot read the token file {self.path}: {exc}") from None
        return data if isinstance(data, dict) else {}

    def get(self, url: str, session: str) -> str | None:
        """The token remembered for ``session`` on the server at ``url``."""
        tokens = self._load().get(url.rstrip("/"))
        token = tokens.get(session) if isinstance(tokens, dict) else None
        return token if isinstance(token, str) else None

    def put(self, url: str, session: str, token: str) -> None:
        """Remember a token (the file is private to the user)."""
        data = self._load()
        tokens = data.get(url.rstrip("/"))
        data[url.rstrip("/")] = {**(tokens if isinstance(tokens, dict) else {}), session: token}
        try:
            self._write(json.dumps(data, indent=2))
        except OSError as exc:
            raise TokenFileError(f"cannot write the token file {self.path}: {exc}") from None

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # a leftover may have looser permissions: O_EXCL below makes a fresh one
        # Created private: a world-readable moment between writing and chmod would leak the tokens.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        tmp.replace(self.path)
