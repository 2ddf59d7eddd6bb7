#!/usr/bin/env bash
# Proves the Helm chart (deploy/helm/ecommerce) without a cluster: builds the binary with
# the Dockerfile's own command, then lints, renders and checks the chart with the real Helm
# library (tests/chart/test_chart.py; test_observability.py for its observability stack;
# test_operations.py for draining, stores, secrets and platform settings). Python packages
# go to a venv under target/; the Prometheus configuration is checked with Debian's
# promtool; private redis-servers stand in for session-data, where the chart's hook Job
# writes the shop's live faults for the roles to follow, and for a Redis primary and
# replica that the chart's replica readiness probe runs against.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/chart-venv
# cloudcoil's models carry the Prometheus Operator's schemas (PodMonitor, PrometheusRule).
REQUIREMENTS=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 pytest==9.2.0 PyYAML==6.0.3
  cloudcoil==0.6.0 cloudcoil-models-prometheus-operator==0.80.1.0)

if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]; then
  echo "== Python packages for the chart tests (into $VENV)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
  echo "${REQUIREMENTS[*]}" > "$VENV/.requirements"
fi

# promtool: Debian's, installed or else unpacked from its package under target/ (installing
# the package would also set up a Prometheus server).
if [ -x /usr/bin/promtool ]; then
  PROMTOOL=/usr/bin/promtool
else
  PROMTOOL=target/promtool/usr/bin/promtool
  if [ ! -x "$PROMTOOL" ]; then
    echo "== promtool, from Debian's prometheus package (into target/promtool)"
    mkdir -p target/promtool
    (cd target/promtool && { apt-get download prometheus 2>/dev/null || { apt-get update -qq && apt-get download prometheus; }; } \
      && dpkg-deb -x prometheus_*.deb . && rm -f prometheus_*.deb)
  fi
fi

if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== redis-server, from Debian's redis-server package"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "test-chart: redis-server is needed (apt-get install redis-server)" >&2
    exit 1
  fi
fi

echo "== the image's binary, built as the Dockerfile builds it"
cargo build --release --locked

echo "== the Helm chart: lint, render, validate, check against the binary"
[ "${PROMTOOL:0:1}" = / ] || PROMTOOL="$PWD/$PROMTOOL"
export ECOMMERCE_BIN=target/release/ecommerce PROMTOOL PYTHONDONTWRITEBYTECODE=1
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -q tests/chart "$@"
