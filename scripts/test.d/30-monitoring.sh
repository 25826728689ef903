#!/usr/bin/env bash
# The operations parts in deploy/monitoring/, tested for real:
#   1. `promtool check rules` and `promtool test rules` on the alert rules and their unit tests;
#   2. the debug binary is started (embedded defaults plus the test Redis, so the Redis series
#      exist, and metering switched on against an address nobody listens on, so its series
#      exist) and every metric named by an alert or by a dashboard query must be one it exports
#      on /metrics — except Prometheus' own `up`;
#   3. a real Prometheus (Debian's binary, loopback only, a temporary data folder, a 1 s scrape
#      interval, the alert rules loaded) scrapes the service, and the service's series are read
#      back through Prometheus' HTTP query API, and its rules are all loaded and healthy.
# Installs Debian's `prometheus` package (promtool + prometheus) when missing; its service is
# never started (this step runs its own process and ends it by PID).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/study-mode-target}"
TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
MON=deploy/monitoring
# Series the alerts and the dashboard may name although the service does not export them
# (none: metering is switched on below, so its series are exported too).
METERING_SERIES=""

fail() { echo "monitoring: FAILED: $*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v promtool >/dev/null || ! [ -x /usr/bin/prometheus ]; then
  echo "installing Debian's prometheus package (promtool, prometheus)"
  as_root apt-get update -qq
  # policy-rc.d (or no systemd) keeps the package's own service from starting.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
    || fail "apt-get install prometheus failed"
fi
PROMETHEUS=/usr/bin/prometheus

echo "--- promtool ($(promtool --version 2>&1 | head -1))"
promtool check rules "$MON/alerts.yaml" || fail "the alert rules do not load"
(cd "$MON" && promtool test rules alerts.test.yaml) || fail "an alert rule test failed"

echo "--- the running service's /metrics"
cargo build --quiet --bin study-mode-api || fail "cargo build failed"
BIN="$CARGO_TARGET_DIR/debug/study-mode-api"
WORK="$(mktemp -d)"
SERVER_PID="" PROM_PID=""
stop() { if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi; }
cleanup() { stop "$PROM_PID"; stop "$SERVER_PID"; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
(cd "$WORK" && exec env -i PATH="$PATH" HOME="$WORK" HOST=127.0.0.1 PORT="$PORT" LOG_FORMAT=json \
  REDIS_URL="$TEST_REDIS_URL" REDIS_KEY_PREFIX="study_mode_monitoring_$$:" \
  METERING_ENABLED=true METERING_API_URL="http://127.0.0.1:$(free_port)" "$BIN" >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
for _ in $(seq 1 300); do
  curl -fsS "$BASE/health/ready" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 30 "$WORK/server.log" >&2; fail "the server exited at start"; }
  sleep 0.1 # polling for readiness, bounded to 30 s
done
curl -fsS "$BASE/health/ready" >/dev/null || { tail -n 30 "$WORK/server.log" >&2; fail "the server is not ready"; }
# Families with labels appear on /metrics once used: a lesson, suggestions and a chat turn
# (dev mode: auth, the chat and anon limits, the store, a stream, the offline tutor).
LESSON=01-python-basics/01-values-and-variables/01-variables
curl -fsS -o /dev/null "$BASE/content/lessons" || fail "GET /content/lessons"
curl -fsS -o /dev/null "$BASE/chatkit/suggestions?lesson_path=$LESSON" || fail "GET /chatkit/suggestions"
curl -fsS -o /dev/null -X POST "$BASE/chatkit?lesson_path=$LESSON" -H 'content-type: application/json' \
  -H 'x-user-id: monitoring' \
  -d '{"type":"threads.create","params":{"input":{"content":[{"type":"input_text","text":"Hello"}],"attachments":[],"inference_options":{}}}}' \
  || fail "POST /chatkit"
curl -fsS "$BASE/metrics" >"$WORK/metrics.txt" || fail "GET /metrics"

python3 - "$WORK/metrics.txt" "$MON/alerts.yaml" "$MON/dashboard.json" "$METERING_SERIES" <<'PY' || fail "a query names a series the service does not export"
import json, re, sys
metrics_path, alerts_path, dashboard_path, allowed = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4].split())
exported = set()
suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count", "_created"],
            "gauge": [""], "info": ["_info"], "unknown": [""], "summary": ["", "_sum", "_count"]}
for line in open(metrics_path):
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        exported.update(m.group(1) + s for s in suffixes.get(m.group(2), [""]))
    elif line and not line.startswith("#"):
        exported.add(re.split(r"[{ ]", line, 1)[0])
for name in sorted(allowed & exported):
    print(f"    note: {name} is exported now; it can leave METERING_SERIES")

NAME = re.compile(r"\b(study_mode_[A-Za-z0-9_]+)\b")
def check(where, expr, extra=()):
    bad = [n for n in NAME.findall(expr) if n not in exported and n not in allowed and n not in extra]
    if not NAME.findall(expr) and "up{" not in expr:
        bad.append("(no study_mode_ series at all)")
    return [f"{where}: {n}" for n in bad]

problems, count = [], 0
alerts = open(alerts_path).read()
for m in re.finditer(r"- alert: (\S+)\n\s+expr: (\|\n(?:\s{10,}.*\n)+|.*\n)", alerts):
    count += 1
    problems += check(f"alert {m.group(1)}", m.group(2))
if count != alerts.count("- alert:"):
    sys.exit(f"parsed {count} of {alerts.count('- alert:')} alert expressions")
dash = json.load(open(dashboard_path))
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))
for p in walk(dash["panels"]):
    for t in p.get("targets", []):
        count += 1
        problems += check(f"panel {p['title']!r} {t['refId']}", t["expr"])
for v in dash.get("templating", {}).get("list", []):
    q = v.get("query")
    if isinstance(q, dict):
        count += 1
        problems += check(f"variable {v['name']}", q["query"])
if problems:
    print("not exported by the service (nor in the metering list):", *problems, sep="\n    ", file=sys.stderr)
    sys.exit(1)
if count < 30:
    sys.exit(f"only {count} queries found: the parsing of the rules or the dashboard broke")
print(f"    {count} queries (alerts, dashboard panels, variables) name only exported series ({len(exported)} names exported)")
PY

echo "--- a real Prometheus scraping the service"
PROM_PORT="$(free_port)"
PROM="http://127.0.0.1:$PROM_PORT"
cp "$MON/alerts.yaml" "$WORK/alerts.yaml"
cat >"$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yaml]
scrape_configs:
  - job_name: study-mode-api
    static_configs:
      - targets: ["127.0.0.1:$PORT"]
YAML
"$PROMETHEUS" --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --storage.tsdb.retention.time=1h \
  >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!

# query EXPR: prints the number of series Prometheus answers for EXPR (instant query).
query() {
  curl -fsS --get "$PROM/api/v1/query" --data-urlencode "query=$1" 2>/dev/null \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["status"]=="success"; print(len(d["data"]["result"]))' 2>/dev/null \
    || echo 0
}
found=0
for _ in $(seq 1 300); do
  kill -0 "$PROM_PID" 2>/dev/null || { tail -n 20 "$WORK/prometheus.log" >&2; fail "prometheus exited"; }
  [ "$(query 'study_mode_http_requests_total{job="study-mode-api",route="/content/lessons",status="200"}')" -ge 1 ] && { found=1; break; }
  sleep 0.1 # polling for the first scrape, bounded to 30 s
done
[ "$found" = 1 ] || { tail -n 20 "$WORK/prometheus.log" >&2; fail "the service's request counter never showed up in Prometheus"; }
for expr in 'up{job="study-mode-api"} == 1' \
            'study_mode_process_open_fds{job="study-mode-api"} > 0' \
            'study_mode_process_max_fds{job="study-mode-api"} > 0' \
            'study_mode_redis_breaker_open{job="study-mode-api"} == 0' \
            'study_mode_http_request_duration_seconds_bucket{job="study-mode-api",route="/content/lessons",le="+Inf"} >= 1'; do
  n="$(query "$expr")"
  [ "$n" -ge 1 ] || fail "Prometheus has no series for: $expr"
  echo "    $expr: $n series"
done
curl -fsS "$PROM/api/v1/rules" | python3 -c '
import json, sys
rules = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
bad = [r["name"] for r in rules if r.get("health") not in ("ok", "unknown")]
assert len(rules) >= 10 and not bad, (len(rules), bad)
print(f"    Prometheus loaded {len(rules)} alert rules, none unhealthy")
' || fail "Prometheus did not load the alert rules"
echo "monitoring: OK"
