"""``python -m benchmarks [--full|--tiny]``: run the suite, print the tables, write benchmarks/out/report.md."""

from __future__ import annotations

import sys

from sessionwire.bench import main

sys.exit(main())
