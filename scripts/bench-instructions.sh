#!/usr/bin/env bash
# Instructions per search, by role, for two builds: a measure of the request path's CPU
# cost that does not move with the machine's load (callgrind counts instructions).
#
#   scripts/bench-instructions.sh OLD_BINARY NEW_BINARY
#
# Each role (product, api-gateway, web-gateway) runs alone under callgrind, with one
# worker, in front of a product and an api-gateway of NEW_BINARY run natively; curl sends
# it N1, then N2 searches on one connection. (Ir(N2) - Ir(N1)) / (N2 - N1) is one search,
# start-up and shutdown cancelled out. Needs valgrind (apt-get install valgrind) and curl.
# Environment: N1 (100), N2 (1100), BASE_PORT (9700; uses BASE_PORT..BASE_PORT+2).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: scripts/bench-instructions.sh OLD_BINARY NEW_BINARY" >&2; exit 2; }
OLD=$(realpath "$1"); NEW=$(realpath "$2")
N1=${N1:-100}; N2=${N2:-1100}; BASE=${BASE_PORT:-9700}
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 1; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

PRODUCT=127.0.0.1:$BASE; GATEWAY=127.0.0.1:$((BASE + 1)); MEASURED=127.0.0.1:$((BASE + 2))
wait_healthy() { for _ in $(seq 300); do curl -sf -o /dev/null "http://$1/healthz" && return; sleep 0.1; done; echo "$1 did not start" >&2; exit 1; }
"$NEW" serve --role product --listen "$PRODUCT" --workers 1 >"$WORK/product.log" 2>&1 & PIDS+=($!)
"$NEW" serve --role api-gateway --listen "$GATEWAY" --workers 1 --upstream "product=http://$PRODUCT" \
  >"$WORK/gateway.log" 2>&1 & PIDS+=($!)
wait_healthy "$PRODUCT"; wait_healthy "$GATEWAY"

# instructions binary role path n: the total instructions of one run serving n searches.
instructions() {
  local out="$WORK/callgrind.out" urls=() pid
  valgrind --tool=callgrind --callgrind-out-file="$out" "$1" serve --role "$2" --listen "$MEASURED" \
    --workers 1 --upstream "product=http://$PRODUCT" --api-gateway-url "http://$GATEWAY" \
    >"$WORK/measured.log" 2>&1 &
  pid=$!
  wait_healthy "$MEASURED"
  for _ in $(seq "$4"); do urls+=("http://$MEASURED$3"); done
  timeout 300 curl -s -H 'content-type: application/json' -d '{"query":"tea","page":{"size":6}}' \
    "${urls[@]}" >/dev/null
  kill -TERM "$pid"; wait "$pid" || true
  awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

printf '| role | old instructions/search | new | new/old |\n| --- | ---: | ---: | ---: |\n'
for spec in "product /search" "api-gateway /api/v1/product/search" "web-gateway /api/v1/product/search"; do
  read -r role path <<<"$spec"
  per() { echo $(( ($(instructions "$1" "$role" "$path" "$N2") - $(instructions "$1" "$role" "$path" "$N1")) / (N2 - N1) )); }
  old=$(per "$OLD"); new=$(per "$NEW")
  printf '| %s | %s | %s | %s |\n' "$role" "$old" "$new" "$(awk "BEGIN {printf \"%.3f\", $new / $old}")"
done
