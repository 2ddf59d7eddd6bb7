#!/usr/bin/env bash
# What tracing costs. Each scenario runs its roles twice, side by side on 127.0.0.1,
# identical but for span export, and loads the two in turn:
#
#   off   no OTEL_* variables (only the W3C traceparent travels)
#   on    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:<receiver>, OTEL_BSP_SCHEDULE_DELAY=1000:
#         every request's spans go over OTLP/HTTP protobuf to a local receiver
#
# Scenarios (BENCH_SCENARIOS, both by default):
#
#   search  search, as shoppers reach it: web-gateway -> api-gateway -> product, product-data
#           on PostgreSQL, session-data on Redis; the request and topology of the "search for
#           six, via web-gateway" row of scripts/bench.sh. Six spans per search: web-gateway
#           and api-gateway a server and a client span each, product a server span and the
#           PostgreSQL query's client span. The verdict is on this one: the shop's search path.
#   hop     one hop, in-memory catalog: api-gateway -> product, product-data in memory. Three
#           spans per search (api-gateway server and client, product server) around the least
#           work there is per request: the worst case for the share tracing takes.
#
# Load: POST /api/v1/product/search {"query":"","page":{"size":6}} to the entry role (the
# web-gateway, or the api-gateway for "hop"), roles at RUST_LOG=warn, with wrk (keep-alive,
# --latency). After an unmeasured warm-up of each, the two are measured in turn, off, on,
# off, on, ... for ROUNDS rounds of BENCH_SECONDS each, with a pause after every run so that
# the last export batch is out before the next run starts. Per scenario it prints the median
# req/s and the median p50 and p99 over the rounds, the overhead ((off - on) / off of the
# median req/s), CPU per request (user + system time of the scenario's roles over the run
# and the pause after it, divided by the requests wrk completed), the spans of each traced
# role by outcome (exported, dropped, failed) from its /metrics, and what the receiver got. Then the verdict, "overhead X% on the search path — under 10%:
# yes/no", and the one-hop figure as the worst case.
#
# The receiver of the measured rounds is nginx (one worker): `location = /v1/traces { return
# 200; }` reads every export body off the socket, discards it, answers 200 and logs status,
# request length and Content-Length. It is lean C, and that matters: the receiver's CPU
# comes out of the same two cores as the shop's (scripts/otlp_sink.py, which walks every
# span in Python, took 5-8% of a core at about 100,000 spans/s in earlier runs, and that
# showed as a further 5-10% off the traced req/s). A collector in a deployment runs beside
# the shop, often on another node; what is measured here is the shop's own cost of making
# and sending spans.
#
# nginx cannot count spans, so before the rounds a short, unmeasured run proves the span
# count independently: a separate set of traced roles serves VERIFY_REQUESTS searches
# (curl, one keep-alive connection) with its spans going to scripts/otlp_sink.py, and the
# spans the sink decoded must equal what the roles count as exported, and that must be
# exactly requests x spans per request. After the rounds, each traced role's exported and
# dropped spans must add up to exactly the requests it served x its spans per request (the
# requests served are wrk's count plus the few in flight when wrk stopped), dropped at most
# 1%, failed none, and every answer nginx logged a 200.
#
# On a small machine single runs differ by tens of percent (wrk, the roles, nginx and
# PostgreSQL share the cores, and neighbours come and go): the alternating rounds and the
# medians are the measurement, not any one run. With the defaults a run takes about two and
# a half minutes.
#
#   scripts/bench-tracing.sh
#   BENCH_SCENARIOS=hop BENCH_SECONDS=5 scripts/bench-tracing.sh
#
# Environment:
#   BENCH_SCENARIOS           which scenarios, in order                        ("search hop")
#   BENCH_SECONDS             seconds of each measured run                     (8)
#   BENCH_CONNS               wrk connections                                  (16)
#   WRK_THREADS               wrk threads                                      (2)
#   ROUNDS                    off/on rounds per scenario                       (3)
#   WARMUP_SECONDS            unmeasured warm-up of each mode                  (2)
#   VERIFY_REQUESTS           searches of the span-count check, per scenario   (1000)
#   WORKERS                   worker threads per role   (the binary's default: one per CPU)
#   REDIS_URL                 "search": session-data             (redis://127.0.0.1:6379)
#   POSTGRES_URL              "search": product-data, a database of its own, created when
#                             missing and loaded with `ecommerce migrate`
#                             (postgres://postgres@127.0.0.1:5432/products_bench_tracing)
#   OTEL_BSP_SCHEDULE_DELAY   "on" only: export interval, ms                   (1000)
#   OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE
#                             "on" only, when set (the binary's defaults: 2048, 512)
# Every other OTEL_* and ECOMMERCE_* variable is cleared for the roles, so both modes run
# with the same, known settings.
#
# Exit status: 0 when measured (whatever the verdict); 3 when measured but something is
# wrong with the figures (request errors or non-2xx answers, more than 1% of spans dropped,
# spans failed, missing or too many, a receiver answer other than 200, the sink's count
# differing from the roles'): each is printed as "PROBLEM: ..."; 1 when it could not
# measure, or when Redis or PostgreSQL do not answer and "search" was asked for (the other
# scenarios still run and print).
#
# Logs, wrk output, nginx's log and the results: target/bench-tracing/. Everything it starts
# (the roles, the sink, nginx) is stopped on exit, failure or Ctrl-C included.
#
# Needs cargo, wrk and nginx (installed with apt-get when missing and root), python3, curl,
# and for "search" Redis and PostgreSQL (psql to create the database).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
NAME=bench-tracing
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
COMMAND_LINE="$(for v in BENCH_SCENARIOS BENCH_SECONDS BENCH_CONNS WRK_THREADS ROUNDS WARMUP_SECONDS \
  VERIFY_REQUESTS WORKERS OTEL_BSP_SCHEDULE_DELAY OTEL_BSP_MAX_QUEUE_SIZE OTEL_BSP_MAX_EXPORT_BATCH_SIZE; do
  if [ -n "${!v:-}" ]; then printf '%s=%q ' "$v" "${!v}"; fi; done)scripts/bench-tracing.sh"

BENCH_SCENARIOS=${BENCH_SCENARIOS:-search hop}
BENCH_SECONDS=${BENCH_SECONDS:-8}
BENCH_CONNS=${BENCH_CONNS:-16}
WRK_THREADS=${WRK_THREADS:-2}
ROUNDS=${ROUNDS:-3}
WARMUP_SECONDS=${WARMUP_SECONDS:-2}
VERIFY_REQUESTS=${VERIFY_REQUESTS:-1000}
WORKERS=${WORKERS:-}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/products_bench_tracing}
BSP_DELAY=${OTEL_BSP_SCHEDULE_DELAY:-1000}
BSP_QUEUE=${OTEL_BSP_MAX_QUEUE_SIZE:-}
BSP_BATCH=${OTEL_BSP_MAX_EXPORT_BATCH_SIZE:-}

WORK="$ROOT/target/bench-tracing"
RESULTS="$WORK/results.jsonl"
BIN="$ROOT/target/release/ecommerce"
SEARCH_BODY='{"query":"","page":{"size":6}}'
SEARCH_PATH=/api/v1/product/search

say() { echo "bench-tracing: $*"; }
die() { echo "bench-tracing: error: $*" >&2; exit 1; }

whole() { # name value min max
  [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] || die "$1 must be $3-$4, not '$2'"
}
whole BENCH_SECONDS "$BENCH_SECONDS" 1 600
whole BENCH_CONNS "$BENCH_CONNS" 1 1024
whole WRK_THREADS "$WRK_THREADS" 1 64
whole ROUNDS "$ROUNDS" 1 20
whole WARMUP_SECONDS "$WARMUP_SECONDS" 0 60
whole VERIFY_REQUESTS "$VERIFY_REQUESTS" 1 100000
whole OTEL_BSP_SCHEDULE_DELAY "$BSP_DELAY" 1 60000
[ -z "$WORKERS" ] || whole WORKERS "$WORKERS" 0 64
[ -z "$BSP_QUEUE" ] || whole OTEL_BSP_MAX_QUEUE_SIZE "$BSP_QUEUE" 1 1048576
[ -z "$BSP_BATCH" ] || whole OTEL_BSP_MAX_EXPORT_BATCH_SIZE "$BSP_BATCH" 1 1048576

SCENARIOS=()
for s in $BENCH_SCENARIOS; do
  case "$s" in search|hop) ;; *) die "BENCH_SCENARIOS: unknown scenario '$s' (search, hop)" ;; esac
  [[ " ${SCENARIOS[*]:-} " != *" $s "* ]] || die "BENCH_SCENARIOS names '$s' twice"
  SCENARIOS+=("$s")
done
[ ${#SCENARIOS[@]} -gt 0 ] || die "BENCH_SCENARIOS names no scenario (search, hop)"

# The roles of each scenario, services first (the order they start in), and the entry.
roles_of() { case "$1" in search) echo "product api-gateway web-gateway" ;; hop) echo "product api-gateway" ;; esac; }
entry_of() { case "$1" in search) echo web-gateway ;; hop) echo api-gateway ;; esac; }

# The roles see no OTEL_* or ECOMMERCE_* settings but those given below.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(OTEL_|ECOMMERCE_)' || true)

# ---- what we start, and how it all stops --------------------------------------------

declare -A PIDS=() # what -> PID, for everything started here
STARTED=()         # what, in the order started
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  # The last started first: gateways before the services they call, the receivers last.
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    if [ -n "${PIDS[${STARTED[$i]}]:-}" ]; then stop_pid "${PIDS[${STARTED[$i]}]}" "${STARTED[$i]}"; fi
  done
  if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then echo "bench-tracing: failed (exit $rc); logs in $WORK" >&2; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


started() { PIDS[$1]=$2; STARTED+=("$1"); }
stop() { # what: stop it now, and forget it
  if [ -n "${PIDS[$1]:-}" ]; then stop_pid "${PIDS[$1]}" "$1"; unset "PIDS[$1]"; fi
}

alive() { # what: the process started as `what` is still running
  local pid=${PIDS[$1]:-}
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    [ "$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" != Z ]
}


free_ports() { # n: n distinct free ports on 127.0.0.1
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

host_port_of() { # scheme://[user[:pw]@]host[:port][/...] default_port -> "host port"
  local rest=${1#*://} hostport
  rest=${rest%%/*}
  rest=${rest%%\?*}
  hostport=${rest##*@}
  case "$hostport" in
    *:*) echo "${hostport%%:*} ${hostport##*:}" ;;
    *) echo "${hostport:-127.0.0.1} $2" ;;
  esac
}

# ---- tools ---------------------------------------------------------------------------

ensure_wrk_and_nginx
command -v python3 >/dev/null || die "python3 is needed (the sink, the report)"
command -v curl >/dev/null || die "curl is needed"
command -v cargo >/dev/null || die "cargo is needed"

mkdir -p "$WORK"
rm -rf "$WORK"/*.log "$WORK"/wrk-*.txt "$WORK"/*.metrics "$WORK"/*.json "$WORK"/*.jsonl "$WORK"/*.lua \
  "$WORK"/sink.* "$WORK"/verify-* "$WORK"/nginx "$WORK"/report.md
: >"$RESULTS"

say "building the release binary (cargo build --release --locked)"
cargo build --release --locked --quiet || die "cargo build --release --locked failed"
[ -x "$BIN" ] || die "no binary at $BIN"

# ---- the stores of "search" ----------------------------------------------------------

SKIPPED=""
prepare_stores() { # -> 0 when Redis and PostgreSQL are ready; else the reason in SKIPPED
  local hp db admin exists
  # shellcheck disable=SC2086
  hp=$(host_port_of "$REDIS_URL" 6379); answers $hp || { SKIPPED="Redis does not answer at $REDIS_URL"; return 1; }
  # shellcheck disable=SC2086
  hp=$(host_port_of "$POSTGRES_URL" 5432); answers $hp || { SKIPPED="PostgreSQL does not answer at $POSTGRES_URL"; return 1; }
  db=${POSTGRES_URL%%\?*}
  db=${db##*/}
  [[ "$db" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { SKIPPED="POSTGRES_URL must name a plain database, not '$db'"; return 1; }
  if command -v psql >/dev/null; then
    admin=${POSTGRES_URL%%\?*}
    admin="${admin%/*}/postgres"
    exists=$(psql "$admin" -XAtqc "select 1 from pg_database where datname = '$db'" 2>&1) ||
      { SKIPPED="cannot query PostgreSQL at $admin: $exists"; return 1; }
    if [ "$exists" != 1 ]; then
      say "creating database $db"
      psql "$admin" -Xqc "create database \"$db\"" >/dev/null 2>"$WORK/createdb.log" ||
        { SKIPPED="cannot create database $db: $(cat "$WORK/createdb.log")"; return 1; }
    fi
  else
    say "psql not found: assuming database $db exists"
  fi
  say "migrating product-data ($BIN migrate --product-data $POSTGRES_URL)"
  "$BIN" migrate --product-data "$POSTGRES_URL" >"$WORK/migrate.log" 2>&1 ||
    { SKIPPED="ecommerce migrate failed: $(tail -n 3 "$WORK/migrate.log")"; return 1; }
}
if [[ " ${SCENARIOS[*]} " == *" search "* ]]; then
  if ! prepare_stores; then
    echo "bench-tracing: SKIPPED: scenario \"search\" (the search path): $SKIPPED." \
      "Start Redis and PostgreSQL (or set REDIS_URL, POSTGRES_URL), or run BENCH_SCENARIOS=hop." >&2
    remaining=()
    for s in "${SCENARIOS[@]}"; do [ "$s" = search ] || remaining+=("$s"); done
    [ ${#remaining[@]} -gt 0 ] || die "nothing left to measure"
    SCENARIOS=("${remaining[@]}")
  fi
fi

# ---- the roles -----------------------------------------------------------------------

declare -A PORT=() # scenario-mode-role -> port

start_role() { # scenario mode role endpoint (empty: no export)
  local scenario=$1 mode=$2 role=$3 endpoint=$4 what="$1-$2-$3" port args
  port=${PORT[$what]}
  args=(serve --role "$role" --listen "127.0.0.1:$port")
  [ -z "$WORKERS" ] || args+=(--workers "$WORKERS")
  case "$role" in
    product) if [ "$scenario" = search ]; then args+=(--product-data "$POSTGRES_URL"); else args+=(--product-data memory); fi ;;
    api-gateway) args+=(--upstream "product=http://127.0.0.1:${PORT[$scenario-$mode-product]}") ;;
    web-gateway) args+=(--api-gateway-url "http://127.0.0.1:${PORT[$scenario-$mode-api-gateway]}" --session-data "$REDIS_URL") ;;
  esac
  if [ -n "$endpoint" ]; then
    local otel=(OTEL_EXPORTER_OTLP_ENDPOINT="$endpoint" OTEL_BSP_SCHEDULE_DELAY="$BSP_DELAY")
    [ -z "$BSP_QUEUE" ] || otel+=(OTEL_BSP_MAX_QUEUE_SIZE="$BSP_QUEUE")
    [ -z "$BSP_BATCH" ] || otel+=(OTEL_BSP_MAX_EXPORT_BATCH_SIZE="$BSP_BATCH")
    env "${otel[@]}" RUST_LOG=warn "$BIN" "${args[@]}" </dev/null >"$WORK/$what.log" 2>&1 &
  else
    RUST_LOG=warn "$BIN" "${args[@]}" </dev/null >"$WORK/$what.log" 2>&1 &
  fi
  started "$what" $!
}

wait_ready() { # what
  local i code=000
  for i in $(seq 200); do
    alive "$1" || { tail -n 20 "$WORK/$1.log" >&2; die "$1 exited during start"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:${PORT[$1]}/readyz" || true)
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  tail -n 20 "$WORK/$1.log" >&2
  die "$1 not ready after 20 s (last /readyz: $code)"
}

start_mode() { # scenario mode endpoint: its roles, services first, each ready before the next
  local role ports i=0
  read -r -a ports <<<"$(free_ports 3)"
  for role in $(roles_of "$1"); do PORT[$1-$2-$role]=${ports[$i]}; i=$((i + 1)); done
  for role in $(roles_of "$1"); do
    start_role "$1" "$2" "$role" "$3"
    wait_ready "$1-$2-$role"
  done
}

stop_mode() { # scenario mode: gateways first
  local role roles
  read -r -a roles <<<"$(roles_of "$1")"
  for ((i = ${#roles[@]} - 1; i >= 0; i--)); do stop "$1-$2-${roles[$i]}"; done
}

entry_url() { echo "http://127.0.0.1:${PORT[$1-$2-$(entry_of "$1")]}$SEARCH_PATH"; }

metrics() { # what -> the role's /metrics
  curl -sf --max-time 5 "http://127.0.0.1:${PORT[$1]}/metrics" || die "GET /metrics of $1 failed"
}

save_metrics() { # scenario mode
  local role
  for role in $(roles_of "$1"); do metrics "$1-$2-$role" >"$WORK/$1-$2-$role.metrics"; done
}

search_once() { # scenario mode: one search answers with results
  curl -sf --max-time 5 -H 'Content-Type: application/json' -d "$SEARCH_BODY" "$(entry_url "$1" "$2")" |
    grep -q '"results"' || die "search via the $2 $(entry_of "$1") of \"$1\" does not answer"
}

SETTLE=$(python3 -c "print($BSP_DELAY / 1000 + 1)")

# ---- 1. the span count, proven with the sink (not measured) ----------------------------

python3 "$ROOT/scripts/otlp_sink.py" --port 0 --port-file "$WORK/sink.port" \
  </dev/null >"$WORK/sink.stats.json" 2>"$WORK/sink.log" &
started sink $!
for _ in $(seq 100); do [ -s "$WORK/sink.port" ] && break; alive sink || break; sleep 0.05; done
[ -s "$WORK/sink.port" ] || { cat "$WORK/sink.log" >&2; die "the OTLP sink did not start"; }
SINK="http://127.0.0.1:$(cat "$WORK/sink.port")"
curl -sf --max-time 2 "$SINK/stats" >/dev/null || die "the OTLP sink does not answer at $SINK"

for scenario in "${SCENARIOS[@]}"; do
  say "$scenario: span count check: $VERIFY_REQUESTS searches (curl, one connection) with spans to the sink ($SINK)"
  start_mode "$scenario" check "$SINK"
  curl -sf --max-time 5 "$SINK/stats" >"$WORK/verify-$scenario-sink-before.json" || die "GET $SINK/stats failed"
  search_once "$scenario" check
  url=$(entry_url "$scenario" check)
  for _ in $(seq "$VERIFY_REQUESTS"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url"; done \
    >"$WORK/verify-$scenario.curl"
  timeout $((VERIFY_REQUESTS / 20 + 60)) curl -s --max-time 10 -H 'Content-Type: application/json' \
    -d "$SEARCH_BODY" -w '%{http_code}\n' -K "$WORK/verify-$scenario.curl" >"$WORK/verify-$scenario.codes" ||
    true
  ok=$(grep -c '^200$' "$WORK/verify-$scenario.codes" || true)
  [ "$ok" = "$VERIFY_REQUESTS" ] ||
    die "span count check of \"$scenario\": $ok of $VERIFY_REQUESTS searches answered 200 (see $WORK/verify-$scenario.codes)"
  sleep "$SETTLE"
  save_metrics "$scenario" check
  curl -sf --max-time 5 "$SINK/stats" >"$WORK/verify-$scenario-sink-after.json" || die "GET $SINK/stats failed"
  stop_mode "$scenario" check
done
stop sink

# ---- 2. the measured receiver: nginx ----------------------------------------------------

NGX="$WORK/nginx"
mkdir -p "$NGX"
read -r NGINX_PORT <<<"$(free_ports 1)"
# $request_length does not count a body that nginx discards (only the request line and
# headers), so the body's size is logged from Content-Length; the exporter always sends one.
cat >"$NGX/nginx.conf" <<EOF
# Generated by scripts/bench-tracing.sh: an OTLP/HTTP traces endpoint that reads each body,
# discards it and answers 200, logging status, request length and body length.
worker_processes 1;
pid $NGX/nginx.pid;
error_log $NGX/nginx-error.log;
events { worker_connections 256; }
http {
  log_format otlp '\$status \$request_length \$content_length';
  access_log $NGX/access.log otlp;
  client_body_temp_path $NGX/body;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    client_max_body_size 16m;
    client_body_buffer_size 1m;
    location = /v1/traces { return 200; }
  }
}
EOF
"$NGINX" -e "$NGX/nginx-error.log" -p "$NGX" -c "$NGX/nginx.conf" -g 'daemon off;' \
  </dev/null >"$NGX/stdout.log" 2>&1 &
started nginx $!
for _ in $(seq 50); do answers 127.0.0.1 "$NGINX_PORT" && break; alive nginx || break; sleep 0.1; done
RECEIVER="http://127.0.0.1:$NGINX_PORT"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H 'Content-Type: application/x-protobuf' \
  --data-binary '' "$RECEIVER/v1/traces" || true)
[ "$code" = 200 ] || { cat "$NGX/nginx-error.log" "$NGX/stdout.log" >&2 || true; die "nginx does not answer 200 at $RECEIVER/v1/traces ($code)"; }

nginx_ticks() { # master and worker(s)
  local sum=0 pid stat
  for pid in "${PIDS[nginx]}" $(ps -o pid= --ppid "${PIDS[nginx]}" 2>/dev/null); do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    stat=${stat##*) }
    sum=$((sum + $(awk '{print $12 + $13}' <<<"$stat")))
  done
  echo "$sum"
}

# ---- 3. load ----------------------------------------------------------------------------

wrk_script "$WORK/search.lua" POST "$SEARCH_BODY"

THREADS=$WRK_THREADS
[ "$THREADS" -le "$BENCH_CONNS" ] || THREADS=$BENCH_CONNS
CLK_TCK=$(getconf CLK_TCK)

check_alive() { # scenario
  local what
  for what in $(for r in $(roles_of "$1"); do echo "$1-off-$r $1-on-$r"; done) nginx; do
    alive "$what" || { tail -n 20 "$WORK/$what.log" >&2 || true; die "$what stopped during the run"; }
  done
}

mode_ticks() { # scenario mode: user + system CPU of the mode's roles, in clock ticks
  local sum=0 role stat
  for role in $(roles_of "$1"); do
    stat=$(cat "/proc/${PIDS[$1-$2-$role]}/stat" 2>/dev/null) || continue
    stat=${stat##*) } # the fields after "(comm) "; utime and stime are the 12th and 13th
    sum=$((sum + $(awk '{print $12 + $13}' <<<"$stat")))
  done
  echo "$sum"
}

wrk_run() { # scenario mode round seconds: one bounded wrk run; prints and records it
  local scenario=$1 mode=$2 round=$3 seconds=$4 out line label shop0 ngx0 shop1 ngx1
  if [ "$round" = 0 ]; then label=warmup; else label="round$round"; fi
  out="$WORK/wrk-$scenario-$label-$mode.txt"
  shop0=$(mode_ticks "$scenario" "$mode") ngx0=$(nginx_ticks)
  timeout $((seconds + 30)) wrk -t"$THREADS" -c"$BENCH_CONNS" -d"${seconds}s" --timeout 5s --latency \
    -s "$WORK/search.lua" "$(entry_url "$scenario" "$mode")" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk failed: $scenario $label $mode"; }
  line=$(grep '^WRKRESULT ' "$out") || { cat "$out" >&2; die "wrk printed no result: $scenario $label $mode"; }
  # After each run, the export interval and a second more, so that the last batch is out
  # (and its cost paid) before the next run starts. The same pause after both modes.
  sleep "$SETTLE"
  check_alive "$scenario"
  shop1=$(mode_ticks "$scenario" "$mode") ngx1=$(nginx_ticks)
  python3 - "$scenario" "$mode" "$round" "${line#WRKRESULT }" "$CLK_TCK" $((shop1 - shop0)) \
    $((ngx1 - ngx0)) >>"$RESULTS" <<'EOF'
import json, sys
scenario, mode, round_, fields = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
tck, shop_t, ngx_t = (int(x) for x in sys.argv[5:8])
f = {k: float(v) for k, v in (kv.split("=") for kv in fields.split())}
row = {
    "scenario": scenario, "mode": mode, "round": round_, "requests": int(f["requests"]),
    "rps": round(f["requests"] / (f["duration_us"] / 1e6), 1),
    "p50_ms": f["p50_us"] / 1000, "p99_ms": f["p99_us"] / 1000,
    "non2xx": int(f["status"]),
    "socket_errors": int(f["connect"] + f["read"] + f["write"] + f["timeout"]),
    "shop_cpu_s": shop_t / tck, "receiver_cpu_s": ngx_t / tck,
}
row["cpu_us_per_request"] = round(shop_t / tck / max(row["requests"], 1) * 1e6, 2)
print(json.dumps(row))
EOF
  tail -n 1 "$RESULTS" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
label = "round %d" % r["round"] if r["round"] else "warm-up"
print("bench-tracing:   %-6s %-8s tracing %-3s %9s req/s  p50 %6.2f ms  p99 %6.2f ms  CPU %5.1f us/req  errors %d" % (
    r["scenario"], label, r["mode"], format(r["rps"], ",.0f"), r["p50_ms"], r["p99_ms"],
    r["cpu_us_per_request"], r["non2xx"] + r["socket_errors"]))'
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for scenario in "${SCENARIOS[@]}"; do
  say "$scenario: starting $(roles_of "$scenario" | tr ' ' '\n' | tac | paste -sd' ' | sed 's/ / -> /g') twice:" \
    "off, and on (spans to $RECEIVER/v1/traces every ${BSP_DELAY} ms)"
  # What nginx logs from here until these roles are stopped is theirs.
  wc -l <"$NGX/access.log" | tr -d ' ' >"$WORK/nginx-$scenario.from"
  start_mode "$scenario" off ""
  start_mode "$scenario" on "$RECEIVER"
  search_once "$scenario" off
  search_once "$scenario" on
  # Tracing is off where it should be, and on where it should be.
  for mode in off on; do
    for role in $(roles_of "$scenario"); do
      n=$(metrics "$scenario-$mode-$role" | grep -c '^ecommerce_telemetry_spans_total{' || true)
      if [ $mode = off ]; then
        [ "$n" = 0 ] || die "the 'off' $role of \"$scenario\" exports spans"
      else
        [ "$n" -gt 0 ] || die "the 'on' $role shows no ecommerce_telemetry_spans_total: this binary does not export spans"
      fi
    done
  done

  if [ "$WARMUP_SECONDS" -gt 0 ]; then
    say "$scenario: warm-up: ${WARMUP_SECONDS}s of each mode (not measured)"
    wrk_run "$scenario" off 0 "$WARMUP_SECONDS"
    wrk_run "$scenario" on 0 "$WARMUP_SECONDS"
  fi
  say "$scenario: measuring: $ROUNDS round(s) of off then on, ${BENCH_SECONDS}s each, $BENCH_CONNS connections" \
    "(wrk -t$THREADS), ${SETTLE}s pause after each run"
  for round in $(seq "$ROUNDS"); do
    wrk_run "$scenario" off "$round" "$BENCH_SECONDS"
    wrk_run "$scenario" on "$round" "$BENCH_SECONDS"
  done
  save_metrics "$scenario" off
  save_metrics "$scenario" on
  stop_mode "$scenario" on
  stop_mode "$scenario" off
  wc -l <"$NGX/access.log" | tr -d ' ' >"$WORK/nginx-$scenario.to"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
stop nginx

# ---- 4. the report ----------------------------------------------------------------------

machine_line() {
  local model
  model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  printf '%s CPUs (%s), %s GiB, %s %s, %s; wrk %s, %s' \
    "$(nproc)" "${model:-unknown}" \
    "$(awk '/^MemTotal:/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)" \
    "$(uname -s)" "$(uname -r)" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    "$(wrk -v 2>&1 | sed -n 's/^wrk \([^ ]*\).*/\1/p' | head -n 1)" \
    "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
  if [[ " ${SCENARIOS[*]} " == *" search "* ]]; then
    printf ', PostgreSQL %s, Redis %s' \
      "$(psql "$POSTGRES_URL" -XAtqc 'show server_version' 2>/dev/null | cut -d' ' -f1 || true)" \
      "$(redis-cli -u "$REDIS_URL" info server 2>/dev/null | sed -n 's/^redis_version:\([^\r]*\).*/\1/p' || true)"
  fi
  printf '; load average before %s, after %s' "$LOAD_BEFORE" "$LOAD_AFTER"
}

rc=0
python3 - "$RESULTS" "$WORK" "$COMMAND_LINE" "$(machine_line)" "$BENCH_SECONDS" "$BENCH_CONNS" \
  "$THREADS" "$ROUNDS" "$BSP_DELAY" "${BSP_QUEUE:-2048 (default)}" "${BSP_BATCH:-512 (default)}" \
  "$VERIFY_REQUESTS" "$WARMUP_SECONDS" "${SCENARIOS[*]}" "$SKIPPED" <<'EOF' || rc=$?
import json, re, statistics, sys

(results, work, command, machine, seconds, conns, threads, rounds, delay, queue, batch,
 verify_requests, warmup, scenarios, skipped) = sys.argv[1:16]
verify_requests, conns, warmup = int(verify_requests), int(conns), int(warmup)
scenarios = scenarios.split()
rows = [json.loads(l) for l in open(results) if l.strip()]
problems = []

SCENARIO = {
    "search": {
        "roles": ["web-gateway", "api-gateway", "product"],
        "spans": {"web-gateway": 2, "api-gateway": 2, "product": 2},
        "title": "search, as shoppers reach it",
        "what": "web-gateway → api-gateway → product, product-data on PostgreSQL, session-data "
                "on Redis (the \"search for six, via web-gateway\" request of `scripts/bench.sh`)",
        "spans_text": "web-gateway and api-gateway a server and a client span each, product its "
                      "server span and the PostgreSQL query's client span",
    },
    "hop": {
        "roles": ["api-gateway", "product"],
        "spans": {"api-gateway": 2, "product": 1},
        "title": "one hop, in-memory catalog (least work per span: the worst case)",
        "what": "api-gateway → product, product-data in memory",
        "spans_text": "api-gateway a server and a client span, product its server span",
    },
}

def metric_rows(path):
    out = []
    for line in open(path):
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}\s+(\S+)$', line.strip())
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
            out.append((m.group(1), labels, float(m.group(3))))
    return out

def spans(path):
    got = {"exported": 0, "dropped": 0, "failed": 0}
    for name, labels, value in metric_rows(path):
        if name == "ecommerce_telemetry_spans_total" and labels.get("outcome") in got:
            got[labels["outcome"]] += int(value)
    return got

def searches(path):  # POST requests the role served: here, only searches
    return int(sum(v for n, l, v in metric_rows(path)
                   if n == "http_server_requests_total" and l.get("method") == "POST"))

def n(x):
    return f"{x:,}"

# ---- the span count check, with the sink ----
verify_table = [
    "| scenario | searches (curl) | role | requests served | spans exported | spans per request | sink decoded |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
]
for s in scenarios:
    sc = SCENARIO[s]
    before = json.load(open(f"{work}/verify-{s}-sink-before.json"))
    after = json.load(open(f"{work}/verify-{s}-sink-after.json"))
    sent = verify_requests + 1  # and the one search that checks the roles answer
    for role in sc["roles"]:
        path = f"{work}/{s}-check-{role}.metrics"
        got, served = spans(path), searches(path)
        decoded = after["spans_by_service"].get(role, 0) - before["spans_by_service"].get(role, 0)
        expected = sent * sc["spans"][role]
        verify_table.append(f"| {s} | {n(sent)} | {role} | {n(served)} | {n(got['exported'])} | "
                            f"{got['exported'] / served if served else 0:.2f} | {n(decoded)} |")
        if served != sent:
            problems.append(f"span count check, {s}: {role} served {n(served)} searches, {n(sent)} sent")
        if got["exported"] != expected or got["dropped"] or got["failed"]:
            problems.append(f"span count check, {s}: {role} exported {n(got['exported'])} spans "
                            f"(dropped {n(got['dropped'])}, failed {n(got['failed'])}), expected exactly "
                            f"{n(expected)} ({n(sent)} × {sc['spans'][role]})")
        if decoded != got["exported"]:
            problems.append(f"span count check, {s}: the sink decoded {n(decoded)} spans of {role}, "
                            f"the role exported {n(got['exported'])}")
    if after["undecodable"] != before["undecodable"] or after["rejected"] != before["rejected"]:
        problems.append(f"span count check, {s}: the sink got undecodable bodies or refused requests")
    SCENARIO[s]["verify_bytes_per_span"] = ((after["bytes"] - before["bytes"])
                                            / max(after["spans"] - before["spans"], 1))

def errors(rs):
    non2xx = sum(r["non2xx"] for r in rs)
    k = non2xx + sum(r["socket_errors"] for r in rs)
    return "0" if not k else f"**{n(k)}** ({n(non2xx)} non-2xx)"

for r in rows:
    if r["non2xx"] or r["socket_errors"]:
        what = "warm-up" if r["round"] == 0 else f"round {r['round']}"
        problems.append(f"{r['scenario']}, {what}, tracing {r['mode']}: {n(r['non2xx'])} non-2xx answers, "
                        f"{n(r['socket_errors'])} socket errors (connect/read/write/timeout)")

sections, overheads = [], {}
for s in scenarios:
    sc = SCENARIO[s]
    measured = [r for r in rows if r["scenario"] == s and r["round"] > 0]
    modes = {}
    for mode in ("off", "on"):
        runs = sorted((r for r in measured if r["mode"] == mode), key=lambda r: r["round"])
        modes[mode] = {
            "rps": statistics.median(r["rps"] for r in runs),
            "p50": statistics.median(r["p50_ms"] for r in runs),
            "p99": statistics.median(r["p99_ms"] for r in runs),
            "each": [r["rps"] for r in runs],
            "cpu": statistics.median(r["cpu_us_per_request"] for r in runs),
            "receiver_cpu": sum(r["receiver_cpu_s"] for r in runs),
            "seconds": sum(r["requests"] / r["rps"] for r in runs if r["rps"]),
            "runs": runs,
        }
    off, on = modes["off"], modes["on"]
    overhead = (off["rps"] - on["rps"]) / off["rps"] * 100
    cpu_overhead = (on["cpu"] - off["cpu"]) / off["cpu"] * 100
    overheads[s] = (overhead, on["cpu"] - off["cpu"], cpu_overhead)

    table = [
        "| tracing | req/s (median) | p50 (median) | p99 (median) | req/s of each round | CPU per request | errors |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for mode, label in (("off", "off"), ("on", "on, OTLP to nginx")):
        m = modes[mode]
        table.append(f"| {label} | {m['rps']:,.0f} | {m['p50']:.2f} ms | {m['p99']:.2f} ms | "
                     f"{' / '.join(f'{x:,.0f}' for x in m['each'])} | {m['cpu']:.1f} µs | {errors(m['runs'])} |")
    table.append(f"| on vs off | {-overhead:+.1f}% | {on['p50'] - off['p50']:+.2f} ms | "
                 f"{on['p99'] - off['p99']:+.2f} ms | | {on['cpu'] - off['cpu']:+.1f} µs ({cpu_overhead:+.0f}%) | |")

    # ---- spans of the measured "on" roles ----
    all_on = [r for r in rows if r["scenario"] == s and r["mode"] == "on"]
    wrk_done = sum(r["requests"] for r in all_on) + 1  # and the one search that checks the roles
    entry = sc["roles"][0]
    served_entry = searches(f"{work}/{s}-on-{entry}.metrics")
    span_table = [
        "| traced role | requests served | spans exported | dropped | failed | spans per request |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    tot = {"exported": 0, "dropped": 0, "failed": 0}
    expected_total = 0
    for role in sc["roles"]:
        path = f"{work}/{s}-on-{role}.metrics"
        got, served = spans(path), searches(path)
        produced = sum(got.values())
        per = sc["spans"][role]
        expected = served * per
        expected_total += expected
        for k in tot:
            tot[k] += got[k]
        span_table.append(f"| {role} | {n(served)} | {n(got['exported'])} | {n(got['dropped'])} | "
                          f"{n(got['failed'])} | {produced / served if served else 0:.2f} (expected {per}) |")
        if served != served_entry:
            problems.append(f"{s}: {role} served {n(served)} searches, {entry} {n(served_entry)}")
        if got["exported"] + got["dropped"] != expected:
            problems.append(f"{s}: {role} exported {n(got['exported'])} and dropped {n(got['dropped'])} spans, "
                            f"expected exactly {n(expected)} ({n(served)} served × {per})")
    produced = sum(tot.values())
    span_table.append(f"| all | {n(served_entry)} | {n(tot['exported'])} | {n(tot['dropped'])} | "
                      f"{n(tot['failed'])} | {produced / served_entry if served_entry else 0:.2f} "
                      f"(expected {sum(sc['spans'].values())}) |")
    if produced and tot["dropped"] / produced > 0.01:
        problems.append(f"{s}: {n(tot['dropped'])} of {n(produced)} spans dropped "
                        f"({tot['dropped'] / produced * 100:.1f}%, over 1%): the export queue was full")
    if tot["failed"]:
        problems.append(f"{s}: {n(tot['failed'])} spans failed (the receiver refused them or did not answer)")
    runs_on = len(all_on)
    in_flight = served_entry - wrk_done
    if in_flight < 0 or in_flight > runs_on * conns:
        problems.append(f"{s}: the {entry} served {n(served_entry)} searches, wrk completed {n(wrk_done - 1)} "
                        f"(+1 check): more apart than the {conns} connections of {runs_on} runs explain")

    # ---- what nginx got ----
    lo = int(open(f"{work}/nginx-{s}.from").read())
    hi = int(open(f"{work}/nginx-{s}.to").read())
    lines = open(f"{work}/nginx/access.log").read().splitlines()[lo:hi]
    statuses, body_bytes, req_bytes = {}, 0, 0
    for line in lines:
        status, req_len, content_len = line.split()
        statuses[status] = statuses.get(status, 0) + 1
        req_bytes += int(req_len)
        body_bytes += int(content_len) if content_len.isdigit() else 0
    if set(statuses) - {"200"}:
        problems.append(f"{s}: nginx answered " + ", ".join(f"{v:,} × {k}" for k, v in sorted(statuses.items())))
    if not lines:
        problems.append(f"{s}: nginx logged no export request")
    receiver = (f"nginx received {n(len(lines))} export requests, "
                + ("all answered 200" if set(statuses) == {"200"} else
                   "answered " + ", ".join(f"{v:,} × {k}" for k, v in sorted(statuses.items())))
                + f", {body_bytes / 1e6:,.1f} MB of bodies ({body_bytes / max(tot['exported'], 1):.0f} bytes "
                f"per exported span; {sc['verify_bytes_per_span']:.0f} in the sink's check) and "
                f"{(req_bytes) / 1e6:,.1f} MB of request lines and headers; "
                f"{tot['exported'] / max(len(lines), 1):,.0f} spans per export request. nginx's CPU: "
                f"{on['receiver_cpu']:.2f} s over {on['seconds']:.0f} s of traced load "
                f"({on['receiver_cpu'] / max(on['seconds'], 1e-9) * 100:.1f}% of a core).")
    counts = (f"Requests: wrk completed {n(wrk_done - 1)} with tracing on (warm-up and rounds) and one "
              f"search checked the roles; the {entry} served {n(served_entry)}: {n(in_flight)} were in "
              f"flight when wrk stopped (answered, not counted by wrk). Spans: exported + dropped = "
              f"requests served × spans per request exactly, per role.")

    sections.append(f"""### {sc['title']}

{sc['what']}; {sum(sc['spans'].values())} spans per search ({sc['spans_text']}).

{chr(10).join(table)}

{chr(10).join(span_table)}

{receiver}
{counts}
""")

verdict = []
if "search" in overheads:
    o = overheads["search"][0]
    verdict.append(f"overhead {o:.1f}% on the search path — under 10%: {'yes' if o < 10 else 'no'}")
else:
    verdict.append("no verdict on the search path: scenario \"search\" was not measured"
                   + (f" ({skipped})" if skipped else ""))
if "hop" in overheads:
    o, dcpu, pcpu = overheads["hop"]
    verdict.append(f"worst case, one hop on the in-memory catalog (3 spans per search, least work per span): "
                   f"overhead {o:.1f}% of req/s, {dcpu:+.1f} µs CPU per request ({pcpu:+.0f}%)")

report = f"""machine: {machine}

```
{command}
```

Search (`POST /api/v1/product/search`, 6 results), roles at `RUST_LOG=warn`; after a {warmup} s
warm-up of each, {rounds} round{'' if rounds == '1' else 's'} of tracing off then on, {seconds} s each, {conns} connections,
wrk -t{threads}; medians over the rounds. "on": OTLP/HTTP protobuf to nginx on 127.0.0.1 (one
worker; reads each body, discards it, answers 200), `OTEL_BSP_SCHEDULE_DELAY={delay}`, queue
{queue}, batch {batch}. CPU per request: user + system time of the scenario's roles (not
PostgreSQL's, not nginx's) over the run and the pause after it, divided by the requests wrk
completed.

Span count check before the rounds (not measured): {verify_requests:,} searches and one more
through a separate set of traced roles exporting to `scripts/otlp_sink.py`.

{chr(10).join(verify_table)}

{chr(10).join(sections)}
{chr(10).join(verdict)}
"""
open(f"{work}/report.md", "w").write(report)
print()
print(report)
for p in problems:
    print(f"PROBLEM: {p}")
sys.exit(3 if problems else 0)
EOF
case $rc in
  0|3) ;;
  *) die "could not write the report" ;;
esac
if [ -n "$SKIPPED" ]; then
  echo "bench-tracing: SKIPPED: scenario \"search\": $SKIPPED; exit 1" >&2
  exit 1
fi
if [ $rc = 3 ]; then
  say "measured, but see PROBLEM above; report in $WORK/report.md, logs in $WORK"
else
  say "report in $WORK/report.md"
fi
exit $rc
