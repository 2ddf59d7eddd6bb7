//! The chart's Grafana dashboards as Prometheus sees them: every panel's queries (rows'
//! nested panels too) and the dashboard's variables, substituted so that Prometheus can
//! evaluate each query as Grafana would send it.

use std::collections::BTreeMap;

use serde_json::Value;

/// Grafana's built-in variables, as a 15 s scrape makes them.
pub const BUILTINS: &[(&str, &str)] = &[
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__interval_ms", "15000"),
    ("__range", "5m"),
    ("__range_s", "300"),
    ("__range_ms", "300000"),
];

/// One query of one panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The panel's title ("(untitled)" when it has none).
    pub panel: String,
    pub expr: String,
}

/// The dashboard itself: the document, or its `dashboard` member when the file wraps it
/// (as Grafana's API and some provisioning tools do).
fn dashboard(document: &Value) -> &Value {
    match document.get("dashboard") {
        Some(inner) if inner.is_object() => inner,
        _ => document,
    }
}

/// Every Prometheus query of every panel, in the order the dashboard lists them: the
/// `expr` of each target of each panel, rows' nested `panels` (and old-style `rows`)
/// included. Targets of another data source type (Loki, Tempo) are left out.
pub fn queries(document: &Value) -> Vec<Query> {
    let mut found = Vec::new();
    walk(dashboard(document), &mut found, false);
    found
}

/// `node` is a dashboard, a row or a panel.
fn walk(node: &Value, found: &mut Vec<Query>, is_panel: bool) {
    if is_panel && !other_source(node) {
        let title = node
            .get("title")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .unwrap_or("(untitled)");
        for target in array(node, "targets") {
            let expr = target.get("expr").and_then(Value::as_str).unwrap_or("");
            if !expr.trim().is_empty() && !other_source(target) {
                found.push(Query {
                    panel: title.to_string(),
                    expr: expr.to_string(),
                });
            }
        }
    }
    for child in array(node, "panels") {
        walk(child, found, true);
    }
    for row in array(node, "rows") {
        walk(row, found, false);
    }
}

fn array<'a>(node: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    node.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Whether a panel or target names a data source of a type other than Prometheus.
fn other_source(node: &Value) -> bool {
    node.get("datasource")
        .and_then(|d| d.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t != "prometheus")
}

/// How a dashboard variable gets its value here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variable {
    /// A value of its own (a constant, a text box, a custom list's first item).
    Fixed(String),
    /// "All" (a multi-value or include-all variable): a regex matching every value.
    All(String),
    /// The first value its `label_values(...)` query finds.
    LabelValues {
        selector: Option<String>,
        label: String,
    },
}

/// The dashboard's variables (`templating.list`), by name.
pub fn variables(document: &Value) -> BTreeMap<String, Variable> {
    let mut vars = BTreeMap::new();
    let list = dashboard(document)
        .get("templating")
        .map_or(&Value::Null, |t| t);
    for var in array(list, "list") {
        let Some(name) = var.get("name").and_then(Value::as_str) else {
            continue;
        };
        let text = |key: &str| var.get(key).and_then(Value::as_str).map(str::to_string);
        let flag = |key: &str| var.get(key).and_then(Value::as_bool).unwrap_or(false);
        let current = var
            .get("current")
            .and_then(|c| c.get("value"))
            .and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Array(items) => items.first().and_then(Value::as_str).map(str::to_string),
                _ => None,
            })
            .filter(|v| !v.is_empty() && v != "$__all");
        let query = match var.get("query") {
            Some(Value::String(q)) => Some(q.clone()),
            Some(Value::Object(o)) => o.get("query").and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        let all = || {
            Variable::All(
                text("allValue")
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| ".*".into()),
            )
        };
        let kind = text("type").unwrap_or_default();
        let value = match kind.as_str() {
            "query" if flag("includeAll") || flag("multi") => all(),
            "query" => match query.as_deref().and_then(label_values) {
                Some((selector, label)) => Variable::LabelValues { selector, label },
                None => current.map_or_else(all, Variable::Fixed),
            },
            "custom" if flag("includeAll") || flag("multi") => all(),
            "custom" => current
                .or_else(|| query.and_then(|q| q.split(',').next().map(|s| s.trim().to_string())))
                .map_or_else(all, Variable::Fixed),
            "constant" | "textbox" => Variable::Fixed(current.or(query).unwrap_or_default()),
            "interval" => Variable::Fixed(current.unwrap_or_else(|| "1m".into())),
            "datasource" => Variable::Fixed(current.unwrap_or_else(|| "prometheus".into())),
            // Ad hoc filters and the like add nothing to a query's text.
            _ => continue,
        };
        vars.insert(name.to_string(), value);
    }
    vars
}

/// `label_values(label)` or `label_values(selector, label)`: the selector and the label.
pub fn label_values(query: &str) -> Option<(Option<String>, String)> {
    let inner = query
        .trim()
        .strip_prefix("label_values")?
        .trim_start()
        .strip_prefix('(')?
        .trim_end()
        .strip_suffix(')')?;
    // The label is the last argument; a selector may hold commas of its own.
    let (selector, label) = match inner.rfind(',') {
        Some(at) => (Some(inner[..at].trim().to_string()), inner[at + 1..].trim()),
        None => (None, inner.trim()),
    };
    let valid = !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (selector.filter(|s| !s.is_empty()), label.to_string()))
}

/// A variable's value in a query, and whether it is a regex for every value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub text: String,
    pub regex: bool,
}

/// `expr` with Grafana's variables replaced: `$name`, `${name}`, `${name:format}` and
/// `[[name]]`, from `values` (the built-ins are added). A regex for every value that
/// lands in an equality matcher (`job="$job"`) turns it into a regex matcher, as Grafana
/// does for "All". Unknown variables stay as written.
pub fn substitute(expr: &str, values: &BTreeMap<String, Replacement>) -> String {
    let lookup = |name: &str| -> Option<Replacement> {
        BUILTINS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| Replacement {
                text: v.to_string(),
                regex: false,
            })
            .or_else(|| values.get(name).cloned())
    };
    let chars: Vec<char> = expr.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let (name, end) = match (chars[i], chars.get(i + 1)) {
            ('$', Some('{')) => match chars[i + 2..].iter().position(|c| *c == '}') {
                Some(len) => {
                    let inside: String = chars[i + 2..i + 2 + len].iter().collect();
                    let name = inside.split(':').next().unwrap_or_default().to_string();
                    (Some(name), i + 3 + len)
                }
                None => (None, i + 1),
            },
            ('$', Some(c)) if c.is_ascii_alphabetic() || *c == '_' => {
                let mut end = i + 1;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_')
                {
                    end += 1;
                }
                (Some(chars[i + 1..end].iter().collect()), end)
            }
            ('[', Some('[')) => {
                let rest: String = chars[i + 2..].iter().collect();
                match rest.find("]]") {
                    Some(at) => (
                        Some(rest[..at].to_string()),
                        i + 2 + rest[..at].chars().count() + 2,
                    ),
                    None => (None, i + 1),
                }
            }
            _ => (None, i + 1),
        };
        match name.as_deref().and_then(lookup) {
            Some(value) => {
                if value.regex && out.ends_with("=\"") && !out.ends_with("!=\"") {
                    out.pop();
                    out.push_str("~\"");
                }
                out.push_str(&value.text);
                i = end;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queries_come_from_every_panel_rows_nested_ones_too() {
        let dashboard = json!({
            "title": "Shop",
            "panels": [
                {"type": "row", "title": "Requests", "collapsed": true, "panels": [
                    {"title": "Rate", "targets": [
                        {"expr": "sum(rate(a_total[$__rate_interval]))", "refId": "A"},
                        {"expr": "sum(rate(b_total[5m]))", "refId": "B"}
                    ]}
                ]},
                {"title": "Errors", "targets": [{"expr": "c"}, {"expr": "  "}, {"refId": "X"}]},
                {"title": "Logs", "datasource": {"type": "loki", "uid": "l"},
                 "targets": [{"expr": "{app=\"shop\"}"}]},
                {"title": "", "targets": [
                    {"expr": "d"},
                    {"expr": "{app=\"x\"}", "datasource": {"type": "loki"}}
                ]}
            ],
            "rows": [{"panels": [{"title": "Old style", "targets": [{"expr": "e"}]}]}]
        });
        let found: Vec<(String, String)> = queries(&dashboard)
            .into_iter()
            .map(|q| (q.panel, q.expr))
            .collect();
        let expected = [
            ("Rate", "sum(rate(a_total[$__rate_interval]))"),
            ("Rate", "sum(rate(b_total[5m]))"),
            ("Errors", "c"),
            ("(untitled)", "d"),
            ("Old style", "e"),
        ];
        assert_eq!(found, expected.map(|(p, e)| (p.to_string(), e.to_string())));
        // A dashboard wrapped as Grafana's API sends it reads the same.
        assert_eq!(queries(&json!({"dashboard": dashboard})).len(), 5);
    }

    fn values(pairs: &[(&str, &str, bool)]) -> BTreeMap<String, Replacement> {
        pairs
            .iter()
            .map(|(n, v, regex)| {
                (
                    n.to_string(),
                    Replacement {
                        text: v.to_string(),
                        regex: *regex,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn grafana_s_intervals_are_substituted() {
        let none = BTreeMap::new();
        assert_eq!(
            substitute(
                "rate(x[$__rate_interval]) + increase(y[$__range]) + z[${__interval}]",
                &none
            ),
            "rate(x[1m]) + increase(y[5m]) + z[15s]"
        );
        // $__range is not cut short by $__range_s, nor the other way round.
        assert_eq!(substitute("$__range_s/$__range", &none), "300/5m");
        assert_eq!(
            substitute("$unknown and ${other} and $", &none),
            "$unknown and ${other} and $"
        );
    }

    #[test]
    fn variables_are_substituted_in_every_syntax_and_all_becomes_a_regex_matcher() {
        let vars = values(&[("job", ".*", true), ("role", "cart", false)]);
        assert_eq!(
            substitute(
                "a{job=\"$job\", role=\"$role\"} + b{job=~\"${job:regex}\", role=\"[[role]]\"}",
                &vars
            ),
            "a{job=~\".*\", role=\"cart\"} + b{job=~\".*\", role=\"cart\"}"
        );
        assert_eq!(substitute("c{job!=\"$job\"}", &vars), "c{job!=\".*\"}");
        assert_eq!(substitute("$roles", &vars), "$roles");
    }

    #[test]
    fn variables_are_read_from_the_templating_list() {
        let dashboard = json!({"templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": "job", "type": "query", "includeAll": true, "multi": true,
             "query": {"query": "label_values(up, job)"}},
            {"name": "role", "type": "query", "query": "label_values(up{job!=\"\"}, job)",
             "current": {"value": "payment"}},
            {"name": "instance", "type": "query", "query": "label_values(instance)"},
            {"name": "env", "type": "custom", "query": "prod, dev"},
            {"name": "team", "type": "constant", "query": "shop"},
            {"name": "all_of", "type": "custom", "includeAll": true, "allValue": "a|b", "query": "a,b"},
            {"name": "filters", "type": "adhoc"}
        ]}});
        let vars = variables(&dashboard);
        assert_eq!(vars["job"], Variable::All(".*".into()));
        assert_eq!(
            vars["role"],
            Variable::LabelValues {
                selector: Some("up{job!=\"\"}".into()),
                label: "job".into()
            }
        );
        assert_eq!(
            vars["instance"],
            Variable::LabelValues {
                selector: None,
                label: "instance".into()
            }
        );
        assert_eq!(vars["env"], Variable::Fixed("prod".into()));
        assert_eq!(vars["team"], Variable::Fixed("shop".into()));
        assert_eq!(vars["all_of"], Variable::All("a|b".into()));
        assert_eq!(vars["datasource"], Variable::Fixed("prometheus".into()));
        assert!(!vars.contains_key("filters"));
    }

    #[test]
    fn label_values_queries_parse() {
        assert_eq!(
            label_values("label_values(job)"),
            Some((None, "job".into()))
        );
        assert_eq!(
            label_values(" label_values( x{a=\"1\",b=\"2\"} , le ) "),
            Some((Some("x{a=\"1\",b=\"2\"}".into()), "le".into()))
        );
        assert_eq!(label_values("query_result(up)"), None);
        assert_eq!(label_values("label_values(x, )"), None);
    }
}
