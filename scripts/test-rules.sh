#!/usr/bin/env bash
# Checks the chart's Prometheus rules and Grafana dashboards:
#   1. promtool check rules   deploy/helm/ecommerce/rules/*.yaml
#   2. promtool test rules    tests/rules/*.yaml (each alert fires on its scenario, stays
#                             quiet when healthy; the recording rules' ratios)
#   3. the dashboards         deploy/helm/ecommerce/dashboards/*.json: valid JSON, unique
#                             uids, every panel (rows' included) queries something, only the
#                             prometheus and jaeger data sources, only Grafana's
#                             $__rate_interval/$__interval/$__range in a query, and every
#                             query parses (promtool checks them as recording rules).
# promtool comes with Debian's `prometheus` package, installed here when missing and root.
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test-rules: installing promtool (Debian package prometheus)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "test-rules: promtool is missing: install Prometheus (Debian: apt-get install prometheus)" >&2
    exit 1
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

promtool check rules deploy/helm/ecommerce/rules/*.yaml >"$tmp/check.log" 2>&1 \
  || { cat "$tmp/check.log" >&2; echo "test-rules: promtool check rules FAILED" >&2; exit 1; }
echo "ok: promtool check rules: $(grep -c SUCCESS "$tmp/check.log") rule files"

promtool test rules tests/rules/*.yaml >"$tmp/test.log" 2>&1 \
  || { cat "$tmp/test.log" >&2; echo "test-rules: promtool test rules FAILED" >&2; exit 1; }
echo "ok: promtool test rules: $(grep -c SUCCESS "$tmp/test.log") test files"

# Writes every dashboard query as a recording rule into $tmp/exprs.yaml for promtool to parse.
python3 - "$tmp/exprs.yaml" deploy/helm/ecommerce/dashboards/*.json <<'PY'
import json, re, sys

out, paths = sys.argv[1], sys.argv[2:]
DATASOURCES = {"prometheus", "jaeger"}
TOKENS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
errors, uids, exprs = [], {}, []

def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))

def datasources(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource" and isinstance(v, dict):
                yield v.get("uid")
            elif k == "datasource" and v is not None:
                yield v  # a bare name or "${var}": never allowed here
            else:
                yield from datasources(v)
    elif isinstance(node, list):
        for v in node:
            yield from datasources(v)

def check_expr(where, expr):
    if not expr.strip():
        errors.append(f"{where}: empty expr")
        return
    for token in set(re.findall(r"\$\{?\w+", expr)):
        if token.replace("{", "") not in TOKENS:
            errors.append(f"{where}: {token} is not one of {', '.join(sorted(TOKENS))}")
            return
    for token, value in TOKENS.items():
        expr = expr.replace(token, value)
    exprs.append((where, expr))

for path in paths:
    try:
        d = json.load(open(path))
    except ValueError as e:
        errors.append(f"{path}: not JSON: {e}")
        continue
    uid = d.get("uid")
    if not uid:
        errors.append(f"{path}: no uid")
    elif uid in uids:
        errors.append(f"{path}: uid {uid} also in {uids[uid]}")
    uids[uid] = path
    if "ecommerce" not in d.get("tags", []):
        errors.append(f"{path}: not tagged ecommerce")
    for ds in datasources(d):
        if ds not in DATASOURCES:
            errors.append(f"{path}: data source {ds!r} is not one of {sorted(DATASOURCES)}")
    for p in panels(d.get("panels", [])):
        if p.get("type") == "row":
            continue
        where = f"{path}: panel {p.get('title')!r}"
        targets = p.get("targets") or []
        if not targets:
            errors.append(f"{where}: no targets")
        for t in targets:
            check_expr(f"{where} {t.get('refId')}", t.get("expr") or "")
    for a in d.get("annotations", {}).get("list", []):
        if "expr" in a:
            check_expr(f"{path}: annotation {a.get('name')!r}", a["expr"])

with open(out, "w") as f:
    f.write("groups:\n  - name: dashboards\n    rules:\n")
    for i, (where, expr) in enumerate(exprs):
        f.write(f"      # {where}\n      - record: dashboard:query:{i}\n        expr: {json.dumps(expr)}\n")
for e in errors:
    print(e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"ok: dashboards: {len(paths)} files, {len(uids)} uids, {len(exprs)} queries, data sources "
      f"{'/'.join(sorted(DATASOURCES))} only")
PY

if ! promtool check rules "$tmp/exprs.yaml" >"$tmp/exprs.log" 2>&1; then
  cat "$tmp/exprs.log" >&2
  # Name the panel of each query promtool refused.
  for n in $(grep -o 'dashboard:query:[0-9]*' "$tmp/exprs.log" | sort -u); do
    grep -B1 "record: $n\$" "$tmp/exprs.yaml" | head -1 | sed 's/^ *# /  in /' >&2
  done
  echo "test-rules: a dashboard query does not parse" >&2
  exit 1
fi
echo "ok: dashboard queries parse ($(grep -o '[0-9]* rules found' "$tmp/exprs.log"))"
