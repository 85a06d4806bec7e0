"""``python -m sessionwire.cli``: the same as the ``sessionwire`` command."""

from __future__ import annotations

from .main import main

main()
