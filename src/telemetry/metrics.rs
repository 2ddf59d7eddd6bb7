//! Prometheus metrics of one role: requests, calls to other services and stores, requests
//! in flight, and business counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use actix_web::http::StatusCode;

use crate::role::Role;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The business counters and what they count; the only names `Metrics::add` takes.
pub const COUNTERS: [(&str, &str); 5] = [
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

/// Histograms of one metric, a series per combination of label values (a few dozen at
/// most: every label is drawn from a bounded set).
struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    /// Kept sorted by label values, for output.
    series: Mutex<Vec<(Vec<String>, Histogram)>>,
}

impl Family {
    const fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Family {
            name,
            help,
            labels,
            series: Mutex::new(Vec::new()),
        }
    }

    fn observe(&self, values: &[&str], elapsed: Duration) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        // Looked up by borrowed values first: only a new series allocates.
        let found = series
            .iter_mut()
            .find(|(k, _)| k.iter().map(String::as_str).eq(values.iter().copied()));
        match found {
            Some((_, histogram)) => histogram.observe(elapsed.as_secs_f64()),
            None => {
                let mut histogram = Histogram::default();
                histogram.observe(elapsed.as_secs_f64());
                series.push((values.iter().map(|v| v.to_string()).collect(), histogram));
                series.sort_by(|a, b| a.0.cmp(&b.0));
            }
        }
    }

    /// The series' label text: `service="cart",k1="v1",...`.
    fn label_text(&self, service: &str, values: &[String]) -> String {
        let mut text = format!("service=\"{service}\"");
        for (name, value) in self.labels.iter().zip(values) {
            let _ = write!(text, ",{name}=\"{}\"", escape(value));
        }
        text
    }

    /// `<name>_total` (when `total` names it) and the histogram, in the exposition format.
    fn render(&self, out: &mut String, service: &str, total: Option<(&str, &str)>) {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((total, help)) = total {
            let _ = writeln!(out, "# HELP {total} {help}\n# TYPE {total} counter");
            for (values, h) in series.iter() {
                let labels = self.label_text(service, values);
                let _ = writeln!(out, "{total}{{{labels}}} {}", h.count);
            }
        }
        let name = self.name;
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} histogram", self.help);
        for (values, h) in series.iter() {
            let labels = self.label_text(service, values);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                cumulative += n;
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
        }
    }
}

pub struct Metrics {
    role: Role,
    requests: Family,
    upstream_calls: Family,
    store_calls: Family,
    in_flight: AtomicI64,
    counters: Mutex<BTreeMap<(&'static str, String), f64>>,
}

/// Counts a request as in flight while it lives.
pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn new(role: Role) -> Self {
        Metrics {
            role,
            requests: Family::new(
                "http_server_request_duration_seconds",
                "Time to serve a request.",
                &["method", "route", "status", "status_class"],
            ),
            upstream_calls: Family::new(
                "http_client_request_duration_seconds",
                "Time of calls to other services, until their answer's headers.",
                &["upstream", "method", "status_class"],
            ),
            store_calls: Family::new(
                "db_client_operation_duration_seconds",
                "Time of store operations (Redis, PostgreSQL), pool wait included.",
                &["db_system", "operation", "outcome"],
            ),
            in_flight: AtomicI64::new(0),
            counters: Mutex::new(BTreeMap::new()),
        }
    }

    /// A request served.
    pub fn observe_request(
        &self,
        method: &str,
        route: &str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let class = status_class(status.as_u16());
        self.requests
            .observe(&[method, route, status.as_str(), class], elapsed);
    }

    /// A call to another service: `status_class` of its answer, or `error` for none.
    pub fn observe_upstream(
        &self,
        upstream: &str,
        method: &str,
        status_class: &str,
        elapsed: Duration,
    ) {
        self.upstream_calls
            .observe(&[upstream, method, status_class], elapsed);
    }

    /// A store operation that ended `ok` or in `error`.
    pub fn observe_store(&self, system: &str, operation: &str, outcome: &str, elapsed: Duration) {
        self.store_calls
            .observe(&[system, operation, outcome], elapsed);
    }

    /// Marks a request in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Adds to a business counter; `labels` are `name="value"` pairs.
    pub fn add(&self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        debug_assert!(COUNTERS.iter().any(|(n, _)| *n == name), "{name}");
        let labels = label_text(labels);
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        *counters.entry((name, labels)).or_default() += value;
    }

    /// The Prometheus text exposition of everything recorded.
    pub fn render(&self) -> String {
        let service = self.role.as_str();
        let mut out = String::new();
        self.requests.render(
            &mut out,
            service,
            Some((
                "http_server_requests_total",
                "Requests served, by route and status.",
            )),
        );
        write_family(
            &mut out,
            ("http_server_active_requests", "gauge"),
            "Requests being served.",
            service,
            [(String::new(), self.in_flight.load(Ordering::Relaxed) as f64)],
        );
        self.upstream_calls.render(&mut out, service, None);
        self.store_calls.render(&mut out, service, None);
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        for (name, help) in COUNTERS {
            let rows = counters
                .range((name, String::new())..)
                .take_while(|((n, _), _)| *n == name)
                .map(|((_, labels), value)| (labels.clone(), *value));
            write_family(&mut out, (name, "counter"), help, service, rows);
        }
        out
    }
}

/// `2xx`, `4xx`...: the label that keeps status metrics few.
pub fn status_class(code: u16) -> &'static str {
    match code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Writes one metric: its HELP and TYPE lines, then a line per `(labels, value)` row
/// (`labels` as `k="v",...` text, the service label first).
pub fn write_family(
    out: &mut String,
    (name, kind): (&str, &str),
    help: &str,
    service: &str,
    rows: impl IntoIterator<Item = (String, f64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in rows {
        let sep = if labels.is_empty() { "" } else { "," };
        let _ = writeln!(out, "{name}{{service=\"{service}\"{sep}{labels}}} {value}");
    }
}

/// `k1="v1",k2="v2"`, values escaped.
pub fn label_text(labels: &[(&str, &str)]) -> String {
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
            StatusCode::OK,
            Duration::from_millis(3),
        );
        m.observe_request(
            "PUT",
            "/{product_id}/{quantity}",
            StatusCode::OK,
            Duration::from_millis(30),
        );
        m.add("ecommerce_cart_updates_total", &[("operation", "set")], 1.0);
        m.add("ecommerce_cart_updates_total", &[("operation", "set")], 1.0);
        let text = m.render();
        assert!(text.contains(
            "http_server_requests_total{service=\"cart\",method=\"PUT\",route=\"/{product_id}/{quantity}\",status=\"200\",status_class=\"2xx\"} 2"
        ), "{text}");
        assert!(text.contains("le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 2\n"), "{text}");
        assert!(
            text.contains("ecommerce_cart_updates_total{service=\"cart\",operation=\"set\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn calls_and_in_flight_requests_are_measured() {
        let m = Metrics::new(Role::Checkout);
        m.observe_upstream("payment", "POST", "2xx", Duration::from_millis(7));
        m.observe_store("redis", "HGETALL", "ok", Duration::from_micros(300));
        let guard = m.in_flight();
        let text = m.render();
        drop(guard);
        assert!(
            text.contains("http_server_active_requests{service=\"checkout\"} 1\n"),
            "{text}"
        );
        assert!(text.contains(
            "http_client_request_duration_seconds_count{service=\"checkout\",upstream=\"payment\",method=\"POST\",status_class=\"2xx\"} 1\n"
        ), "{text}");
        assert!(text.contains(
            "db_client_operation_duration_seconds_bucket{service=\"checkout\",db_system=\"redis\",operation=\"HGETALL\",outcome=\"ok\",le=\"0.0005\"} 1\n"
        ), "{text}");
        assert!(m
            .render()
            .contains("http_server_active_requests{service=\"checkout\"} 0\n"));
    }

    #[test]
    fn status_classes_bound_the_label() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(599), "5xx");
        assert_eq!(status_class(42), "5xx");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
