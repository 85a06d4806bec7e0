#!/usr/bin/env bash
# Idempotent set-up: installs only what is missing or changed, so a second run is fast.
#   scripts/setup.sh            runtime: .venv with sessionwire, web UI built if npm is there
#   scripts/setup.sh --dev      + test tools, Chromium and redis-server from Debian
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done

STAMPS=.venv/.stamps
say() { printf '\033[2m[setup] %s\033[0m\n' "$*" >&2; }
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

apt_install() {
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ ! -f /tmp/.sessionwire-apt-updated ]; then
    say "apt-get update"
    $sudo apt-get update -qq >/dev/null && touch /tmp/.sessionwire-apt-updated
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ "$DEV" = 1 ]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-liberation)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  [ ${#missing[@]} -gt 0 ] && apt_install "${missing[@]}"
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
mkdir -p "$STAMPS"

extras=""
[ "$DEV" = 1 ] && extras="[dev]"
want="$(hash_of pyproject.toml)$extras"
have="$(cat "$STAMPS/pip" 2>/dev/null || true)"
if [ "$have" != "$want" ] && [ "$have" != "$(hash_of pyproject.toml)[dev]" ]; then
  say "pip install -e .$extras"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras" 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import sessionwire"
  echo "$want" > "$STAMPS/pip"
fi

if [ -f package.json ]; then
  if ! command -v npm >/dev/null 2>&1; then
    say "npm not found: the API works, the web UI is not built"
  else
    # One npm workspace: the client package (clients/typescript) and the web UI that uses it.
    lock="$(hash_of package-lock.json)"
    if [ "$(cat "$STAMPS/npm" 2>/dev/null)" != "$lock" ] || [ ! -d node_modules ]; then
      say "npm ci (workspace: clients/typescript, web)"
      npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'Unknown user config' || true
      [ -d node_modules ] || { echo "npm ci failed" >&2; exit 1; }
      echo "$lock" > "$STAMPS/npm"
    fi
    if [ "$DEV" = 1 ] && [ -f tests/node/package.json ]; then
      # The official clients of other agent protocols, which the tests drive against a real server.
      lock="$(hash_of tests/node/package-lock.json)"
      if [ "$(cat "$STAMPS/npm-clients" 2>/dev/null)" != "$lock" ] || [ ! -d tests/node/node_modules ]; then
        say "npm ci (tests/node/)"
        (cd tests/node && npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'Unknown user config' || true)
        [ -d tests/node/node_modules ] || { echo "npm ci failed in tests/node" >&2; exit 1; }
        echo "$lock" > "$STAMPS/npm-clients"
      fi
    fi
    tree_hash() { find "$@" -name node_modules -prune -o -name dist -prune -o -name generated -prune -o -type f -print | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16; }
    schema="$(hash_of src/sessionwire/events/*.py src/sessionwire/state.py src/sessionwire/schema.py)"
    client="$(tree_hash clients/typescript/src clients/typescript/scripts clients/typescript/package.json clients/typescript/tsconfig.build.json)$schema"
    if [ "$(cat "$STAMPS/client" 2>/dev/null)" != "$client" ] || [ ! -f clients/typescript/dist/index.js ]; then
      say "building @sessionwire/client"
      (cd clients/typescript && npm run --silent build 2>&1 | grep -v 'Unknown user config' || true)
      [ -f clients/typescript/dist/index.js ] || { echo "@sessionwire/client build failed" >&2; exit 1; }
      echo "$client" > "$STAMPS/client"
    fi
    web="$(tree_hash web)$client"
    if [ "$(cat "$STAMPS/web" 2>/dev/null)" != "$web" ] || [ ! -f src/sessionwire/static/index.html ]; then
      say "building the web UI"
      (cd web && npm run --silent build 2>&1 | grep -v 'Unknown user config' || true)
      [ -f src/sessionwire/static/index.html ] || { echo "web build failed" >&2; exit 1; }
      echo "$web" > "$STAMPS/web"
    fi
  fi
fi
