//! Prometheus metrics of one role: requests, calls to other services and stores, requests
//! in flight, business counters, and what a scrape adds (process figures, gauges read at
//! scrape time), written as OpenMetrics text by the `prometheus-client` crate.
//!
//! No series carries a role or service label: the role is the scrape target's `job`, and
//! labels Prometheus or its Operator put on targets (`service`, `pod`...) would collide.

use std::sync::atomic::AtomicU64;

use actix_web::http::StatusCode;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::registry::Registry;

/// The content type of `/metrics`: the crate writes OpenMetrics only, which every
/// Prometheus since 2.5 asks for (and which alone carries exemplars).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency histograms, in seconds.
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
        "ecommerce_fault_changes_total",
        "Changes to the shop's fault state made through the admin API, by what changed.",
    ),
];

/// Labels given as `name, value` pairs (the business counters and scrape-time series).
pub type Labels = Vec<(&'static str, String)>;

type FloatCounter = Counter<f64, AtomicU64>;
type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: &'static str,
    method: &'static str,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    db_system: &'static str,
    operation: &'static str,
    outcome: &'static str,
}

/// An exemplar: the trace a measured request belongs to, so that a point on a latency
/// graph links to its trace.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TraceExemplar {
    trace_id: String,
}

/// Makes each new series' histogram with the shop's buckets.
#[derive(Clone, Copy)]
struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(BUCKETS)
    }
}

impl MetricConstructor<HistogramWithExemplars<TraceExemplar>> for Buckets {
    fn new_metric(&self) -> HistogramWithExemplars<TraceExemplar> {
        HistogramWithExemplars::new(BUCKETS.into_iter())
    }
}

type Exemplified<L> = Family<L, HistogramWithExemplars<TraceExemplar>, Buckets>;

pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    request_durations: Exemplified<RequestLabels>,
    upstream_calls: Exemplified<UpstreamLabels>,
    store_calls: Family<StoreLabels, Histogram, Buckets>,
    in_flight: Gauge,
    /// The business counters, in the order of `COUNTERS`.
    counters: [Family<Labels, FloatCounter>; COUNTERS.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            request_durations: Family::new_with_constructor(Buckets),
            upstream_calls: Family::new_with_constructor(Buckets),
            store_calls: Family::new_with_constructor(Buckets),
            in_flight: Gauge::default(),
            counters: Default::default(),
        }
    }
}

/// Counts a request as in flight while it lives.
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The exemplar of a measurement: the trace id of a recorded (sampled) request.
fn exemplar(trace_id: Option<&[u8; 16]>) -> Option<TraceExemplar> {
    trace_id.map(|id| TraceExemplar {
        trace_id: hex::encode(id),
    })
}

impl Metrics {
    /// A request served; `trace_id` when it was recorded, as the exemplar.
    pub fn observe_request(
        &self,
        method: &'static str,
        route: &str,
        status: StatusCode,
        elapsed: std::time::Duration,
        trace_id: Option<&[u8; 16]>,
    ) {
        let labels = RequestLabels {
            method,
            route: route.to_owned(),
            status: status.as_u16(),
            status_class: status_class(status.as_u16()),
        };
        self.requests.get_or_create(&labels).inc();
        self.request_durations.get_or_create(&labels).observe(
            elapsed.as_secs_f64(),
            exemplar(trace_id),
            None,
        );
    }

    /// A call to another service: `status_class` of its answer, or `error` for none.
    pub fn observe_upstream(
        &self,
        upstream: &'static str,
        method: &'static str,
        status_class: &'static str,
        elapsed: std::time::Duration,
        trace_id: Option<&[u8; 16]>,
    ) {
        let labels = UpstreamLabels {
            upstream,
            method,
            status_class,
        };
        self.upstream_calls.get_or_create(&labels).observe(
            elapsed.as_secs_f64(),
            exemplar(trace_id),
            None,
        );
    }

    /// A store operation that ended `ok` or in `error`.
    pub fn observe_store(
        &self,
        db_system: &'static str,
        operation: &'static str,
        outcome: &'static str,
        elapsed: std::time::Duration,
    ) {
        let labels = StoreLabels {
            db_system,
            operation,
            outcome,
        };
        self.store_calls
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Marks a request in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Adds to a business counter (one of `COUNTERS`).
    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        let Some(i) = COUNTERS.iter().position(|(n, _)| *n == name) else {
            debug_assert!(false, "{name} is not a business counter");
            return;
        };
        let labels: Labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        self.counters[i].get_or_create(&labels).inc_by(value);
    }

    /// The OpenMetrics text of everything recorded, and of what `scrape` adds.
    pub fn render(&self, scrape: impl FnOnce(&mut Scrape)) -> String {
        let mut registry = Registry::default();
        registry.register(
            "http_server_requests",
            "Requests served, by route and status",
            self.requests.clone(),
        );
        registry.register(
            "http_server_request_duration_seconds",
            "Time to serve a request",
            self.request_durations.clone(),
        );
        registry.register(
            "http_server_active_requests",
            "Requests being served",
            self.in_flight.clone(),
        );
        registry.register(
            "http_client_request_duration_seconds",
            "Time of calls to other services, until their answer's headers",
            self.upstream_calls.clone(),
        );
        registry.register(
            "db_client_operation_duration_seconds",
            "Time of store operations (Redis, PostgreSQL), pool wait included",
            self.store_calls.clone(),
        );
        for ((name, help), family) in COUNTERS.iter().zip(&self.counters) {
            registry.register(counter_name(name), help_text(help), family.clone());
        }
        let mut extra = Scrape {
            registry: &mut registry,
        };
        super::process::record(&mut extra);
        scrape(&mut extra);
        let mut text = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut text, &registry);
        let _ = encode_eof(&mut text);
        text
    }
}

/// What a scrape adds to the recorded metrics: values read when they are asked for.
pub struct Scrape<'a> {
    registry: &'a mut Registry,
}

impl Scrape<'_> {
    /// A gauge with a series per `(labels, value)` row; nothing when there are no rows.
    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        rows: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        self.rows::<FloatGauge>(name, help, rows, |gauge, value| {
            gauge.set(value);
        });
    }

    /// A counter (`name` ends in `_total`) whose totals are kept elsewhere.
    pub fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        rows: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        self.rows::<FloatCounter>(counter_name(name), help, rows, |counter, value| {
            counter.inc_by(value);
        });
    }

    /// Registers a metric of type `M` whose series are `rows`, each given its value by
    /// `set`: one row without labels is a plain metric (no `{}` in the text).
    fn rows<M>(
        &mut self,
        name: &str,
        help: &str,
        rows: impl IntoIterator<Item = (Labels, f64)>,
        set: fn(&M, f64),
    ) where
        M: EncodeMetric + TypedMetric + Default + Clone + std::fmt::Debug + Send + Sync + 'static,
    {
        let rows: Vec<(Labels, f64)> = rows.into_iter().collect();
        if let [(labels, value)] = rows.as_slice() {
            if labels.is_empty() {
                let metric = M::default();
                set(&metric, *value);
                return self.registry.register(name, help_text(help), metric);
            }
        }
        let family = Family::<Labels, M>::default();
        for (labels, value) in rows {
            set(&family.get_or_create(&labels), value);
        }
        self.registry.register(name, help_text(help), family);
    }
}

/// The crate ends each help text with a full stop itself.
fn help_text(help: &str) -> &str {
    help.trim_end_matches('.')
}

/// The crate appends `_total` to a counter's name itself.
fn counter_name(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn series<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn renders_requests_and_counters_as_openmetrics() {
        let m = Metrics::default();
        let route = "/{product_id}/{quantity}";
        m.observe_request("PUT", route, StatusCode::OK, Duration::from_millis(3), None);
        m.observe_request(
            "PUT",
            route,
            StatusCode::OK,
            Duration::from_millis(30),
            None,
        );
        m.add("ecommerce_cart_updates_total", &[("operation", "set")], 1.0);
        m.add("ecommerce_cart_updates_total", &[("operation", "set")], 1.0);
        let text = m.render(|_| {});
        let labels =
            "method=\"PUT\",route=\"/{product_id}/{quantity}\",status=\"200\",status_class=\"2xx\"";
        assert!(
            text.contains("# TYPE http_server_requests counter\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!("http_server_requests_total{{{labels}}} 2\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "http_server_request_duration_seconds_bucket{{le=\"0.005\",{labels}}} 1\n"
            )),
            "{text}"
        );
        assert!(
            text.contains("ecommerce_cart_updates_total{operation=\"set\"} 2.0\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            !text.contains("service="),
            "no series names its role: {text}"
        );
    }

    #[test]
    fn a_recorded_request_leaves_its_trace_id_as_an_exemplar() {
        let m = Metrics::default();
        let trace = [0xab; 16];
        m.observe_request(
            "GET",
            "/x",
            StatusCode::OK,
            Duration::from_millis(2),
            Some(&trace),
        );
        m.observe_upstream(
            "payment",
            "POST",
            "2xx",
            Duration::from_millis(7),
            Some(&trace),
        );
        m.observe_request("GET", "/y", StatusCode::OK, Duration::from_millis(2), None);
        let text = m.render(|_| {});
        let exemplars = series(&text, "http_")
            .into_iter()
            .filter(|l| l.contains(" # {"));
        let with_trace: Vec<&str> = exemplars
            .filter(|l| l.contains(&format!("trace_id=\"{}\"", "ab".repeat(16))))
            .collect();
        assert_eq!(with_trace.len(), 2, "{text}");
        assert!(with_trace.iter().any(|l| l.contains("route=\"/x\"")));
        assert!(with_trace
            .iter()
            .any(|l| l.contains("upstream=\"payment\"")));
        assert!(!text
            .lines()
            .any(|l| l.contains("route=\"/y\"") && l.contains(" # {")));
    }

    #[test]
    fn calls_in_flight_requests_and_scrape_values_are_measured() {
        let m = Metrics::default();
        m.observe_store("redis", "HGETALL", "ok", Duration::from_micros(300));
        let guard = m.in_flight();
        let text = m.render(|scrape| {
            scrape.gauge(
                "ecommerce_dependency_up",
                "Up.",
                [(vec![("dependency", "cart-data".to_string())], 1.0)],
            );
            scrape.counter("ecommerce_things_total", "Things.", [(Vec::new(), 3.0)]);
        });
        drop(guard);
        assert!(text.contains("http_server_active_requests 1\n"), "{text}");
        assert!(text.contains(
            "db_client_operation_duration_seconds_bucket{le=\"0.0005\",db_system=\"redis\",operation=\"HGETALL\",outcome=\"ok\"} 1\n"
        ), "{text}");
        assert!(
            text.contains("ecommerce_dependency_up{dependency=\"cart-data\"} 1.0\n"),
            "{text}"
        );
        assert!(text.contains("ecommerce_things_total 3.0\n"), "{text}");
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(m.render(|_| {}).contains("http_server_active_requests 0\n"));
    }

    #[test]
    fn status_classes_bound_the_label() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(599), "5xx");
        assert_eq!(status_class(42), "5xx");
    }
}
