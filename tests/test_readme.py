"""The README's example runs as written, and its two commands are the ones CI uses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert "make serve" in first_block
    assert "make test" in first_block
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_example_runs_as_written(tmp_path: Path) -> None:
    example = re.search(r"```python\n(.*?)```", README, re.S)
    assert example is not None, "the README has a python example"
    code = example.group(1)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert '"type":"session.created"' in lines[0]
    assert '"seq":2' in lines[-1] and '"type":"message.delta"' in lines[-1]
