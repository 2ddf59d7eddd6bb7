#!/usr/bin/env bash
# Two builds of the shop in turn, A then B each round, medians of each:
# `cargo xtask bench-ab OLD NEW`, xtask/src/bench_ab.rs (ROUNDS, BENCH_SECONDS,
# BENCH_CONNS, WRK_THREADS, REDIS_URL, POSTGRES_URL, BASE_PORT).
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY
#   ROUNDS=5 BENCH_SECONDS=10 scripts/bench-ab.sh target-old/release/ecommerce target/release/ecommerce
set -euo pipefail
# Binaries named relative to where the script was called from.
args=()
for a in "$@"; do
  if [[ "$a" != -* && -e "$a" ]]; then args+=("$(realpath "$a")"); else args+=("$a"); fi
done
cd "$(dirname "$0")/.."
exec cargo xtask bench-ab "${args[@]}"
