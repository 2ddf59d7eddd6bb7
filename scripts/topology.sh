#!/usr/bin/env bash
# The production topology on one machine: `cargo xtask topology` (xtask/src/topology.rs),
# under the name it always had.
#
#   scripts/topology.sh start [--stores memory|real]   start it, wait until ready, return
#   scripts/topology.sh status                         which roles are running
#   scripts/topology.sh stop                           stop exactly what start started
#   scripts/topology.sh run [--stores memory|real]     start, wait for Ctrl-C/SIGTERM, stop
#
# The environment (BASE_PORT, PAYMENT_DELAY_MS, REDIS_URL, POSTGRES_URL, SESSION_SECRET,
# TOPOLOGY_DIR, ECOMMERCE_BIN, RUST_LOG, WORKERS, READY_TIMEOUT, STOP_TIMEOUT):
# `cargo xtask topology --help`.
set -euo pipefail

# Paths given relative to where the script was called from.
if [ -n "${ECOMMERCE_BIN:-}" ] && [[ "$ECOMMERCE_BIN" != /* ]]; then export ECOMMERCE_BIN="$PWD/$ECOMMERCE_BIN"; fi
if [ -n "${TOPOLOGY_DIR:-}" ] && [[ "$TOPOLOGY_DIR" != /* ]]; then export TOPOLOGY_DIR="$PWD/$TOPOLOGY_DIR"; fi
cd "$(dirname "$0")/.."
# exec: a signal to this script's PID (run's SIGTERM) reaches the tool itself, since
# `cargo run` replaces itself with the program it runs.
exec cargo xtask topology "$@"
