# Shell helpers shared by the scripts that start and stop processes (sourced, not run).
# The sourcing script sets NAME, the prefix of its messages.

stop_pid() { # pid what: SIGTERM, then SIGKILL after 15 s
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "${NAME:-$(basename "$0" .sh)}: $2 (PID $pid) ignored SIGTERM: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

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

# A wrk script sending `method` with a JSON `body` (none when empty) that prints one
# WRKRESULT line: requests, duration, p50/p99 and the error counts.
wrk_script() { # file method body
  local file=$1 method=$2 body=$3
  {
    echo "wrk.method = \"$method\""
    if [ -n "$body" ]; then
      printf 'wrk.body = [[%s]]\n' "$body"
      echo 'wrk.headers["Content-Type"] = "application/json"'
    fi
    cat <<'EOF'
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKRESULT requests=%.0f duration_us=%.0f p50_us=%.0f p99_us=%.0f connect=%.0f read=%.0f write=%.0f status=%.0f timeout=%.0f\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
EOF
  } >"$file"
}

# wrk and nginx, installed with apt-get when missing (as root); NGINX is nginx's path.
ensure_wrk_and_nginx() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "$NAME: error: ${missing[*]} missing: apt-get install -y ${missing[*]} (as root)" >&2; exit 1; }
    echo "$NAME: installing ${missing[*]} (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
}
