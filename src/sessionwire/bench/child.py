"""Entry point of the suite's child processes: ``python -m sessionwire.bench.child WHAT ARGS...``.

``scale N`` (see :mod:`.scale`), ``e2e-server KIND`` (:mod:`.e2e_server`) and
``e2e-client PROTO PORT PATH SESSION TOKEN K N`` (:mod:`.e2e_client`), ``answer-server KIND
SCRATCH`` (:mod:`.answer_server`) and ``words-client PORT PATH TOKEN K N`` (:func:`.e2e_client.words_main`). One entry
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
    elif what == "answer-server":
        from .answer_server import main as answer
        from .process import raise_open_files

        raise_open_files()
        asyncio.run(answer(args[0], args[1]))
    elif what == "words-client":
        from .e2e_client import words_main
        from .process import raise_open_files

        raise_open_files()
        port, path, token, k, n = args[:5]
        print(json.dumps(asyncio.run(words_main(int(port), path, token, int(k), int(n)))), flush=True)
    else:
        raise SystemExit(f"unknown child {what!r}: scale, e2e-server, e2e-client, answer-server or words-client")


if __name__ == "__main__":
    main(sys.argv[1:])
