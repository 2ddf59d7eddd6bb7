#!/usr/bin/env bash
# Runs every test of the shop. Installs and starts what the tests need (Redis,
# PostgreSQL) when it is not already there, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/stores.sh
trap stores_cleanup EXIT

# The reference OpenMetrics parser (Python's Prometheus client) reads /metrics in the
# metrics tests; it goes to a venv under target/.
TEST_VENV=target/test-venv
if ! "$TEST_VENV/bin/python" -c 'import prometheus_client' 2>/dev/null; then
  echo "== Python's Prometheus client, for the OpenMetrics check (into $TEST_VENV)"
  python3 -m venv "$TEST_VENV"
  "$TEST_VENV/bin/pip" install --quiet --disable-pip-version-check prometheus-client==0.26.0
fi
export ECOMMERCE_TEST_PYTHON="$PWD/$TEST_VENV/bin/python"

echo "== unit tests, black-box HTTP tests (every role in one process, embedded stores), store and CLI tests"
# --workspace: the test support crate (support/) too.
cargo test --workspace --all-targets

echo "== black-box HTTP tests again: every role its own process, on Redis and PostgreSQL"
ECOMMERCE_TEST_TOPOLOGY=processes \
ECOMMERCE_TEST_CART_DATA="$ECOMMERCE_TEST_REDIS/0" \
ECOMMERCE_TEST_SESSION_DATA="$ECOMMERCE_TEST_REDIS/0" \
ECOMMERCE_TEST_PRODUCT_DATA="$ECOMMERCE_TEST_POSTGRES" \
  cargo test --test api

echo "== the front end: component tests, the committed bundle is a fresh build, a shopper in Chromium"
bash scripts/test-web.sh

echo "== the production topology (cargo xtask topology), the k6 journey against it, and a clean stop"
TOPOLOGY_TEST_STORES=both bash scripts/test-topology.sh

echo "== the k6 journey follows the shop's live traffic level (0, 3, 0) against the real shop"
bash scripts/test-traffic.sh

echo "== the Helm chart and the image's build step"
bash scripts/test-chart.sh

echo "== the release workflow (actionlint) and the shell scripts it cannot run here (kind-up.sh)"
bash scripts/test-workflows.sh

echo "== alert rules (promtool check and unit tests) and the dashboards' structure"
bash scripts/test-rules.sh

echo "== a local Prometheus scrapes the production topology under k6 and faults: every dashboard query and alert metric has data"
bash scripts/test-watch.sh
