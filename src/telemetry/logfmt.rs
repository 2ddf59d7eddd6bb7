//! logfmt values: every value a log line interpolates goes through here, so that no value
//! (a client's path, an error's text) can forge a field or a line.

use std::error::Error;

/// The value as logfmt writes it: bare when it is one plain word, else quoted with its
/// quotes, backslashes and control characters (newlines too) escaped.
pub fn value(v: &str) -> String {
    if !v.is_empty()
        && !v.contains(|c: char| c.is_whitespace() || c == '"' || c == '=' || c.is_control())
    {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

/// `head`, then each cause under `cause` in turn (`a: b: c`), skipping a cause whose text
/// the line already ends with (errors that repeat their source in their own message).
pub fn with_causes(head: String, mut cause: Option<&(dyn Error + 'static)>) -> String {
    let mut text = head;
    while let Some(e) = cause {
        let message = e.to_string();
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = e.source();
    }
    text
}

/// An error and every cause under it.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    with_causes(e.to_string(), e.source())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(value("/api/v1/cart"), "/api/v1/cart");
        assert_eq!(value("a b"), "\"a b\"");
        assert_eq!(value("x=\"y\""), "\"x=\\\"y\\\"\"");
        assert_eq!(value(""), "\"\"");
    }

    #[test]
    fn no_value_forges_a_field_or_a_line() {
        let evil = "ok\" level=error msg=\"forged\nts=0 level=error msg=forged";
        let line = format!("msg=request error={}", value(evil));
        assert_eq!(line.lines().count(), 1, "{line}");
        // Parsed as logfmt, the line has exactly its two fields, the value intact.
        let fields = parse(&line);
        assert_eq!(fields.len(), 2, "{fields:?}");
        assert_eq!(fields[1], ("error".to_string(), evil.to_string()));
    }

    #[test]
    fn chains_name_every_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cart-data is unavailable")]
        struct Outer(#[source] Middle);
        #[derive(Debug, thiserror::Error)]
        #[error("redis")]
        struct Middle(#[source] std::io::Error);
        let e = Outer(Middle(std::io::Error::other("connection refused")));
        assert_eq!(
            chain(&e),
            "cart-data is unavailable: redis: connection refused"
        );
        let repeated = with_causes("payment is unreachable".into(), Some(&RepeatsIs));
        assert_eq!(repeated, "payment is unreachable");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("is unreachable")]
    struct RepeatsIs;

    /// A small logfmt reader: `key=value` or `key="escaped value"` pairs.
    fn parse(line: &str) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        let mut rest = line;
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=').expect("key=value");
            let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('n') => value.push('\n'),
                            Some(other) => value.push(other),
                            None => {}
                        },
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end..])
            } else {
                let end = after.find(' ').unwrap_or(after.len());
                (after[..end].to_string(), &after[end..])
            };
            fields.push((key.to_string(), value));
            rest = after.trim_start();
        }
        fields
    }
}
