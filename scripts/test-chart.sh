#!/usr/bin/env bash
# Proves the Helm chart (deploy/helm/ecommerce) without a cluster: builds the binary with
# the Dockerfile's own command, then lints, renders and checks the chart with the real Helm
# library (tests/chart/test_chart.py). Python packages go to a venv under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/chart-venv
REQUIREMENTS=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 pytest==9.2.0 PyYAML==6.0.3)

if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]; then
  echo "== Python packages for the chart tests (into $VENV)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
  echo "${REQUIREMENTS[*]}" > "$VENV/.requirements"
fi

echo "== the image's binary, built as the Dockerfile builds it"
cargo build --release --locked

echo "== the Helm chart: lint, render, validate, check against the binary"
export ECOMMERCE_BIN=target/release/ecommerce PYTHONDONTWRITEBYTECODE=1
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -q tests/chart "$@"
