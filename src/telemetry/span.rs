//! Spans: what one is, the request being served (a task-local, so that store and
//! upstream calls deep inside a handler find their parent), and the guard that times one
//! outgoing call.

use std::borrow::Cow;
use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use actix_web::http::header::HeaderValue;
use std::sync::Arc;

use super::Instruments;
use tokio::task::futures::TaskLocalFuture;

use crate::telemetry::metrics::status_class;
use crate::telemetry::propagation::TraceContext;

/// An attribute value (the kinds of OTLP `AnyValue` the shop uses).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Cow<'static, str>),
    Int(i64),
    Bool(bool),
    Strs(Vec<String>),
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<Cow<'static, str>> for Value {
    fn from(s: Cow<'static, str>) -> Self {
        Value::Str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Server,
    Client,
}

/// A finished span, as exported.
#[derive(Debug, Clone)]
pub struct SpanData {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    /// Whether the parent came from another process (a server span's caller).
    pub parent_is_remote: bool,
    pub flags: u8,
    pub name: Cow<'static, str>,
    pub kind: Kind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<(&'static str, Value)>,
    /// The error status's message; `None` leaves the status unset (success).
    pub error: Option<String>,
}

/// The wall-clock time of `at`, in nanoseconds since the Unix epoch: measured from one
/// reading of both clocks at first use, so that timing a span reads the clock no more
/// than its duration does.
pub fn unix_nanos(at: Instant) -> u64 {
    static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
    let (instant, wall) = ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        (Instant::now(), wall)
    });
    match at.checked_duration_since(*instant) {
        Some(after) => wall + after.as_nanos() as u64,
        None => wall.saturating_sub(instant.duration_since(at).as_nanos() as u64),
    }
}

/// The request a task is serving: its trace, the baggage it carries on, its role, and
/// whether its spans are recorded.
#[derive(Clone)]
pub struct Current {
    pub trace: TraceContext,
    pub baggage: Option<HeaderValue>,
    pub instruments: Arc<Instruments>,
    pub recording: bool,
    /// The fault that acted on the request, if one did (for its log line and span).
    pub fault: Cell<Option<&'static str>>,
    /// A change to the shop's fault state the request made (`faults`, `scenario`,
    /// `traffic`), for its span: dashboards annotate graphs with these.
    pub change: Cell<Option<&'static str>>,
}

tokio::task_local! {
    static CURRENT: Current;
}

/// Runs `serve` as the handling of the request `current` describes (`take_value` gives
/// `current` back once it is done).
pub fn scope<F: Future>(current: Current, serve: F) -> TaskLocalFuture<Current, F> {
    CURRENT.scope(current, serve)
}

/// The request being served by this task, if any.
pub fn with_current<R>(f: impl FnOnce(&Current) -> R) -> Option<R> {
    CURRENT.try_with(f).ok()
}

/// Notes that fault `name` acted on the request being served.
pub fn mark_fault(name: &'static str) {
    with_current(|c| c.fault.set(Some(name)));
}

/// Notes that the request being served changed the shop's fault state.
pub fn mark_change(kind: &'static str) {
    with_current(|c| c.change.set(Some(kind)));
}

/// `trace_id=... span_id=...` of the request being served, for log lines.
pub fn log_ids() -> Option<String> {
    with_current(|c| {
        format!(
            "trace_id={} span_id={}",
            c.trace.trace_id_hex(),
            c.trace.span_id_hex()
        )
    })
}

/// What an outgoing call talks to, for its span and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Another of the shop's services (or the content bucket), over HTTP: the `peer`
    /// answering, on behalf of `target` (the same, unless the peer is a gateway).
    Http {
        peer: &'static str,
        target: &'static str,
    },
    Redis,
    Postgres,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// An HTTP answer with this status.
    Status(u16),
    /// A store command that succeeded.
    Ok,
    /// No answer: `error.type` and a message.
    Failed(&'static str, &'a str),
}

/// One outgoing call (HTTP, Redis or PostgreSQL) of the request being served: it carries
/// the trace on with its own span id, is timed into the role's metrics, and becomes a
/// client span when the request is recorded.
pub struct Call {
    peer: Peer,
    operation: &'static str,
    started: Instant,
    span_id: [u8; 8],
    current: Option<Current>,
    name: Cow<'static, str>,
    attributes: Vec<(&'static str, Value)>,
}

impl Call {
    /// Starts a call to `peer`; `operation` is the HTTP method or the store command, and
    /// `name` the span's name (built only when the span is recorded).
    pub fn start(
        peer: Peer,
        operation: &'static str,
        name: impl FnOnce() -> Cow<'static, str>,
    ) -> Call {
        let current = with_current(Current::clone);
        let recording = current.as_ref().is_some_and(|c| c.recording);
        Call {
            peer,
            operation,
            started: Instant::now(),
            span_id: TraceContext::new_span_id(),
            name: if recording { name() } else { Cow::Borrowed("") },
            attributes: Vec::new(),
            current,
        }
    }

    /// Whether attributes given to `attribute` are kept.
    pub fn recording(&self) -> bool {
        self.current.as_ref().is_some_and(|c| c.recording)
    }

    /// Adds an attribute to the span (computed only when it is recorded).
    pub fn attribute(&mut self, key: &'static str, value: impl FnOnce() -> Value) {
        if self.recording() {
            self.attributes.push((key, value()));
        }
    }

    /// The `traceparent` for the call: the request's trace, this call as the parent.
    pub fn traceparent(&self) -> Option<String> {
        self.current
            .as_ref()
            .map(|c| c.trace.child(self.span_id).traceparent())
    }

    /// The request's baggage, to pass on.
    pub fn baggage(&self) -> Option<HeaderValue> {
        self.current.as_ref().and_then(|c| c.baggage.clone())
    }

    /// Ends the call: its duration goes to the role's metrics, its span to the exporter.
    pub fn finish(self, outcome: Outcome<'_>) {
        let Some(current) = self.current else {
            return;
        };
        let elapsed = self.started.elapsed();
        let metrics = &current.instruments.metrics;
        match self.peer {
            Peer::Http { target, .. } => {
                let status = match outcome {
                    Outcome::Status(code) => status_class(code),
                    _ => "error",
                };
                let exemplar = current.recording.then_some(&current.trace.trace_id);
                metrics.observe_upstream(target, self.operation, status, elapsed, exemplar);
            }
            Peer::Redis | Peer::Postgres => {
                let result = match outcome {
                    Outcome::Failed(..) => "error",
                    _ => "ok",
                };
                let system = db_system(self.peer);
                metrics.observe_store(system, self.operation, result, elapsed);
            }
        }
        if !current.recording {
            return;
        }
        let mut attributes = self.attributes;
        match self.peer {
            Peer::Http { peer, target } => {
                attributes.push(("http.request.method", self.operation.into()));
                attributes.push(("peer.service", peer.into()));
                if target != peer {
                    attributes.push(("ecommerce.upstream", target.into()));
                }
            }
            Peer::Redis | Peer::Postgres => {
                attributes.push(("db.system", db_system(self.peer).into()));
                attributes.push(("db.operation", self.operation.into()));
            }
        }
        let error = match outcome {
            Outcome::Status(code) => {
                attributes.push(("http.response.status_code", i64::from(code).into()));
                // A client span is an error only when the server failed (semantic
                // conventions: 4xx is the caller's business).
                (code >= 500).then(|| {
                    attributes.push(("error.type", status_text(code).into()));
                    format!("answered {code}")
                })
            }
            Outcome::Ok => None,
            Outcome::Failed(kind, message) => {
                attributes.push(("error.type", kind.into()));
                Some(message.to_string())
            }
        };
        let start = unix_nanos(self.started);
        current.instruments.tracer.record(SpanData {
            trace_id: current.trace.trace_id,
            span_id: self.span_id,
            parent_span_id: Some(current.trace.span_id),
            parent_is_remote: false,
            flags: current.trace.flags,
            name: self.name,
            kind: Kind::Client,
            start_unix_nanos: start,
            end_unix_nanos: start + elapsed.as_nanos() as u64,
            attributes,
            error,
        });
    }
}

fn db_system(peer: Peer) -> &'static str {
    match peer {
        Peer::Postgres => "postgresql",
        _ => "redis",
    }
}

/// The status code as text without allocating for the common ones.
pub fn status_text(code: u16) -> Cow<'static, str> {
    match code {
        500 => "500".into(),
        502 => "502".into(),
        503 => "503".into(),
        504 => "504".into(),
        other => other.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_times_are_wall_clock_and_keep_durations() {
        let earlier = Instant::now();
        let later = earlier + std::time::Duration::from_millis(250);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(unix_nanos(later) - unix_nanos(earlier), 250_000_000);
        let skew = (unix_nanos(earlier) as i128 - now.as_nanos() as i128).abs();
        assert!(skew < 1_000_000_000, "{skew} ns off the wall clock");
    }

    #[test]
    fn calls_outside_a_request_carry_nothing() {
        let call = Call::start(Peer::Redis, "GET", || "GET".into());
        assert!(call.traceparent().is_none());
        assert!(!call.recording());
        call.finish(Outcome::Ok);
    }
}
