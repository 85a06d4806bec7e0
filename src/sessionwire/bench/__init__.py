"""The benchmark suite: every figure of ours beside a raw baseline measured in the same run.

``run(quick=True, full=False, tiny=False, out_dir="benchmarks/out")`` runs it and
writes ``report.md``; ``python -m benchmarks`` and ``sessionwire bench`` call it.
"""

from __future__ import annotations

from .suite import Result, main, parts, run

__all__ = ["Result", "main", "parts", "run"]
