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
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE_URL="http://127.0.0.1:$PORT"
# A clean environment: the embedded defaults (SQLite in $WORK, in-process cache, offline tutor,
# development mode), the repository's sample lessons, and a small chat limit for the 429 test.
(cd "$WORK" && exec env -i PATH="$PATH" HOME="$WORK" HOST=127.0.0.1 PORT="$PORT" \
  CONTENT_DIR="$ROOT/sample-book" RATE_LIMIT_CHAT="${E2E_RATE_LIMIT_CHAT:-6/minute}" \
  LOG_FORMAT=json LOG_LEVEL=info "$BIN" >"$ARTIFACTS/server.log" 2>&1) &
SERVER_PID=$!

for _ in $(seq 1 300); do
  curl -fsS "$BASE_URL/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$ARTIFACTS/server.log" >&2; fail "the server exited at start"; }
  sleep 0.1 # polling for readiness, bounded to 30 s
done
curl -fsS "$BASE_URL/health" >/dev/null || fail "the server did not answer /health within 30 s"

status=0
BASE_URL="$BASE_URL" CHROMIUM="$CHROMIUM" E2E_NODE_MODULES="$E2E_DIR/node_modules" \
  E2E_ARTIFACTS="$ARTIFACTS" RATE_LIMIT_CHAT="${E2E_RATE_LIMIT_CHAT:-6/minute}" \
  node tests/e2e/study.spec.mjs || status=$?
if [ "$status" != 0 ]; then
  echo "--- last server log lines ($ARTIFACTS/server.log) ---" >&2
  tail -n 30 "$ARTIFACTS/server.log" >&2
  fail "see the failures above; screenshots in $ARTIFACTS"
fi
echo "browser e2e artifacts: $ARTIFACTS"
