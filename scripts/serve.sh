#!/usr/bin/env bash
# Start the server on the embedded defaults (SQLite file, scripted agent, web UI).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/sessionwire serve "$@"
