//! The metric names a PromQL expression reads, found by a small tokenizer: enough for the
//! chart's rules and dashboards, not a parser. Strings, label matchers, ranges, numbers,
//! durations, functions, aggregations, keywords and the label lists of `by (...)` and
//! its kin are skipped; what is left are the names of the series selected.

use std::collections::BTreeSet;

/// Words that are never metric names where they stand (PromQL's are case-insensitive).
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "inf", "nan", "atan2",
];

/// Aggregation operators: `sum by (job) (...)` has no parenthesis right after `sum`.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
];

/// Keywords followed by a list of label names, `by (job, le)`.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names `expr` selects: bare names (`rate(x[5m])` reads `x`) and
/// `{__name__="x"}`.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '#' {
            // A comment, to the end of the line.
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if matches!(c, '"' | '\'' | '`') {
            i = string(&chars, i).0;
        } else if c == '{' {
            i = matchers(&chars, i, &mut names);
        } else if c == '[' {
            i = past(&chars, i, ']');
        } else if c == '$' {
            // A dashboard variable not substituted: `$job`, `${job}`.
            i += 1;
            if chars.get(i) == Some(&'{') {
                i = past(&chars, i, '}');
            } else {
                i = word_end(&chars, i);
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // A number or a duration: 0.95, 1e3, 0x1f, 5m.
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '_'))
            {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            i = word_end(&chars, i);
            let word: String = chars[start..i].iter().collect();
            let lower = word.to_ascii_lowercase();
            let next = next_visible(&chars, i);
            if LABEL_LISTS.contains(&lower.as_str()) {
                if let Some(open) = next.filter(|&j| chars[j] == '(') {
                    i = past(&chars, open, ')');
                }
            } else if KEYWORDS.contains(&lower.as_str())
                || AGGREGATIONS.contains(&lower.as_str())
                || next.is_some_and(|j| chars[j] == '(')
            {
                // An operator, or a function called.
            } else {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The end of the word (identifier) starting at `i`.
fn word_end(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':')) {
        i += 1;
    }
    i
}

/// The index of the first character from `i` that is not white space.
fn next_visible(chars: &[char], mut i: usize) -> Option<usize> {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    (i < chars.len()).then_some(i)
}

/// The index just past the first `close` after `open` (the end, when there is none).
fn past(chars: &[char], open: usize, close: char) -> usize {
    let mut i = open + 1;
    while i < chars.len() {
        if chars[i] == close {
            return i + 1;
        }
        i += 1;
    }
    i
}

/// The string literal opening at `i`: the index just past it, and its text (escapes
/// undone for `"` and `'`; a backquoted string has none).
fn string(chars: &[char], i: usize) -> (usize, String) {
    let quote = chars[i];
    let mut text = String::new();
    let mut j = i + 1;
    while j < chars.len() {
        let c = chars[j];
        if c == quote {
            return (j + 1, text);
        }
        if c == '\\' && quote != '`' && j + 1 < chars.len() {
            text.push(chars[j + 1]);
            j += 2;
            continue;
        }
        text.push(c);
        j += 1;
    }
    (j, text)
}

/// The label matchers opening at `i` (`{job="cart", __name__="x"}`): the index just
/// past them; a `__name__="x"` matcher names a metric.
fn matchers(chars: &[char], i: usize, names: &mut BTreeSet<String>) -> usize {
    let mut j = i + 1;
    let mut label = String::new();
    let mut op = String::new();
    while j < chars.len() {
        let c = chars[j];
        if c == '}' {
            return j + 1;
        }
        if matches!(c, '"' | '\'' | '`') {
            let (end, value) = string(chars, j);
            if label == "__name__" && op == "=" {
                names.insert(value);
            }
            label.clear();
            op.clear();
            j = end;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let end = word_end(chars, j);
            label = chars[j..end].iter().collect();
            op.clear();
            j = end;
        } else if matches!(c, '=' | '!' | '~') {
            op.push(c);
            j += 1;
        } else {
            j += 1;
        }
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        metric_names(expr).into_iter().collect()
    }

    #[test]
    fn functions_aggregations_and_label_lists_are_not_metrics() {
        assert_eq!(
            names(
                "histogram_quantile(0.95, sum by (le, job) \
                 (rate(http_server_request_duration_seconds_bucket{job=\"cart\"}[5m])))"
            ),
            ["http_server_request_duration_seconds_bucket"]
        );
        assert_eq!(
            names("sum(rate(a_total[1m])) without (instance) / ignoring(code) group_left(role) b"),
            ["a_total", "b"]
        );
        assert_eq!(names("sum (x) by (job)"), ["x"]);
        assert_eq!(names("max_over_time(up [5m:30s])"), ["up"]);
    }

    #[test]
    fn strings_numbers_durations_and_keywords_are_skipped() {
        assert_eq!(
            names(
                "label_replace(up, \"role\", \"$1\", \"job\", \"(.*)\") > bool 0.5 \
                 and on (job) x offset 5m unless y @ end() or 1e3 or Inf"
            ),
            ["up", "x", "y"]
        );
        assert_eq!(
            names("count_values('ver\\'sion', build_info)"),
            ["build_info"]
        );
        assert_eq!(
            names("vector(1) # a comment naming not_a_metric"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn recording_rule_names_and_name_matchers_count() {
        assert_eq!(
            names("job:requests:rate5m > 0 or {__name__=\"other_total\", job=~\"c.*\"}"),
            ["job:requests:rate5m", "other_total"]
        );
        // A regex over names names no one metric.
        assert_eq!(names("{__name__=~\"ecommerce_.*\"}"), Vec::<String>::new());
    }

    #[test]
    fn dashboard_variables_left_in_are_not_metrics() {
        assert_eq!(
            names("rate(x{job=~\"$job\"}[$__rate_interval]) * $scale + ${offset}"),
            ["x"]
        );
    }
}
