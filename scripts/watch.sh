#!/usr/bin/env bash
# The shop's production topology with a local Prometheus on the chart's rules:
# `cargo xtask watch` (xtask/src/watch.rs).
#
#   scripts/watch.sh [--stores memory|real]            start, print the URLs, run until Ctrl-C
#   scripts/watch.sh --check [--stores memory|real]    play k6 with faults, check the
#                                                      dashboards and rules, stop
#
# The environment (BASE_PORT, REDIS_URL, POSTGRES_URL, ADMIN_TOKEN, WATCH_DIR, PROMETHEUS,
# ECOMMERCE_BIN, ...): `cargo xtask watch --help`.
set -euo pipefail

# Paths given relative to where the script was called from.
for var in ECOMMERCE_BIN WATCH_DIR PROMETHEUS; do
  if [ -n "${!var:-}" ] && [[ "${!var}" != /* ]]; then export "$var=$PWD/${!var}"; fi
done
cd "$(dirname "$0")/.."
# exec: a signal to this script's PID reaches the tool itself, since `cargo run` replaces
# itself with the program it runs.
exec cargo xtask watch "$@"
