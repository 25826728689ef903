#!/usr/bin/env bash
# Browser end-to-end test of the study page (/study) in a real headless Chromium.
#
# Installs what it needs, idempotently: Debian's `chromium` (apt-get; the package index is only
# refreshed when the package is missing) and `playwright-core` (npm ci from tests/e2e's lockfile
# into a cache folder; it never downloads a browser). Builds the debug binary, starts it on a free
# port with the embedded defaults in a temporary folder, runs tests/e2e/study.spec.mjs, stops the
# server and fails with a clear message. Screenshots and the server log are kept in
# $E2E_ARTIFACTS (default: $CARGO_TARGET_DIR/e2e-artifacts).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/study-mode-target}"
E2E_DIR="${STUDY_MODE_E2E_DIR:-$HOME/.cache/study-mode-e2e}"
ARTIFACTS="${E2E_ARTIFACTS:-$CARGO_TARGET_DIR/e2e-artifacts}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

fail() { echo "browser e2e: FAILED: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    fail "need root to run: $* (install it yourself, or run as root)"; fi
}

apt_install() {
  echo "installing $* with apt-get"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

[ -x "$CHROMIUM" ] || apt_install chromium
[ -x "$CHROMIUM" ] || fail "chromium is not at $CHROMIUM after installing it"
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || fail "node >= 20 is required (found $(node --version))"

# playwright-core, pinned by tests/e2e/package-lock.json; reinstalled only when the lock changes.
mkdir -p "$E2E_DIR"
if ! cmp -s tests/e2e/package-lock.json "$E2E_DIR/package-lock.json" \
  || [ ! -f "$E2E_DIR/node_modules/playwright-core/package.json" ]; then
  echo "installing playwright-core into $E2E_DIR"
  cp tests/e2e/package.json tests/e2e/package-lock.json "$E2E_DIR/"
  (cd "$E2E_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) \
    || fail "npm ci of playwright-core failed"
fi

echo "building the debug binary"
cargo build --quiet --bin study-mode-api || fail "cargo build failed"
BIN="$CARGO_TARGET_DIR/debug/study-mode-api"

WORK="$(mktemp -d)"
rm -rf "$ARTIFACTS" && mkdir -p "$ARTIFACTS"
SERVER_PID=""
MODEL_SERVER_PID=""
MODEL_APP_PID=""
stop() {
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}
cleanup() {
  stop "$SERVER_PID"
  stop "$MODEL_APP_PID"
  stop "$MODEL_SERVER_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_app NAME PORT VAR=VALUE…: the binary in a clean environment (the embedded defaults:
# SQLite in its own folder, in-process cache, development mode) with the sample lessons.
start_app() {
  local name="$1" port="$2"
  shift 2
  mkdir -p "$WORK/$name"
  (cd "$WORK/$name" && exec env -i PATH="$PATH" HOME="$WORK/$name" HOST=127.0.0.1 PORT="$port" \
    CONTENT_DIR="$ROOT/sample-book" LOG_FORMAT=json LOG_LEVEL=info "$@" "$BIN" \
    >"$ARTIFACTS/$name.log" 2>&1) &
  STARTED_PID=$!
}

wait_ready() {
  local url="$1" pid="$2" name="$3"
  for _ in $(seq 1 300); do
    curl -fsS "$url/health" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$ARTIFACTS/$name.log" >&2; fail "the $name server exited at start"; }
    sleep 0.1 # polling for readiness, bounded to 30 s
  done
  fail "the $name server did not answer /health within 30 s"
}

# The main app: offline tutor, and a small chat limit for the 429 test.
PORT="$(free_port)"
BASE_URL="http://127.0.0.1:$PORT"
CHAT_LIMIT="${E2E_RATE_LIMIT_CHAT:-6/minute}"
# The book's pages live on another origin: the spec serves one on ORIGIN_PORT (127.0.0.1 is
# listed, localhost is not) and calls the service from it as the panel's custom fetch does.
ORIGIN_PORT="$(free_port)"
start_app server "$PORT" RATE_LIMIT_CHAT="$CHAT_LIMIT" \
  ALLOWED_ORIGINS="http://localhost:3000,http://127.0.0.1:$ORIGIN_PORT"
SERVER_PID=$STARTED_PID

# A second app whose tutor is a slow local model server (the Stop-button test).
node tests/e2e/slow-model.mjs "$WORK/model-port" >"$ARTIFACTS/slow-model.log" 2>&1 &
MODEL_SERVER_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/model-port" ] && break; sleep 0.1; done
[ -s "$WORK/model-port" ] || fail "the slow model server did not start"
MODEL_URL="http://127.0.0.1:$(cat "$WORK/model-port")"
MODEL_APP_PORT="$(free_port)"
SLOW_BASE_URL="http://127.0.0.1:$MODEL_APP_PORT"
start_app model-app "$MODEL_APP_PORT" OPENAI_API_KEY=e2e OPENAI_BASE_URL="$MODEL_URL/v1" \
  MODEL_API=responses MODEL_MAX_RETRIES=0
MODEL_APP_PID=$STARTED_PID

wait_ready "$BASE_URL" "$SERVER_PID" server
wait_ready "$SLOW_BASE_URL" "$MODEL_APP_PID" model-app

status=0
BASE_URL="$BASE_URL" SLOW_BASE_URL="$SLOW_BASE_URL" MODEL_URL="$MODEL_URL" CHROMIUM="$CHROMIUM" \
  ORIGIN_PORT="$ORIGIN_PORT" \
  E2E_NODE_MODULES="$E2E_DIR/node_modules" E2E_ARTIFACTS="$ARTIFACTS" RATE_LIMIT_CHAT="$CHAT_LIMIT" \
  node tests/e2e/study.spec.mjs || status=$?
if [ "$status" != 0 ]; then
  echo "--- last server log lines ($ARTIFACTS/server.log) ---" >&2
  tail -n 30 "$ARTIFACTS/server.log" >&2
  fail "see the failures above; screenshots in $ARTIFACTS"
fi
echo "browser e2e artifacts: $ARTIFACTS"
