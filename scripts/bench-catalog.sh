#!/usr/bin/env bash
# The catalog at scale: 100,000 products in PostgreSQL, and what search and lookups cost.
# Shows the query plans (the trigram and display-order indexes at work) and measures the
# product role with wrk, each run bounded. Uses a database of its own, dropped at the end.
#
#   scripts/bench-catalog.sh                    # PostgreSQL at postgres://postgres@127.0.0.1:5432
#   POSTGRES_SERVER=postgres://u@h:5432 BENCH_SECONDS=5 scripts/bench-catalog.sh
set -euo pipefail
cd "$(dirname "$0")/.."

POSTGRES_SERVER=${POSTGRES_SERVER:-postgres://postgres@127.0.0.1:5432}
BENCH_SECONDS=${BENCH_SECONDS:-5}
ROWS=${ROWS:-100000}
DB=ecommerce_bench_catalog
URL="$POSTGRES_SERVER/$DB"
WORK=target/bench-catalog
mkdir -p "$WORK"
PID=""

cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  psql -X -q "$POSTGRES_SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
BIN=target/release/ecommerce

echo "== a catalog of $ROWS products"
psql -X -q "$POSTGRES_SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
RUST_LOG=warn "$BIN" migrate --product-data "$URL"
psql -X -q "$URL" <<SQL
INSERT INTO products (id, name, category, price, rating, reviews, filename, description,
                      alcoholic, temperature, type)
SELECT 'bench' || lpad(i::text, 6, '0'),
       (ARRAY['Sweet Tea', 'Cold Brew', 'Matcha Latte', 'Chai', 'Lemonade', 'Espresso', 'Cider'])[1 + i % 7]
         || ' No. ' || i,
       NULL, 1 + (i % 2000) / 100.0, (i % 50) / 10.0, i % 500, 'tea.jpeg',
       'Small batch ' || i || ', brewed to order.', 'non-alcoholic', 'hot', 'tea'
FROM generate_series(1, $ROWS - 32) AS i;
ANALYZE products;
SQL
psql -X -At "$URL" -c "SELECT count(*) || ' products' FROM products"

echo "== query plans"
plan() {
  echo "-- $1"
  psql -X -At "$URL" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING ON, SUMMARY ON) $2" \
    | grep -E "Index|Bitmap|Seq Scan|Limit|Execution Time" | sed 's/^/   /'
}
COLS="id, name, price::text, rating, reviews"
plan "search for a rare term (trigram indexes)" \
  "SELECT $COLS FROM products WHERE name ILIKE '%no. 4242%' OR description ILIKE '%no. 4242%' ORDER BY rating DESC, reviews DESC, id LIMIT 6"
plan "the six best rated (display-order index)" \
  "SELECT $COLS FROM products WHERE name ILIKE '%%' OR description ILIKE '%%' ORDER BY rating DESC, reviews DESC, id LIMIT 6"
plan "one product by id (primary key)" \
  "SELECT $COLS FROM products WHERE id = 'bench050000'"
plan "counting every match of an empty query (the search's total_results)" \
  "SELECT count(*) FROM products WHERE name ILIKE '%%' OR description ILIKE '%%'"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn "$BIN" serve --role product --listen "127.0.0.1:$PORT" --product-data "$URL" \
  >"$WORK/product.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$WORK/product.log"; exit 1; }

echo "== the product role on $ROWS products (wrk, 16 connections, ${BENCH_SECONDS}s each)"
printf '| request | req/s | p50 | p99 | errors |\n| --- | --- | --- | --- | --- |\n'
measure() { # name method path body
  cat >"$WORK/req.lua" <<LUA
wrk.method = "$2"
wrk.body = [=[$4]=]
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.2f %.2f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
LUA
  local out
  out=$(timeout $((BENCH_SECONDS + 20)) wrk -t2 -c16 -d"${BENCH_SECONDS}s" --timeout 5s \
    -s "$WORK/req.lua" "http://127.0.0.1:$PORT$3" | grep '^RESULT')
  read -r _ rps p50 p99 errors <<<"$out"
  printf '| %s | %s | %s ms | %s ms | %s |\n' "$1" "$rps" "$p50" "$p99" "$errors"
}
measure "search, rare term, size 6" POST /search '{"query":"no. 4242","page":{"size":6}}'
measure "search, common term, size 6" POST /search '{"query":"matcha","page":{"size":6}}'
measure "six best rated (empty query)" POST /search '{"query":"","page":{"size":6}}'
measure "one product by id" GET /products/bench050000 ''
measure "documents, 3 ids" POST /documents '["bench000001","bench050000","f95e2475"]'
