#!/usr/bin/env bash
# Every check and every test: lint, types, Python tests (browser and Redis included), web tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff";  ruff check src tests benchmarks
echo "== mypy";  mypy
if [ -f web/package.json ]; then
  echo "== web: tsc + vitest"
  (cd web && npm run --silent check 2>&1 | grep -v 'Unknown user config')
fi
echo "== pytest"
exec python -m pytest "$@"
