#!/usr/bin/env bash
# CPU per request and memory of every role, to size the chart's `resources`: runs the
# production topology (`cargo xtask topology start`, every role its own process of the
# release binary) on Redis and PostgreSQL, exporting spans to `cargo xtask otlp-sink` and
# following a live fault state as in the chart, and plays the k6 journey
# (scripts/k6/journey.js) in phases, each bounded:
#
#   idle     nothing but the roles' own background work (fault-state polling, ...)
#   default  the chart's synthetics: synthetics.replicas x synthetics.vus users playing at
#            traffic level 1 with the journey's default pauses (1-3 s), and the users that
#            wait for a higher level asking it, as vus x maxTrafficLevel users per pod do
#   heavy    HEAVY_LEVEL (10, the traffic spike) times the playing users, same pauses
#
# Throughout, every role gets what a pod gets from the kubelet and the chart's Prometheus:
# /readyz every 5 s, /healthz every 10 s, /metrics every 15 s. Before and after each phase
# it reads every role's /metrics: process_cpu_seconds_total,
# http_server_requests_total (the shop's routes; /metrics, /healthz and /readyz left out)
# and process_resident_memory_bytes, plus each process's peak resident memory (VmHWM).
# It prints a table per role (CPU per request, CPU and memory at each load, per process
# and per pod at the chart's replica counts) and the requests a pod would need for the
# default load to stay under TARGET_PERCENT of its CPU request. Snapshots and k6 output:
# $MEASURE_DIR.
#
# Environment:
#   PHASE_SECONDS    length of the default and heavy phases               (60)
#   IDLE_SECONDS     length of the idle phase                             (30)
#   HEAVY_LEVEL      the heavy phase's multiple of the default load       (10)
#   TARGET_PERCENT   the default load's share of the proposed CPU request (25: half of
#                    50 %, so that a node half as fast still keeps an HPA well below its target)
#   REDIS_URL        redis://127.0.0.1:6379;  POSTGRES_URL postgres://postgres@127.0.0.1:5432/products
#   FAULT_STATE      the live fault state the roles follow    (REDIS_URL's server, db 15)
#   BASE_PORT        the roles' first port      (the first free block from 18180)
#   MEASURE_DIR      target/measure-cpu;  ECOMMERCE_BIN, K6: as scripts/test-topology.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

PHASE_SECONDS=${PHASE_SECONDS:-60}
IDLE_SECONDS=${IDLE_SECONDS:-30}
HEAVY_LEVEL=${HEAVY_LEVEL:-10}
TARGET_PERCENT=${TARGET_PERCENT:-25}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/products}
redis_server=${REDIS_URL#*://}
redis_server=${redis_server%%/*}
FAULT_STATE=${FAULT_STATE:-redis://$redis_server/15}
MEASURE_DIR=${MEASURE_DIR:-$ROOT/target/measure-cpu}
export TOPOLOGY_DIR="$MEASURE_DIR/topology"
VALUES=deploy/helm/ecommerce/values.yaml

say() { echo "== measure-cpu: $*"; }
fail() { echo "measure-cpu: FAILED: $*" >&2; exit 1; }
for n in PHASE_SECONDS IDLE_SECONDS HEAVY_LEVEL TARGET_PERCENT; do
  [[ ${!n} =~ ^[1-9][0-9]*$ ]] || fail "$n must be a whole number above 0, got '${!n}'"
done
[ "$PHASE_SECONDS" -le 600 ] && [ "$IDLE_SECONDS" -le 600 ] || fail "a phase lasts 600 s at most"

# The chart's synthetics (values.yaml): pods, users per pod, the highest level they follow.
value() { sed -n "/^synthetics:/,/^[a-z]/s/^  $1: *\([0-9]*\).*/\1/p" "$VALUES" | head -n 1; }
SYN_PODS=$(value replicas) SYN_VUS=$(value vus) SYN_MAX=$(value maxTrafficLevel)
[ -n "$SYN_PODS" ] && [ -n "$SYN_VUS" ] && [ -n "$SYN_MAX" ] || fail "cannot read synthetics from $VALUES"
PLAYING=$((SYN_PODS * SYN_VUS))

SINK_PID="" PROBES_PID=""
cleanup() {
  local rc=$?
  if [ -n "$PROBES_PID" ]; then kill -TERM "$PROBES_PID" 2>/dev/null || true; wait "$PROBES_PID" 2>/dev/null || true; fi
  timeout 60 cargo xtask topology stop >/dev/null 2>&1 || true
  if [ -n "$SINK_PID" ]; then kill -TERM "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; fi
  [ $rc -eq 0 ] || echo "measure-cpu: logs in $MEASURE_DIR" >&2
  exit $rc
}
trap cleanup EXIT

[ -n "${ECOMMERCE_BIN:-}" ] || say "building the release binary and the tools"
release_binary
cargo build --quiet --package xtask
K6=$("$ROOT/scripts/k6/ensure-k6.sh")
# Not the topology folder: its PID files are what `topology stop` stops.
rm -rf "$MEASURE_DIR/snapshots" "$MEASURE_DIR/series" "$MEASURE_DIR"/k6-*
mkdir -p "$MEASURE_DIR/snapshots" "$MEASURE_DIR/series"
if [ -z "${BASE_PORT:-}" ]; then
  BASE_PORT=18180
  while listening "$BASE_PORT" || listening $((BASE_PORT + 6)); do
    BASE_PORT=$((BASE_PORT + 10)); [ "$BASE_PORT" -lt 19000 ] || fail "no free ports"
  done
fi
export BASE_PORT

# Spans go somewhere, as the chart's roles send theirs to its collector.
cargo xtask otlp-sink --port-file "$MEASURE_DIR/sink.port" >"$MEASURE_DIR/sink.out" 2>"$MEASURE_DIR/sink.log" &
SINK_PID=$!
for _ in $(seq 100); do [ -s "$MEASURE_DIR/sink.port" ] && break; sleep 0.1; done
[ -s "$MEASURE_DIR/sink.port" ] || fail "the OTLP sink did not start"

say "topology on real stores, ports from $BASE_PORT, fault state $FAULT_STATE, spans to the sink"
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$(cat "$MEASURE_DIR/sink.port")" \
  ECOMMERCE_FAULT_STATE="$FAULT_STATE" \
  timeout 180 cargo xtask topology start --stores real >"$MEASURE_DIR/start.log" 2>&1 ||
  { cat "$MEASURE_DIR/start.log" >&2; fail "topology start"; }

# role pid address, from the PID files and each process's --listen.
ROLE_INFO=()
for pidfile in "$TOPOLOGY_DIR"/pids/*.pid; do
  role=$(basename "$pidfile" .pid) pid=$(cat "$pidfile")
  address=$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^--listen$/{n;p}')
  [ -n "$address" ] || fail "no --listen in the command line of $role (PID $pid)"
  ROLE_INFO+=("$role $pid $address")
done

snapshot() { # name: every role's /metrics and peak memory into snapshots/<name>/
  local dir="$MEASURE_DIR/snapshots/$1" entry role pid address
  mkdir -p "$dir"
  for entry in "${ROLE_INFO[@]}"; do
    read -r role pid address <<<"$entry"
    curl -sf --max-time 5 "http://$address/metrics" >"$dir/$role.metrics" || fail "$role's /metrics does not answer"
    sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" >"$dir/$role.hwm_kb"
  done
  date +%s.%N >"$dir/time"
}

journey() { # name users max-level: k6 for PHASE_SECONDS
  local summary="$MEASURE_DIR/k6-$1.json" rc=0
  say "$1: k6, VUS=$2${3:+ MAX_TRAFFIC_LEVEL=$3}, default pauses, ${PHASE_SECONDS}s"
  BASE_URL="http://127.0.0.1:$BASE_PORT" VUS=$2 MAX_TRAFFIC_LEVEL=$3 DURATION="${PHASE_SECONDS}s" \
    timeout $((PHASE_SECONDS + 90)) "$K6" run --quiet --no-color --summary-export "$summary" \
    scripts/k6/journey.js >"$MEASURE_DIR/k6-$1.log" 2>&1 || rc=$?
  [ $rc -eq 0 ] || { tail -n 20 "$MEASURE_DIR/k6-$1.log" >&2; fail "k6 ($1) exited $rc"; }
}

probes() { # the kubelet's probes and Prometheus's scrapes of every role, until killed
  local tick=0 entry role pid address cpu
  while sleep 5; do
    tick=$((tick + 1))
    for entry in "${ROLE_INFO[@]}"; do
      read -r role pid address <<<"$entry"
      curl -s -o /dev/null --max-time 3 "http://$address/readyz" || true
      [ $((tick % 2)) -ne 0 ] || curl -s -o /dev/null --max-time 2 "http://$address/healthz" || true
      if [ $((tick % 3)) -eq 0 ]; then # and keep the CPU counter, for the busiest 15 s
        cpu=$(curl -s --max-time 5 "http://$address/metrics" | sed -n 's/^process_cpu_seconds_total //p') || true
        [ -z "$cpu" ] || echo "$(date +%s.%N) $cpu" >>"$MEASURE_DIR/series/$role"
      fi
    done
  done
}
probes &
PROBES_PID=$!

say "idle (probes and scrapes only): ${IDLE_SECONDS}s"
sleep 2
snapshot idle-start; sleep "$IDLE_SECONDS"; snapshot idle-end
# The chart's default: pods x vus play, and each pod's other vus x (max - 1) users wait
# and ask the level (one k6 process runs them all: vus x pods x max users).
snapshot default-start; journey default "$PLAYING" "$SYN_MAX"; snapshot default-end
snapshot heavy-start; journey heavy $((PLAYING * HEAVY_LEVEL)) ""; snapshot heavy-end

say "the table (snapshots in $MEASURE_DIR/snapshots)"
python3 - "$MEASURE_DIR" "$VALUES" "$TARGET_PERCENT" <<'PY'
import json, math, pathlib, re, sys
out, values, target = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
snap = out / "snapshots"
PROBES = {"/metrics", "/healthz", "/readyz"}
PHASES = ("idle", "default", "heavy")

def read(point, role):
    """CPU seconds, requests to the shop's routes, RSS and peak RSS (bytes) at a snapshot."""
    cpu = rss = requests = 0.0
    for line in (snap / point / f"{role}.metrics").read_text().splitlines():
        if line.startswith("process_cpu_seconds_total "):
            cpu = float(line.split()[1])
        elif line.startswith("process_resident_memory_bytes "):
            rss = float(line.split()[1])
        elif line.startswith("http_server_requests_total{"):
            route = re.search(r'route="([^"]*)"', line)
            if not (route and route.group(1) in PROBES):
                requests += float(line.rsplit(" ", 1)[1])
    hwm = int((snap / point / f"{role}.hwm_kb").read_text().strip() or 0) * 1024
    return cpu, requests, rss, hwm

def seconds(phase):
    t = lambda point: float((snap / point / "time").read_text())
    return t(f"{phase}-end") - t(f"{phase}-start")

# The chart's replicas per role (roles.<role>.replicas in values.yaml).
replicas, in_roles, role = {}, False, None
for line in open(values):
    if re.match(r"^\S", line):
        in_roles = line.startswith("roles:")
    elif in_roles and (m := re.match(r"^  ([a-z-]+):", line)):
        role = m.group(1)
    elif in_roles and role and (m := re.match(r"^    replicas:\s*(\d+)", line)):
        replicas[role] = int(m.group(1))

def busiest(phase, role):
    """The highest CPU rate (m) between two consecutive scrapes (about 15 s, the window an
    HPA reads) within the phase; the phase's average when there are fewer than two."""
    t = lambda point: float((snap / point / "time").read_text())
    start, end = t(f"{phase}-start"), t(f"{phase}-end")
    try:
        points = [tuple(map(float, l.split())) for l in (out / "series" / role).read_text().splitlines()]
    except OSError:
        points = []
    points = [p for p in points if start <= p[0] <= end]
    rates = [1000 * (c1 - c0) / (t1 - t0) for (t0, c0), (t1, c1) in zip(points, points[1:]) if t1 - t0 >= 10]
    return max(rates, default=None)

def journeys(phase):
    try:
        m = json.loads((out / f"k6-{phase}.json").read_text())["metrics"]
        return int(m["journeys_completed"]["count"]), m["http_reqs"]["rate"]
    except (OSError, KeyError, ValueError):
        return 0, 0.0

rows = []
for r in sorted(p.stem for p in (snap / "idle-start").glob("*.metrics")):
    row = {"role": r, "pods": replicas.get(r, 1)}
    for phase in PHASES:
        c0, q0, _, _ = read(f"{phase}-start", r)
        c1, q1, rss, hwm = read(f"{phase}-end", r)
        m = 1000 * (c1 - c0) / seconds(phase)
        peak = busiest(phase, r)
        row[phase] = {"m": m, "peak": m if peak is None else max(m, peak), "rps": (q1 - q0) / seconds(phase), "rss": rss}
        row["hwm"] = max(row.get("hwm", 0), hwm)
    rows.append(row)

mib = lambda b: b / 2**20
up = lambda x, step: int(step * math.ceil(x / step))
for phase in ("default", "heavy"):
    n, rate = journeys(phase)
    print(f"k6 {phase}: {n} journeys, {rate:.1f} requests/s at the web-gateway")
print("\nPer process (one of each role); CPU in millicores (m) over each phase; CPU per request:")
print("the heavy phase's CPU above idle, per request to the role's own routes.")
print("| role | CPU idle | req/s default | CPU default (busiest 15 s) | req/s heavy | CPU heavy (busiest 15 s) | CPU ms per request | RSS after heavy | peak RSS |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for w in rows:
    i, d, h = (w[p] for p in PHASES)
    per = (h["m"] - i["m"]) / h["rps"] if h["rps"] else float("nan")
    print(f"| {w['role']} | {i['m']:.1f}m | {d['rps']:.1f} | {d['m']:.1f}m ({d['peak']:.1f}m) | {h['rps']:.1f} | "
          f"{h['m']:.1f}m ({h['peak']:.1f}m) | "
          f"{per:.3f} | {mib(h['rss']):.1f} MiB | {mib(w['hwm']):.1f} MiB |")

print(f"\nPer pod at the chart's replicas (idle CPU per pod, the load's share divided among the pods). CPU")
print(f"request: the default load's busiest 15 s / {target}%, at least 10m, up to a multiple of 5m, so that")
print(f"an HPA's reading at the default load stays under {target}%; memory request: peak RSS x 1.5, at least")
print("32Mi, up to a multiple of 16Mi; limits: the larger of 500m and twice the heavy load's busiest 15 s,")
print("the larger of 128Mi and 4 x peak RSS (up to a multiple of 64Mi).")
print("| role | pods | CPU per pod default (busiest 15 s) | CPU per pod heavy (busiest 15 s) | CPU request | default / request (busiest) | heavy / request (busiest) | memory request | limits |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for w in rows:
    n, idle = w["pods"], w["idle"]["m"]
    pod = lambda phase, key: idle + (w[phase][key] - idle) / n
    (d, dp), (h, hp) = ((pod(p, "m"), pod(p, "peak")) for p in ("default", "heavy"))
    cpu = max(10, up(dp * 100 / target, 5))
    mem = max(32, up(1.5 * mib(w["hwm"]), 16))
    print(f"| {w['role']} | {n} | {d:.1f}m ({dp:.1f}m) | {h:.1f}m ({hp:.1f}m) | {cpu}m | "
          f"{100 * d / cpu:.0f}% ({100 * dp / cpu:.0f}%) | {100 * h / cpu:.0f}% ({100 * hp / cpu:.0f}%) | "
          f"{mem}Mi | {max(500, up(2 * hp, 100))}m, {max(128, up(4 * mib(w['hwm']), 64))}Mi |")
PY
say "done (k6 summaries: $MEASURE_DIR/k6-*.json)"
