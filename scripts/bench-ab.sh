#!/usr/bin/env bash
# Interleaved A/B benchmark of two builds of the shop: each round runs build A, then build
# B, on the production topology (scripts/topology.sh, real Redis and PostgreSQL, payment
# delay 0), measuring search, cart read and cart update via the web-gateway with wrk. It
# prints every run and then the median of each build per scenario, since single runs on a
# small shared machine differ by tens of percent.
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY
#   ROUNDS=5 BENCH_SECONDS=10 scripts/bench-ab.sh target-old/release/ecommerce target/release/ecommerce
#
# Environment: ROUNDS (3), BENCH_SECONDS (8), BENCH_CONNS (64), WRK_THREADS (2), REDIS_URL,
# POSTGRES_URL and BASE_PORT as for scripts/topology.sh. Everything it starts is stopped on
# exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
NAME=bench-ab
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
say() { echo "bench-ab: $*"; }
die() { echo "bench-ab: error: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: scripts/bench-ab.sh OLD_BINARY NEW_BINARY"
A=$(realpath "$1"); B=$(realpath "$2")
[ -x "$A" ] && [ -x "$B" ] || die "both binaries must exist and be executable"
ROUNDS=${ROUNDS:-3}
BENCH_SECONDS=${BENCH_SECONDS:-8}
BENCH_CONNS=${BENCH_CONNS:-64}
WRK_THREADS=${WRK_THREADS:-2}
[[ "$ROUNDS" =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 20 ] || die "ROUNDS must be 1-20"
[[ "$BENCH_SECONDS" =~ ^[0-9]+$ ]] && [ "$BENCH_SECONDS" -le 120 ] || die "BENCH_SECONDS must be 1-120"

WORK="$ROOT/target/bench-ab"
export TOPOLOGY_DIR="$WORK/topology"
TOPOLOGY="$ROOT/scripts/topology.sh"
RESULTS="$WORK/results.tsv"
mkdir -p "$WORK"
: >"$RESULTS"
trap '"$TOPOLOGY" stop >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ensure_wrk_and_nginx
export BASE_PORT=${BASE_PORT:-8080}
WEB="http://127.0.0.1:$BASE_PORT"

# run side binary: one topology of `binary`, the three scenarios, one TSV line each.
run() {
  local side=$1 session scenario method path body out line
  ECOMMERCE_BIN=$2 PAYMENT_DELAY_MS=0 RUST_LOG=warn "$TOPOLOGY" start --stores real >/dev/null
  session=$(curl -sf -c - -o /dev/null "$WEB/" | awk '$6 == "session_id" {print $7}')
  [ -n "$session" ] || die "GET / set no session_id cookie"
  curl -sf -X PUT -d "{\"session_id\":\"$session\"}" "$WEB/api/v1/cart/f95e2475/1" >/dev/null
  for spec in "search|POST|/api/v1/product/search|{\"query\":\"\",\"page\":{\"size\":6}}" \
              "cart read|POST|/api/v1/cart|{\"session_id\":\"$session\"}" \
              "cart update|PUT|/api/v1/cart/f95e2475/1|{\"session_id\":\"$session\"}"; do
    IFS='|' read -r scenario method path body <<<"$spec"
    wrk_script "$WORK/run.lua" "$method" "$body"
    timeout 30 wrk -t1 -c8 -d1s -s "$WORK/run.lua" "$WEB$path" >/dev/null 2>&1 || true
    out=$(timeout $((BENCH_SECONDS + 30)) wrk -t"$WRK_THREADS" -c"$BENCH_CONNS" -d"${BENCH_SECONDS}s" \
      --timeout 5s -s "$WORK/run.lua" "$WEB$path") || die "wrk failed: $scenario"
    line=$(grep '^WRKRESULT ' <<<"$out") || die "wrk printed no result: $scenario"
    # shellcheck disable=SC2086
    local $(echo "${line#WRKRESULT }")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$side" "$scenario" "$requests" "$duration_us" "$p99_us" \
      "$((connect + read + write + status + timeout))" >>"$RESULTS"
    printf 'bench-ab: %s %-12s %8.0f req/s  p99 %6.2f ms  errors %s\n' "$side" "$scenario" \
      "$(python3 -c "print($requests / ($duration_us / 1e6))")" "$(python3 -c "print($p99_us / 1000)")" \
      "$((connect + read + write + status + timeout))"
  done
  "$TOPOLOGY" stop >/dev/null
}

say "A = $A"
say "B = $B"
for round in $(seq "$ROUNDS"); do
  say "round $round of $ROUNDS"
  run A "$A"
  run B "$B"
done

python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
print("\n| scenario | A req/s (median) | B req/s (median) | B/A | A p99 ms | B p99 ms | errors A, B |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for scenario in dict.fromkeys(r[1] for r in rows):
    def of(side):
        runs = [r for r in rows if r[0] == side and r[1] == scenario]
        rps = statistics.median(int(r[2]) / (int(r[3]) / 1e6) for r in runs)
        p99 = statistics.median(int(r[4]) / 1000 for r in runs)
        return rps, p99, sum(int(r[5]) for r in runs)
    (ra, pa, ea), (rb, pb, eb) = of("A"), of("B")
    print(f"| {scenario} | {ra:,.0f} | {rb:,.0f} | {rb / ra:.2f} | {pa:.1f} | {pb:.1f} | {ea}, {eb} |")
PY
