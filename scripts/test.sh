#!/usr/bin/env bash
# Runs every test of the shop. Installs and starts what the tests need (Redis,
# PostgreSQL) when it is not already there, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/stores.sh
trap stores_cleanup EXIT

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

echo "== the Helm chart and the image's build step"
bash scripts/test-chart.sh
