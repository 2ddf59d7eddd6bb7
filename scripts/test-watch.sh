#!/usr/bin/env bash
# Tests `cargo xtask watch --check` (xtask/src/watch.rs) on real stores: the production
# topology on Redis (with a replica) and PostgreSQL, a local Prometheus on the chart's
# rules, the k6 journey with faults switched at run time; then every dashboard query
# returns a series, every metric the rules read exists, exemplars carry trace ids the OTLP
# sink received, and k6's remote write arrived. Afterwards nothing it started still runs
# and its temporary folder is gone.
#
# Uses Redis and PostgreSQL on 127.0.0.1 when they answer, else starts private ones
# (scripts/stores.sh, as scripts/test.sh does). Bounded: the check runs about two
# minutes, and is killed after WATCH_TIMEOUT seconds.
#
# Environment:
#   REDIS_URL, POSTGRES_URL  default: the stores.sh servers (database watch_products)
#   WATCH_CHECK_SECONDS      how long the journey plays                          (75)
#   WATCH_VUS                k6's virtual users                                  (3)
#   WATCH_TIMEOUT            seconds before the whole check is stopped           (420)
#   WATCH_DIR                logs                                    (target/watch-test)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

step() { echo "== test-watch: $*"; }
fail() { echo "test-watch: FAILED: $*" >&2; exit 1; }

# shellcheck source=scripts/stores.sh
source scripts/stores.sh
trap stores_cleanup EXIT

export REDIS_URL=${REDIS_URL:-$ECOMMERCE_TEST_REDIS/0}
export POSTGRES_URL=${POSTGRES_URL:-$ECOMMERCE_TEST_POSTGRES/watch_products}
export WATCH_DIR=${WATCH_DIR:-$ROOT/target/watch-test}
SECONDS_=${WATCH_CHECK_SECONDS:-75}
VUS=${WATCH_VUS:-3}
LIMIT=${WATCH_TIMEOUT:-420}

# Built first, so that the bound below is the check's alone.
step "building the release binary and the tools"
cargo build --release --quiet
cargo build --quiet --package xtask
export ECOMMERCE_BIN="$ROOT/target/release/ecommerce"
mkdir -p "$WATCH_DIR"
OUT="$WATCH_DIR/check.out"

step "cargo xtask watch --check --stores real (journey ${SECONDS_}s, $VUS VUs, at most ${LIMIT}s)"
rc=0
timeout --kill-after=30 "$LIMIT" cargo xtask watch --check --stores real \
  --check-seconds "$SECONDS_" --vus "$VUS" 2>&1 | tee "$OUT" || rc=$?

# Whatever the verdict: everything it started is gone.
left=()
for pid in $(sed -n 's/.*(SIGTERM to \([0-9 ]*\)).*/\1/p' "$OUT"); do
  if kill -0 "$pid" 2>/dev/null; then left+=("$pid"); fi
done
[ ${#left[@]} -eq 0 ] || fail "processes left running: ${left[*]}"
temp=$(sed -n 's/.*removed \(\/[^ ]*ecommerce-watch[^ ]*\)$/\1/p' "$OUT" | tail -n 1)
[ -n "$temp" ] || fail "watch did not say it removed its temporary folder (rc $rc)"
[ ! -e "$temp" ] || fail "$temp is still there"

[ $rc -eq 0 ] || fail "cargo xtask watch --check exited $rc (logs in $WATCH_DIR)"
step "passed"
