#!/usr/bin/env bash
# Tests of the shop's web front end (web/, React + TypeScript, built with Vite):
#   1. npm ci, the component tests (Vitest), the production build into assets/web/;
#   2. fails when the bundle in the tree is not what the source builds (the binary embeds
#      assets/web/, so the committed bundle must always be the fresh build);
#   3. cargo build, then the browser journey (tests/browser/journey.mjs): Debian's Chromium,
#      headless, driven by playwright-core, against the shop running as separate processes;
#   4. the fault page (tests/browser/faults.mjs): sign in with the admin token, switch
#      payment-failure=1 on (keyboard only at one width) and off again against the real shop
#      (`serve --role all --admin-token`), and see it land on every process.
# Screenshots: test-output/screenshots/. Needs Node.js >= 20.19 and npm; installs Debian's
# chromium when /usr/bin/chromium is missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=$SECONDS

step() { echo; echo "== test-web: $* ($((SECONDS - START))s)"; }
die() { echo "test-web: FAIL: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (Node.js >= 20.19 is needed to build web/)"
command -v npm >/dev/null || die "npm is not installed"
echo "test-web: node $(node --version), npm $(npm --version)"

if [ ! -x /usr/bin/chromium ]; then
  step "installing Debian's chromium for the browser journey"
  [ "$(id -u)" = 0 ] || die "/usr/bin/chromium is missing; install it: apt-get install chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# The bundle as it is in the tree before the build, to compare with the fresh one.
bundle_sums() { (cd "$ROOT" && find assets/web -type f -print0 | sort -z | xargs -0 -r sha256sum); }
before_status=$(git status --porcelain -- assets/web 2>/dev/null || true)
before_sums=$(bundle_sums)

step "npm ci (web/)"
(cd web && npm ci --no-audit --no-fund)

step "component tests: npx vitest run"
(cd web && npx vitest run)

step "production build: npm run build (type check, then vite build into assets/web/)"
(cd web && npm run build)

step "checking that the bundle in the tree is the fresh build"
after_sums=$(bundle_sums)
if [ -z "$before_status" ]; then
  # The usual case (CI, a clean checkout): assets/web must still match what git has.
  changed=$(git status --porcelain -- assets/web 2>/dev/null || true)
  if [ -n "$changed" ]; then
    echo "$changed"
    die "the committed bundle in assets/web differs from a fresh build of web/: run 'cd web && npm ci && npm run build' and commit assets/web"
  fi
  echo "test-web: assets/web is exactly what git has: the committed bundle is the fresh build"
else
  # assets/web already had uncommitted changes (someone is working on the front end):
  # compare with the tree as it was before this build instead.
  if [ "$before_sums" != "$after_sums" ]; then
    diff <(echo "$before_sums") <(echo "$after_sums") || true
    die "assets/web was not the build of web/'s source: it has been rebuilt now; commit assets/web"
  fi
  echo "test-web: assets/web has uncommitted changes, and they are exactly the fresh build (commit them):"
  echo "$before_status" | sed 's/^/  /'
fi

step "cargo build (the binary embeds assets/web)"
cargo build

step "browser journey: node tests/browser/journey.mjs"
ECOMMERCE_BIN="$ROOT/target/debug/ecommerce" node tests/browser/journey.mjs

step "the fault page: node tests/browser/faults.mjs"
ECOMMERCE_BIN="$ROOT/target/debug/ecommerce" node tests/browser/faults.mjs

step "all web tests passed in $((SECONDS - START))s"
