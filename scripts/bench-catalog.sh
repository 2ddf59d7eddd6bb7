#!/usr/bin/env bash
# The catalog at scale: for each size in ROWS (products, the 32 built-in ones included), a
# fresh PostgreSQL database loaded by `ecommerce migrate --generate`, the plans of every
# query shape the product role sends (EXPLAIN (ANALYZE, BUFFERS), run as the role runs
# them: prepared, planned for their parameters), and the product role alone under wrk (16
# connections, bounded runs) with its resident memory before and after each run. The
# databases are its own, dropped at the end.
#
#   scripts/bench-catalog.sh                           # 32, 100,000 and 1,000,000 products
#   ROWS="32 100000" BENCH_SECONDS=5 scripts/bench-catalog.sh
#   POSTGRES_SERVER=postgres://u@h:5432 scripts/bench-catalog.sh
#
# Search terms are those of the generated catalog (src/catalog/generated.rs): COMMON_TERM
# matches about a quarter of it, RARE_TERM one product in 50,000, SUGGESTION is what a
# shopper has typed of a flavor (about a tenth), MID_TERM an origin (about 2.5%: the costliest
# capped count, measured without a target). Plans and figures go to target/bench-catalog/.
set -euo pipefail
cd "$(dirname "$0")/.."

POSTGRES_SERVER=${POSTGRES_SERVER:-postgres://postgres@127.0.0.1:5432}
ROWS=${ROWS:-32 100000 1000000}
BENCH_SECONDS=${BENCH_SECONDS:-10}
WARMUP_SECONDS=${WARMUP_SECONDS:-2}
COMMON_TERM=${COMMON_TERM:-tea}
RARE_TERM=${RARE_TERM:-saffron}
SUGGESTION=${SUGGESTION:-vanil}
MID_TERM=${MID_TERM:-ethiopia}
# The cap of src/stores/mod.rs (SEARCH_COUNT_CAP): a count reads at most one row more.
COUNT_CAP=${COUNT_CAP:-100}
DB=ecommerce_bench_catalog
WORK=target/bench-catalog
mkdir -p "$WORK"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
PID=""

stop_role() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi
}
cleanup() {
  stop_role
  psql -X -q "$POSTGRES_SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
BIN=target/release/ecommerce
URL="$POSTGRES_SERVER/$DB"

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr)"
echo "PostgreSQL: $(psql -X -At "$POSTGRES_SERVER/postgres" -c 'SHOW server_version'), shared_buffers $(psql -X -At "$POSTGRES_SERVER/postgres" -c 'SHOW shared_buffers')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# The statements of src/stores/postgres.rs, prepared as the role prepares them.
COLUMNS="id, name, category, price::text, rating, reviews, filename, description, alcoholic, temperature, type"
ORDER="ORDER BY rating DESC, reviews DESC, id"
MATCHES="(name_lc LIKE lower(\$1) OR description_lc LIKE lower(\$1))"
PREPARE="
SET plan_cache_mode = force_custom_plan;
PREPARE best(bigint) AS SELECT $COLUMNS FROM products $ORDER LIMIT \$1;
PREPARE size AS SELECT products FROM catalog_meta;
PREPARE matching(text, bigint) AS SELECT id, rating, reviews FROM products WHERE $MATCHES LIMIT \$2;
PREPARE page(text, bigint) AS SELECT $COLUMNS FROM products WHERE $MATCHES $ORDER LIMIT \$2;
PREPARE by_id(text) AS SELECT $COLUMNS FROM products WHERE id = \$1;
PREPARE documents(text[]) AS SELECT $COLUMNS FROM products WHERE id = ANY(\$1) $ORDER;"

# search_shapes LABEL TERM: the statements a search for TERM sends, as the role decides: its
# matches up to one past the cap, then (past it) the display-order page, or the best rated
# of them by id.
search_shapes() {
  local filter="(name_lc LIKE lower('%$2%') OR description_lc LIKE lower('%$2%'))" n top
  n=$(psql -X -At "$URL" -c "SELECT count(*) FROM (SELECT 1 FROM products WHERE $filter LIMIT $((COUNT_CAP + 1))) AS m")
  shapes+=("$1 $2: its matches, up to one past the cap|EXECUTE matching('%$2%', $((COUNT_CAP + 1)))")
  if [ "$n" -gt "$COUNT_CAP" ]; then
    shapes+=("$1 $2: past the cap, the page in display order|EXECUTE page('%$2%', 6)")
  elif [ "$n" -gt 0 ]; then
    top=$(psql -X -At "$URL" -c "SELECT '{' || string_agg(id, ',') || '}' FROM (SELECT id FROM products WHERE $filter $ORDER LIMIT 6) AS t")
    shapes+=("$1 $2: all $n matches, the best rated by id|EXECUTE documents('$top')")
  fi
}

# plans ROWS "TITLE|EXECUTE ..."...: each statement run once unseen (warm, as the role's
# steady state), then explained.
plans() {
  local rows=$1; shift
  local sql="$PREPARE"
  for shape in "$@"; do
    local title=${shape%%|*} execute=${shape#*|}
    sql+="
SELECT \$q\$
-- $title: $execute\$q\$;
\\o /dev/null
$execute;
\\o
EXPLAIN (ANALYZE, BUFFERS) $execute;"
  done
  psql -X -q -At -v ON_ERROR_STOP=1 "$URL" <<<"$sql" | tee "$WORK/plans-$rows.txt"
}

# measure ROWS NAME METHOD PATH BODY: wrk after a warm-up; a table row and a line of $RESULTS.
measure() {
  local rows=$1 name=$2 method=$3 path=$4 body=$5
  cat >"$WORK/req.lua" <<LUA
wrk.method = "$method"
wrk.body = [=[$body]=]
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.2f %.2f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
LUA
  local rss_before rss_after out
  rss_before=$(rss)
  timeout $((WARMUP_SECONDS + 20)) wrk -t2 -c16 -d"${WARMUP_SECONDS}s" --timeout 5s \
    -s "$WORK/req.lua" "http://127.0.0.1:$PORT$path" >/dev/null
  out=$(timeout $((BENCH_SECONDS + 20)) wrk -t2 -c16 -d"${BENCH_SECONDS}s" --timeout 5s \
    -s "$WORK/req.lua" "http://127.0.0.1:$PORT$path" | grep '^RESULT')
  rss_after=$(rss)
  read -r _ rps p50 p99 errors <<<"$out"
  printf '| %s | %s | %s | %s ms | %s ms | %s | %s → %s MB |\n' \
    "$rows" "$name" "$rps" "$p50" "$p99" "$errors" "$rss_before" "$rss_after"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rows" "$name" "$rps" "$p50" "$p99" "$errors" \
    "$rss_before" "$rss_after" >>"$RESULTS"
}

rss() { awk '/^VmRSS/ {printf "%.1f", $2 / 1000}' "/proc/$PID/status"; }
peak_rss() { awk '/^VmHWM/ {printf "%.1f", $2 / 1000}' "/proc/$PID/status"; }

# whole_catalog: `/documents` without ids once (the whole catalog, streamed), its time and
# size, and the role's resident memory before, after, and at its peak over all its runs.
whole_catalog() {
  local before out seconds bytes
  before=$(rss)
  out=$(curl -sf -o /dev/null -w '%{time_total} %{size_download}' --max-time 120 \
    "http://127.0.0.1:$PORT/documents")
  read -r seconds bytes <<<"$out"
  printf 'whole catalog (/documents, no ids): %s s, %s; RSS %s → %s MB, peak %s MB\n' "$seconds" \
    "$(awk -v b="$bytes" 'BEGIN {if (b >= 1e6) printf "%.1f MB", b / 1e6; else printf "%.0f KB", b / 1e3}')" \
    "$before" "$(rss)" "$(peak_rss)"
}

search_body() { printf '{"query":"%s","page":{"size":6}}' "$1"; }

for rows in $ROWS; do
  generate=$((rows - 32))
  [ "$generate" -ge 0 ] || { echo "ROWS: at least 32 (the built-in catalog), not $rows" >&2; exit 1; }
  echo
  echo "== $rows products: ecommerce migrate --generate $generate"
  psql -X -q "$POSTGRES_SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
  started=$(date +%s%N)
  RUST_LOG=warn "$BIN" migrate --product-data "$URL" --generate "$generate"
  printf 'loaded in %s ms: %s\n' "$((($(date +%s%N) - started) / 1000000))" \
    "$(psql -X -At "$URL" -c "SELECT pg_size_pretty(pg_table_size('products')) || ' table, ' || pg_size_pretty(pg_indexes_size('products')) || ' indexes'")"
  # The steady state a load reaches on its own once autovacuum has run (visibility and hint
  # bits set, nothing left to write back), so that neither runs during the measurements.
  psql -X -q "$URL" -c "VACUUM products"
  psql -X -q "$URL" -c "CHECKPOINT" 2>/dev/null || echo "(CHECKPOINT not allowed: dirty pages may be written during the runs)"
  sync
  if [ "$generate" -gt 0 ]; then
    by_id=$(printf 'g%07d' $((generate / 2)))
    three="[\"f95e2475\",\"g0000001\",\"$by_id\"]"
    three_sql="'{f95e2475,g0000001,$by_id}'"
  else
    by_id=f95e2475
    three='["f95e2475","d0a9442c","ee0a957a"]'
    three_sql="'{f95e2475,d0a9442c,ee0a957a}'"
  fi

  echo "== $rows products: plans"
  shapes=("six best rated: the page|EXECUTE best(6)" "six best rated: the total|EXECUTE size")
  search_shapes "common term" "$COMMON_TERM"
  search_shapes "rare term" "$RARE_TERM"
  search_shapes "mid term" "$MID_TERM"
  shapes+=("suggestions $SUGGESTION: the page and one row past it|EXECUTE page('%$SUGGESTION%', 7)")
  shapes+=("one product by id|EXECUTE by_id('$by_id')" "documents, 3 ids|EXECUTE documents($three_sql)")
  plans "$rows" "${shapes[@]}"

  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  RUST_LOG=warn "$BIN" serve --role product --listen "127.0.0.1:$PORT" --product-data "$URL" \
    >"$WORK/product-$rows.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$WORK/product-$rows.log"; exit 1; }

  echo "== $rows products: the product role (wrk, 16 connections, ${WARMUP_SECONDS} s warm-up, ${BENCH_SECONDS} s measured)"
  printf '| products | request | req/s | p50 | p99 | errors | RSS before → after |\n'
  printf '| ---: | --- | ---: | ---: | ---: | ---: | --- |\n'
  measure "$rows" "six best rated (empty query, size 6)" POST /search "$(search_body "")"
  measure "$rows" "search, common term $COMMON_TERM, size 6" POST /search "$(search_body "$COMMON_TERM")"
  measure "$rows" "search, rare term $RARE_TERM, size 6" POST /search "$(search_body "$RARE_TERM")"
  measure "$rows" "suggestions $SUGGESTION, size 6" POST /suggestions "$(search_body "$SUGGESTION")"
  measure "$rows" "one product by id" GET "/products/$by_id" ''
  measure "$rows" "documents, 3 ids" POST /documents "$three"
  measure "$rows" "search, mid term $MID_TERM, size 6 (no target)" POST /search "$(search_body "$MID_TERM")"
  whole_catalog
  stop_role
done

echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if grep -q '^1000000	' "$RESULTS"; then
  echo "== targets at 1,000,000 products (p99 ≤ 50 ms each, RSS flat: within 5 MB)"
  printf '| request | target | req/s | p99 | RSS | result |\n| --- | ---: | ---: | ---: | --- | --- |\n'
  awk -F'\t' '$1 == 1000000 {
    target = 0
    if ($2 ~ /^six best/) target = 5000
    else if ($2 ~ /common|rare|^suggestions/) target = 1500
    else if ($2 ~ /by id/) target = 10000
    else if ($2 ~ /^documents/) target = 8000
    if (!target) next
    met = ($3 >= target && $5 <= 50 && $6 == 0 && $8 - $7 <= 5)
    why = ""
    if ($3 < target) why = why sprintf(" %.0f%% below;", 100 * (1 - $3 / target))
    if ($5 > 50) why = why sprintf(" p99 %.1fx;", $5 / 50)
    if ($6 > 0) why = why " errors;"
    if ($8 - $7 > 5) why = why " RSS grew;"
    printf "| %s | %d | %d | %s ms | %s → %s MB | %s |\n", $2, target, $3, $5, $7, $8, met ? "met" : "**missed**:" why
  }' "$RESULTS"
fi
