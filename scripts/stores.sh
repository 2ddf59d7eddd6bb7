# Makes Redis and PostgreSQL available to the tests (sourced by scripts/test.sh).
#
# Uses servers already answering on 127.0.0.1:6379 / 127.0.0.1:5432; otherwise installs
# them (Debian packages, when root) and starts private ones in a temporary directory,
# stopped again on exit. Also makes sure redis-server and initdb exist, since the failure
# tests start servers of their own. Exports:
#   ECOMMERCE_TEST_REDIS     redis://host:port      (a server the tests may use)
#   ECOMMERCE_TEST_POSTGRES  postgres://user@host:port  (superuser, trust auth)
#   ECOMMERCE_PG_BIN         the folder of initdb/pg_ctl

STORES_TMP=$(mktemp -d /tmp/ecommerce-stores.XXXXXX)
STARTED_PIDS=()
PG_STARTED_DIR=""

stores_cleanup() {
  for pid in "${STARTED_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$PG_STARTED_DIR" ]; then
    runuser -u postgres -- "$ECOMMERCE_PG_BIN/pg_ctl" -D "$PG_STARTED_DIR" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$STORES_TMP"
}

answers() { # host port: true when something accepts TCP there
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "stores: $* missing and not root: install them (apt-get install $*)" >&2
    return 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_binaries() {
  command -v redis-server >/dev/null || apt_install redis-server
  # The rolling-replacement test (tests/rollout.rs) drives load with wrk.
  command -v wrk >/dev/null || apt_install wrk
  ECOMMERCE_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$ECOMMERCE_PG_BIN" ] || [ ! -x "$ECOMMERCE_PG_BIN/initdb" ]; then
    apt_install postgresql
    ECOMMERCE_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  export ECOMMERCE_PG_BIN
}

ensure_redis() {
  if answers 127.0.0.1 6379; then
    export ECOMMERCE_TEST_REDIS=redis://127.0.0.1:6379
    return
  fi
  local port
  port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir "$STORES_TMP" >"$STORES_TMP/redis.log" 2>&1 &
  STARTED_PIDS+=("$!")
  for _ in $(seq 50); do answers 127.0.0.1 "$port" && break; sleep 0.1; done
  answers 127.0.0.1 "$port" || { echo "stores: redis-server did not start" >&2; return 1; }
  export ECOMMERCE_TEST_REDIS="redis://127.0.0.1:$port"
}

ensure_postgres() {
  if answers 127.0.0.1 5432; then
    export ECOMMERCE_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432
    return
  fi
  local port dir
  port=$(free_port)
  dir="$STORES_TMP/pg"
  mkdir -p "$dir" && chown postgres "$STORES_TMP" "$dir"
  runuser -u postgres -- "$ECOMMERCE_PG_BIN/initdb" -D "$dir" -U postgres -A trust >/dev/null
  runuser -u postgres -- "$ECOMMERCE_PG_BIN/pg_ctl" -D "$dir" -w -l "$dir/log" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
  PG_STARTED_DIR="$dir"
  export ECOMMERCE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port"
}

ensure_binaries
ensure_redis
ensure_postgres
echo "stores: redis at $ECOMMERCE_TEST_REDIS, postgres at $ECOMMERCE_TEST_POSTGRES"
