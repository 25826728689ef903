#!/usr/bin/env bash
# The container image, built and run for real:
#   - a private dockerd (own socket, data and exec roots in a temporary folder; no bridge, no
#     iptables) unless DOCKER_HOST names a daemon; docker.io is installed when missing;
#   - scripts/build-image builds the static musl release binary (reusing the target folder)
#     and study-mode-api:latest FROM scratch (Dockerfile.prebuilt, BuildKit, nothing pulled);
#   - the image runs --read-only --cap-drop=ALL --security-opt no-new-privileges
#     --network=host, as its non-root user (checked), on its embedded defaults;
#   - /health/ready answers 200, a lesson of the compiled-in book is served, a chat turn is
#     taught by the offline tutor and stored in the /data volume;
#   - `docker stop` ends it with exit code 0 after a graceful shutdown;
#   - the image size is printed and must be under 25 MB.
# IMAGE_STEP_BIN=path skips the cargo build (a prebuilt binary, e.g. from scripts/build-static).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib/dockerd.sh
. scripts/lib/dockerd.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/study-mode-target}"
IMAGE=study-mode-api:latest
LIMIT=25000000
NAME="study-mode-image-test-$$"
LESSON=01-python-basics/01-values-and-variables/01-variables
t0=$(date +%s%N)
lap() { local ms=$((($(date +%s%N) - t0) / 1000000)); printf '  [%3d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*"; }
fail() { echo "image: FAILED: $*" >&2; [ -n "${DOCKER_HOST:-}" ] && "$DOCKER" logs "$NAME" 2>&1 | tail -n 20 >&2; exit 1; }

ensure_docker_installed
WORK="$(mktemp -d)"
OWN_DAEMON=""
cleanup() {
  "$DOCKER" rm -f -v "$NAME" >/dev/null 2>&1 || true
  if [ -n "$OWN_DAEMON" ]; then stop_private_dockerd "$WORK/docker"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
if [ -z "${DOCKER_HOST:-}" ]; then
  OWN_DAEMON=1
  start_private_dockerd "$WORK/docker" || fail "cannot start a private dockerd"
fi
lap "dockerd: $("$DOCKER" info -f '{{.ServerVersion}} {{.Driver}}')"

BIN="${IMAGE_STEP_BIN:-}"
IMAGE="$IMAGE" BIN="$BIN" scripts/build-image || fail "scripts/build-image"
lap "image built"
"$DOCKER" image inspect -f '{{.Config.User}}' "$IMAGE" | grep -qx '65532:65532' || fail "the image does not run as 65532"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
# --network=host: the daemon has no bridge; the service listens on loopback only.
"$DOCKER" run -d --name "$NAME" --network=host --read-only --cap-drop=ALL \
  --security-opt no-new-privileges:true -e HOST=127.0.0.1 -e PORT="$PORT" "$IMAGE" >/dev/null \
  || fail "docker run"
ready=""
for _ in $(seq 1 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health/ready")" = 200 ] && { ready=1; break; }
  [ "$("$DOCKER" inspect -f '{{.State.Running}}' "$NAME")" = true ] || fail "the container exited at start"
  sleep 0.1 # polling for readiness, bounded to 30 s
done
[ -n "$ready" ] || fail "/health/ready did not answer 200 within 30 s"
lap "container ready: $(curl -fsS "$BASE/health/ready")"

uids="$("$DOCKER" top "$NAME" -o pid,uid | awk 'NR > 1 { print $2 }' | sort -u)" || fail "docker top"
[ "$uids" = 65532 ] || fail "the process runs as uid '$uids', not 65532"

curl -fsS "$BASE/content/lesson?lesson_path=$LESSON" -o "$WORK/lesson.json" || fail "GET /content/lesson"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["title"] and d["body"], d' "$WORK/lesson.json" \
  || fail "the lesson has no title or body"
lap "lesson served: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["title"])' "$WORK/lesson.json")"

body='{"type":"threads.create","params":{"input":{"content":[{"type":"input_text","text":"Teach me this lesson"}],"attachments":[],"inference_options":{}}}}'
curl -fsS -X POST "$BASE/chatkit?lesson_path=$LESSON&mode=teach" -H 'content-type: application/json' \
  -H 'x-user-id: image-test' -d "$body" -o "$WORK/turn.sse" || fail "POST /chatkit"
python3 - "$WORK/turn.sse" <<'PY' || fail "the chat turn did not end with an assistant reply"
import json, sys
events = [json.loads(f[len("data: "):]) for f in open(sys.argv[1]).read().split("\n\n") if f.startswith("data: ")]
done = [e for e in events if e["type"] == "thread.item.done" and e["item"]["type"] == "assistant_message"]
assert done and done[-1]["item"]["content"][0]["text"].strip(), [e["type"] for e in events]
PY
lap "chat turn taught ($(grep -c '^data: ' "$WORK/turn.sse") events)"

"$DOCKER" stop -t 15 "$NAME" >/dev/null || fail "docker stop"
code="$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$NAME")"
[ "$code" = 0 ] || fail "exit code $code after docker stop (SIGTERM)"
"$DOCKER" logs "$NAME" 2>&1 | grep -q 'shutdown complete' || fail "no 'shutdown complete' in the log"
lap "stopped: exit code 0 after a graceful shutdown"

size="$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")"
echo "image $IMAGE: $size bytes ($(awk "BEGIN{printf \"%.1f\", $size/1000000}") MB; limit $LIMIT)"
[ "$size" -lt "$LIMIT" ] || fail "the image is $size bytes, over $LIMIT"
lap "image: OK"
