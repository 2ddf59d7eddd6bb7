# Shell helpers shared by the scripts that start and stop processes (sourced, not run).
# The benches and their helpers (stopping a PID, wrk scripts, installing wrk and nginx)
# moved into `cargo xtask` (xtask/src/).

answers() { # host port: true when something accepts TCP there
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

listening() { # port: true when something listens on 127.0.0.1:port
  if command -v ss >/dev/null; then
    [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
  else
    answers 127.0.0.1 "$1"
  fi
}

release_binary() { # ECOMMERCE_BIN, exported: as given, else this tree's release build (quick when up to date)
  if [ -z "${ECOMMERCE_BIN:-}" ]; then
    cargo build --release --quiet
    ECOMMERCE_BIN="$ROOT/target/release/ecommerce"
  fi
  export ECOMMERCE_BIN
}

k6_journeys() { # summary.json (k6 --summary-export): how many journeys k6 completed
  python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["metrics"].get("journeys_completed",{}).get("count",0)))' "$1"
}
