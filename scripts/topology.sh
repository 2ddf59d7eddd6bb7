#!/usr/bin/env bash
# The production topology on one machine: every role of the shop its own process of the
# release binary, wired as in a deployment (web-gateway -> api-gateway -> services;
# checkout -> api-gateway), on 127.0.0.1.
#
#   scripts/topology.sh start [--stores memory|real]   start it, wait until ready, return
#   scripts/topology.sh status                         which roles are running
#   scripts/topology.sh stop                           stop exactly what start started
#   scripts/topology.sh run [--stores memory|real]     start, wait for Ctrl-C/SIGTERM, stop
#
# --stores memory (default): the embedded stores and catalog, nothing else needed.
# --stores real: cart-data and session-data on Redis, product-data on PostgreSQL (the
#   database is created when missing, then `ecommerce migrate` loads the catalog).
#
# Environment:
#   BASE_PORT         web-gateway's port; the others follow in SPEC order  (8080)
#                     web-gateway +0, api-gateway +1, cart +2, checkout +3,
#                     content +4, payment +5, product +6
#   PAYMENT_DELAY_MS  payment's simulated processing time, MIN-MAX     (500-1000)
#   REDIS_URL         --stores real: cart-data and session-data (redis://127.0.0.1:6379)
#   POSTGRES_URL      --stores real: product-data (postgres://postgres@127.0.0.1:5432/products)
#   SESSION_SECRET    web-gateway's cookie key              (random for each start)
#   TOPOLOGY_DIR      state: PID files, logs                (target/topology)
#   ECOMMERCE_BIN     the binary to run                     (target/release/ecommerce,
#                     built with `cargo build --release` when ECOMMERCE_BIN is not set)
#   RUST_LOG          the roles' log level                  (info)
#   WORKERS           worker threads per role               (the binary's default)
#   READY_TIMEOUT     seconds to wait for every /readyz     (20)
#   STOP_TIMEOUT      seconds between SIGTERM and SIGKILL   (15)
#
# Logs: $TOPOLOGY_DIR/<role>.log (kept after stop). PIDs: $TOPOLOGY_DIR/pids/<role>.pid.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Paths given relative to where the script was called from.
if [ -n "${ECOMMERCE_BIN:-}" ] && [[ "$ECOMMERCE_BIN" != /* ]]; then ECOMMERCE_BIN="$PWD/$ECOMMERCE_BIN"; fi
if [ -n "${TOPOLOGY_DIR:-}" ] && [[ "$TOPOLOGY_DIR" != /* ]]; then TOPOLOGY_DIR="$PWD/$TOPOLOGY_DIR"; fi
cd "$ROOT"

ROLES=(web-gateway api-gateway cart checkout content payment product)
BASE_PORT=${BASE_PORT:-8080}
PAYMENT_DELAY_MS=${PAYMENT_DELAY_MS:-500-1000}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/products}
TOPOLOGY_DIR=${TOPOLOGY_DIR:-$ROOT/target/topology}
READY_TIMEOUT=${READY_TIMEOUT:-20}
STOP_TIMEOUT=${STOP_TIMEOUT:-15}
PID_DIR="$TOPOLOGY_DIR/pids"
STATE_FILE="$TOPOLOGY_DIR/topology.env"

say() { echo "topology: $*"; }
die() { echo "topology: error: $*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

port_of() { # role -> port
  local i
  for i in "${!ROLES[@]}"; do
    if [ "${ROLES[$i]}" = "$1" ]; then echo $((BASE_PORT + i)); return; fi
  done
  die "unknown role $1"
}

answers() { # host port: true when something accepts TCP there
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# The PID recorded for a role, when that process is still the one we started.
live_pid() {
  local role=$1 file="$PID_DIR/$1.pid" pid cmdline
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  # Guard against a recycled PID: the process must be our binary serving this role.
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case "$cmdline" in
    *" serve --role $role "*) ;;
    *) return 1 ;;
  esac
  # A zombie is not running.
  [ "$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" != Z ] || return 1
  echo "$pid"
}

any_running() {
  local role
  for role in "${ROLES[@]}"; do
    live_pid "$role" >/dev/null && return 0
  done
  return 1
}

binary() {
  if [ -n "${ECOMMERCE_BIN:-}" ]; then
    [ -x "$ECOMMERCE_BIN" ] || die "ECOMMERCE_BIN=$ECOMMERCE_BIN is not an executable"
    echo "$ECOMMERCE_BIN"
    return
  fi
  say "building the release binary (cargo build --release)" >&2
  cargo build --release --quiet >&2 || die "cargo build --release failed"
  echo "$ROOT/target/release/ecommerce"
}

# postgres://user@host:port/db -> the same server's maintenance database `postgres`.
admin_url_of() {
  local url=$1 base query=""
  case "$url" in *\?*) query="?${url#*\?}"; url=${url%%\?*} ;; esac
  base=${url%/*}
  echo "$base/postgres$query"
}

db_name_of() {
  local url=${1%%\?*}
  echo "${url##*/}"
}

host_port_of() { # scheme://[user[:pw]@]host[:port][/...] default_port -> "host port"
  local rest=${1#*://} default=$2 hostport
  rest=${rest%%/*}
  rest=${rest%%\?*}
  hostport=${rest##*@}
  case "$hostport" in
    *:*) echo "${hostport%%:*} ${hostport##*:}" ;;
    *) echo "${hostport:-127.0.0.1} $default" ;;
  esac
}

prepare_real_stores() {
  local bin=$1 hp db admin exists
  # shellcheck disable=SC2086
  hp=$(host_port_of "$REDIS_URL" 6379)
  # shellcheck disable=SC2086
  answers $hp || die "Redis does not answer at $REDIS_URL (set REDIS_URL, or use --stores memory)"
  hp=$(host_port_of "$POSTGRES_URL" 5432)
  # shellcheck disable=SC2086
  answers $hp || die "PostgreSQL does not answer at $POSTGRES_URL (set POSTGRES_URL, or use --stores memory)"
  db=$(db_name_of "$POSTGRES_URL")
  [[ "$db" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "POSTGRES_URL must name a plain database, not '$db'"
  if command -v psql >/dev/null; then
    admin=$(admin_url_of "$POSTGRES_URL")
    exists=$(psql "$admin" -XAtqc "select 1 from pg_database where datname = '$db'" 2>&1) ||
      die "cannot query PostgreSQL at $admin: $exists"
    if [ "$exists" != 1 ]; then
      say "creating database $db"
      psql "$admin" -Xqc "create database \"$db\"" >/dev/null || die "cannot create database $db"
    fi
  else
    say "psql not found: assuming database $db exists"
  fi
  say "migrating product-data ($bin migrate)"
  "$bin" migrate --product-data "$POSTGRES_URL" >"$TOPOLOGY_DIR/migrate.log" 2>&1 ||
    { cat "$TOPOLOGY_DIR/migrate.log" >&2; die "ecommerce migrate failed"; }
}

# The options of one role, as a deployment gives them.
role_args() {
  local role=$1 api="http://127.0.0.1:$(port_of api-gateway)" up
  ARGS=(serve --role "$role" --listen "127.0.0.1:$(port_of "$role")")
  [ -n "${WORKERS:-}" ] && ARGS+=(--workers "$WORKERS")
  case "$role" in
    web-gateway) ARGS+=(--api-gateway-url "$api" --session-data "$SESSION_DATA") ;;
    api-gateway)
      for up in cart checkout content payment product; do
        ARGS+=(--upstream "$up=http://127.0.0.1:$(port_of "$up")")
      done ;;
    cart) ARGS+=(--cart-data "$CART_DATA") ;;
    checkout) ARGS+=(--api-gateway-url "$api") ;;
    payment) ARGS+=(--payment-delay-ms "$PAYMENT_DELAY_MS") ;;
    product) ARGS+=(--product-data "$PRODUCT_DATA") ;;
    content) ;;
  esac
}

ready_code() { # role -> HTTP status of its /readyz (000 when nothing answers)
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$(port_of "$1")/readyz" || true
}

cmd_start() {
  local stores=memory
  while [ $# -gt 0 ]; do
    case "$1" in
      --stores) [ $# -ge 2 ] || die "--stores needs memory or real"; stores=$2; shift 2 ;;
      --stores=*) stores=${1#--stores=}; shift ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown option $1 (see scripts/topology.sh --help)" ;;
    esac
  done
  case "$stores" in memory|real) ;; *) die "--stores must be memory or real, not '$stores'" ;; esac
  [[ "$BASE_PORT" =~ ^[0-9]+$ ]] && [ "$BASE_PORT" -ge 1 ] && [ "$BASE_PORT" -le 65529 ] ||
    die "BASE_PORT must be a port number (1-65529), not '$BASE_PORT'"

  if any_running; then
    die "already running (state in $TOPOLOGY_DIR): scripts/topology.sh stop first"
  fi
  local role port
  for role in "${ROLES[@]}"; do
    port=$(port_of "$role")
    answers 127.0.0.1 "$port" && die "port $port ($role) is in use: stop what listens there, or set BASE_PORT"
  done
  rm -rf "$PID_DIR" "$STATE_FILE"
  mkdir -p "$PID_DIR"

  local bin
  bin=$(binary)
  if [ "$stores" = real ]; then
    prepare_real_stores "$bin"
    CART_DATA=$REDIS_URL SESSION_DATA=$REDIS_URL PRODUCT_DATA=$POSTGRES_URL
  else
    CART_DATA=memory SESSION_DATA=memory PRODUCT_DATA=memory
  fi
  local secret=${SESSION_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}

  {
    echo "STORES=$stores"
    echo "BASE_PORT=$BASE_PORT"
    echo "BIN=$bin"
    echo "STARTED=$(date -u +%FT%TZ)"
  } >"$STATE_FILE"

  say "starting ${#ROLES[@]} roles of $bin (stores: $stores, payment delay ${PAYMENT_DELAY_MS} ms)"
  # Services first, then the gateways that call them.
  for role in product content payment cart checkout api-gateway web-gateway; do
    role_args "$role"
    # The secret goes through the environment twin of --session-secret, so that it does
    # not show in `ps`.
    ECOMMERCE_SESSION_SECRET=$secret RUST_LOG=${RUST_LOG:-info} \
      "$bin" "${ARGS[@]}" </dev/null >"$TOPOLOGY_DIR/$role.log" 2>&1 &
    echo "$!" >"$PID_DIR/$role.pid"
  done

  # `$!` names the forked shell until it has exec'd the binary: wait for that (bounded),
  # so that every check below, and a stop, recognise the process.
  local pid tries
  for role in "${ROLES[@]}"; do
    pid=$(cat "$PID_DIR/$role.pid")
    for tries in $(seq 100); do
      live_pid "$role" >/dev/null && break
      kill -0 "$pid" 2>/dev/null || break
      [ "$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" != Z ] || break
      sleep 0.05
    done
  done

  local deadline=$((SECONDS + READY_TIMEOUT)) pending code
  while :; do
    pending=()
    for role in "${ROLES[@]}"; do
      if ! live_pid "$role" >/dev/null; then
        say "$role exited during start; its log ($TOPOLOGY_DIR/$role.log):" >&2
        tail -n 20 "$TOPOLOGY_DIR/$role.log" >&2 || true
        cmd_stop >/dev/null
        die "start failed"
      fi
      code=$(ready_code "$role")
      [ "$code" = 200 ] || pending+=("$role($code)")
    done
    [ ${#pending[@]} -eq 0 ] && break
    if [ $SECONDS -ge $deadline ]; then
      say "not ready after ${READY_TIMEOUT}s: ${pending[*]}" >&2
      for role in "${ROLES[@]}"; do
        echo "--- $role.log" >&2
        tail -n 5 "$TOPOLOGY_DIR/$role.log" >&2 || true
      done
      cmd_stop >/dev/null
      die "start failed"
    fi
    sleep 0.2
  done

  say "ready: the shop is at http://127.0.0.1:$BASE_PORT/"
  cmd_status
  say "logs in $TOPOLOGY_DIR/<role>.log; stop with: scripts/topology.sh stop"
}

cmd_status() {
  local role pid running=0 state="" stores="" port
  [ -f "$STATE_FILE" ] && stores=$(sed -n 's/^STORES=//p' "$STATE_FILE")
  [ -f "$STATE_FILE" ] && port=$(sed -n 's/^BASE_PORT=//p' "$STATE_FILE")
  BASE_PORT=${port:-$BASE_PORT}
  printf '  %-12s %-8s %-7s %-22s %s\n' ROLE PID STATE ADDRESS READYZ
  for role in "${ROLES[@]}"; do
    if pid=$(live_pid "$role"); then
      running=$((running + 1))
      state=running
      printf '  %-12s %-8s %-7s %-22s %s\n' "$role" "$pid" "$state" \
        "127.0.0.1:$(port_of "$role")" "$(ready_code "$role")"
    else
      printf '  %-12s %-8s %-7s %-22s %s\n' "$role" - stopped "127.0.0.1:$(port_of "$role")" -
    fi
  done
  say "$running of ${#ROLES[@]} roles running${stores:+ (stores: $stores)}"
  [ "$running" -eq ${#ROLES[@]} ]
}

cmd_stop() {
  local role pid pids=() roles=()
  if [ ! -d "$PID_DIR" ]; then
    say "nothing to stop (no state in $TOPOLOGY_DIR)"
    rm -f "$STATE_FILE"
    return 0
  fi
  # Gateways first, so no new work reaches the services while they drain.
  for role in web-gateway api-gateway checkout cart content payment product; do
    if pid=$(live_pid "$role"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      roles+=("$role")
    fi
  done
  if [ ${#pids[@]} -gt 0 ]; then
    say "stopping ${roles[*]} (SIGTERM to ${pids[*]})"
  fi
  local deadline=$((SECONDS + STOP_TIMEOUT)) alive
  while :; do
    alive=()
    for role in "${roles[@]}"; do
      live_pid "$role" >/dev/null && alive+=("$role")
    done
    [ ${#alive[@]} -eq 0 ] && break
    if [ $SECONDS -ge $deadline ]; then
      say "still running after ${STOP_TIMEOUT}s: ${alive[*]}: SIGKILL" >&2
      for role in "${alive[@]}"; do
        pid=$(live_pid "$role") && kill -KILL "$pid" 2>/dev/null || true
      done
      sleep 0.2
      break
    fi
    sleep 0.1
  done
  for role in "${ROLES[@]}"; do
    if live_pid "$role" >/dev/null; then
      die "$role (PID $(cat "$PID_DIR/$role.pid")) is still running"
    fi
  done
  rm -rf "$PID_DIR" "$STATE_FILE"
  say "stopped; logs kept in $TOPOLOGY_DIR"
}

cmd_run() {
  cmd_start "$@"
  local stopping=0
  SLEEPER=""
  on_signal() {
    [ "$stopping" = 1 ] && return
    stopping=1
    [ -n "$SLEEPER" ] && kill "$SLEEPER" 2>/dev/null
    echo
    cmd_stop
    exit 0
  }
  trap on_signal INT TERM
  trap 'cmd_stop >/dev/null 2>&1 || true' EXIT
  say "running; Ctrl-C (or SIGTERM to $$) stops it"
  # Wake up regularly: notice a role that died, and let the traps run promptly.
  while :; do
    sleep 1 &
    SLEEPER=$!
    wait "$SLEEPER" || true
    SLEEPER=""
    local role
    for role in "${ROLES[@]}"; do
      if ! live_pid "$role" >/dev/null; then
        say "$role stopped unexpectedly; its log ($TOPOLOGY_DIR/$role.log):" >&2
        tail -n 20 "$TOPOLOGY_DIR/$role.log" >&2 || true
        stopping=1
        cmd_stop
        exit 1
      fi
    done
  done
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  start) cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  run) cmd_run "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
