#!/usr/bin/env bash
# Every check and every test: lint, types, import contracts, Python tests (browser and Redis included), web tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff";  ruff check src tests benchmarks
echo "== mypy";  mypy
echo "== import contracts (layers, no cycle, redis only in its backend)"
lint-imports --no-cache | sed -n '/^Contracts/,$p'
echo "== @sessionwire/client: build, tsc, vitest (against a real server)"
(cd clients/typescript && npm run --silent check 2>&1 | grep -v 'Unknown user config')
echo "== web: tsc + vitest"
(cd web && npm run --silent check 2>&1 | grep -v 'Unknown user config')
if [ $# -gt 0 ]; then
  echo "== pytest $*"
  exec python -m pytest "$@"
fi
# The browser tests get a pytest process of their own: Playwright's sync API runs an event loop in
# the main thread, and sharing a process with hundreds of asyncio tests made them time out.
echo "== pytest (everything but the browser)"
python -m pytest -m "not browser"
echo "== pytest (browser: Chromium via Playwright)"
exec python -m pytest -m browser
