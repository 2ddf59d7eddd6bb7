#!/usr/bin/env bash
# What tracing costs (the same roles with and without span export, loaded in turn, and
# the span count proven): `cargo xtask bench-tracing`, xtask/src/bench_tracing.rs, which
# describes its scenarios, settings (BENCH_SCENARIOS, BENCH_SECONDS, ROUNDS, ...) and exit
# status (0 measured, 3 measured with a PROBLEM, 1 not measured).
#
#   scripts/bench-tracing.sh
#   BENCH_SCENARIOS=hop BENCH_SECONDS=5 scripts/bench-tracing.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo xtask bench-tracing "$@"
