#!/usr/bin/env bash
# The benchmark of issue 5 (search, cart, the k6 journey, one hop against nginx, memory on
# the production topology; writes BENCHMARKS.md): `cargo xtask bench`, xtask/src/bench.rs,
# which describes its scenarios and settings (BENCH_SECONDS, BENCH_CONNS, WARMUP_SECONDS,
# WRK_THREADS, REDIS_URL, POSTGRES_URL, BASE_PORT, BENCH_OUT, K6).
#
#   scripts/bench.sh
#   BENCH_SECONDS=5 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo xtask bench "$@"
