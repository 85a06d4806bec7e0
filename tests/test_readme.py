"""The README's Python blocks run unmodified: each is executed as a script, against a real server
(``SESSIONWIRE_URL``), a real ``redis-server`` (``SESSIONWIRE_REDIS``) or a SQLite file in a
temporary directory, and must finish and print what it says it does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from server_util import ThreadServer, running, settings_for

README = Path(__file__).parent.parent / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```$", README.read_text(encoding="utf-8"), flags=re.M | re.S)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with running(settings_for(free_port(), token_delay_ms=1.0)) as srv:
        yield srv


def test_the_readme_has_its_python_examples() -> None:
    assert len(BLOCKS) >= 4
    assert not re.search(r"^```text\n(from|import|async with) ", README.read_text(encoding="utf-8"), flags=re.M)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{i + 1}" for i in range(len(BLOCKS))])
def test_a_readme_python_block_runs_as_written(
    index: int, tmp_path: Path, server: ThreadServer, request: pytest.FixtureRequest
) -> None:
    code = BLOCKS[index]
    env: dict[str, Any] = {**os.environ, "SESSIONWIRE_URL": server.url, "PYTHONUNBUFFERED": "1"}
    if "SESSIONWIRE_REDIS" in code:
        env["SESSIONWIRE_REDIS"] = request.getfixturevalue("redis_server").fresh_url()
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=45
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    out = done.stdout
    assert out.strip(), "the example printed nothing"
    # Records print with their fields, as a reader expects to see them.
    records = [line for line in out.splitlines() if line.startswith("Record(")]
    if "print(item)" in code:
        assert records and all("type=" in line for line in records), out
    deltas = [line for line in records if "type='message.delta'" in line]
    assert all(re.search(r", text='", line) for line in deltas), out
