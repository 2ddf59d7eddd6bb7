//! Prometheus metrics of one role: requests by route and status, and business counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::role::Role;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The business counters and what they count; the only names `Metrics::add` takes.
pub const COUNTERS: [(&str, &str); 6] = [
    ("ecommerce_cart_updates_total", "Cart changes by operation."),
    ("ecommerce_checkouts_total", "Checkouts by outcome."),
    ("ecommerce_payments_total", "Payments by outcome."),
    (
        "ecommerce_payment_amount_total",
        "Money charged by successful payments.",
    ),
    (
        "ecommerce_sessions_created_total",
        "Sessions created by page loads.",
    ),
    (
        "ecommerce_fault_active",
        "Fault scenarios switched on (1 per active fault).",
    ),
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// Request key: method, route pattern, status.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RequestKey {
    method: String,
    route: String,
    status: u16,
}

impl RequestKey {
    fn new(method: &str, route: &str, status: u16) -> Self {
        RequestKey {
            method: method.to_string(),
            route: route.to_string(),
            status,
        }
    }

    fn as_ref(&self) -> (&str, &str, u16) {
        (&self.method, &self.route, self.status)
    }

    /// The series' labels in the exposition format.
    fn labels(&self, service: &str) -> String {
        format!(
            "service=\"{service}\",method=\"{}\",route=\"{}\",status=\"{}\"",
            escape(&self.method),
            escape(&self.route),
            self.status
        )
    }
}

pub struct Metrics {
    role: Role,
    /// A few dozen series at most (routes x methods x statuses), kept sorted for output.
    requests: Mutex<Vec<(RequestKey, Histogram)>>,
    counters: Mutex<BTreeMap<(&'static str, String), f64>>,
}

impl Metrics {
    pub fn new(role: Role) -> Self {
        Metrics {
            role,
            requests: Mutex::new(Vec::new()),
            counters: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        // Looked up by borrowed key first: a request allocates only for a new series.
        let key = (method, route, status);
        match requests.iter_mut().find(|(k, _)| k.as_ref() == key) {
            Some((_, histogram)) => histogram.observe(elapsed.as_secs_f64()),
            None => {
                let mut histogram = Histogram::default();
                histogram.observe(elapsed.as_secs_f64());
                requests.push((RequestKey::new(method, route, status), histogram));
                requests.sort_by(|a, b| a.0.cmp(&b.0));
            }
        }
    }

    /// Adds to a business counter; `labels` are `name="value"` pairs.
    pub fn add(&self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        debug_assert!(COUNTERS.iter().any(|(n, _)| *n == name), "{name}");
        let labels = label_text(labels);
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        *counters.entry((name, labels)).or_default() += value;
    }

    /// Sets a gauge-like counter to an absolute value.
    pub fn set(&self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        let labels = label_text(labels);
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        counters.insert((name, labels), value);
    }

    /// The Prometheus text exposition of everything recorded.
    pub fn render(&self) -> String {
        let service = self.role.as_str();
        let mut out = String::new();
        out.push_str("# HELP http_server_requests_total Requests served, by route and status.\n");
        out.push_str("# TYPE http_server_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for (key, h) in requests.iter() {
            let labels = key.labels(service);
            let _ = writeln!(out, "http_server_requests_total{{{labels}}} {}", h.count);
        }
        out.push_str("# HELP http_server_request_duration_seconds Time to serve a request.\n");
        out.push_str("# TYPE http_server_request_duration_seconds histogram\n");
        for (key, h) in requests.iter() {
            let labels = key.labels(service);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "http_server_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "http_server_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "http_server_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "http_server_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        drop(requests);
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        for (name, help) in COUNTERS {
            let kind = if name == "ecommerce_fault_active" {
                "gauge"
            } else {
                "counter"
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((n, labels), value) in counters.range((name, String::new())..) {
                if *n != name {
                    break;
                }
                let sep = if labels.is_empty() { "" } else { "," };
                let _ = writeln!(out, "{name}{{service=\"{service}\"{sep}{labels}}} {value}");
            }
        }
        out
    }
}

/// `k1="v1",k2="v2"`, values escaped.
fn label_text(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Escapes a Prometheus label value.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_and_counters() {
        let m = Metrics::new(Role::Cart);
        m.observe_request(
            "PUT",
            "/{product_id}/{quantity}",
            200,
            Duration::from_millis(3),
        );
        m.observe_request(
            "PUT",
            "/{product_id}/{quantity}",
            200,
            Duration::from_millis(30),
        );
        m.add("ecommerce_cart_updates_total", &[("operation", "set")], 1.0);
        m.add("ecommerce_cart_updates_total", &[("operation", "set")], 1.0);
        let text = m.render();
        assert!(text.contains(
            "http_server_requests_total{service=\"cart\",method=\"PUT\",route=\"/{product_id}/{quantity}\",status=\"200\"} 2"
        ), "{text}");
        assert!(text.contains("le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 2\n"), "{text}");
        assert!(
            text.contains("ecommerce_cart_updates_total{service=\"cart\",operation=\"set\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
