"""Entry point of the suite's child processes: ``python -m sessionwire.bench.child WHAT ARGS...``.

``scale N`` (see :mod:`.scale`), ``e2e-server KIND`` (:mod:`.e2e_server`) and
``e2e-client PROTO PORT PATH SESSION TOKEN K N`` (:mod:`.e2e_client`). One entry
module that the package does not import itself, so ``-m`` runs it cleanly.
"""

from __future__ import annotations

import asyncio
import json
import sys


def main(argv: list[str]) -> None:
    """Run the child named by ``argv[0]`` with the rest of ``argv``."""
    what, args = argv[0], argv[1:]
    if what == "scale":
        from .scale import child_main

        print(json.dumps(asyncio.run(child_main(int(args[0])))), flush=True)
    elif what == "e2e-server":
        from .e2e_server import main as serve
        from .process import raise_open_files

        raise_open_files()
        asyncio.run(serve(args[0]))
    elif what == "e2e-client":
        from .e2e_client import main as clients
        from .process import raise_open_files

        raise_open_files()
        proto, port, path, session, token, k, n = args[:7]
        result = asyncio.run(clients(proto, int(port), path, session, token, int(k), int(n)))
        print(json.dumps(result), flush=True)
    else:
        raise SystemExit(f"unknown child {what!r}: scale, e2e-server or e2e-client")


if __name__ == "__main__":
    main(sys.argv[1:])
