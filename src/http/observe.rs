//! Middleware on every request: trace context and the server span, a logfmt request line,
//! metrics, and the faults that act on every request of a role (memory-leak, cpu-hog).

use std::cell::Cell;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};

use super::context::RoleContext;
use super::ApiError;
use crate::telemetry::logfmt;
use crate::telemetry::propagation::{baggage, baggage_entry, TraceContext};
use crate::telemetry::span::{self, Current, Kind, SpanData, Value};

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let role = req
        .app_data::<web::Data<RoleContext>>()
        .cloned()
        .expect("every role's app has its context");
    let mut trace = TraceContext::from_headers(req.headers());
    let recording = role.tracer().sample(&mut trace) && !is_probe(req.path());
    // The faults as the request found them, for its fault and its span.
    let faults = role.faults.get();
    let method = method_label(req.method());
    let path = req.path().to_string();
    let request = recording.then(|| request_attributes(&req, method));
    let current = Current {
        trace,
        baggage: baggage(req.headers()),
        instruments: role.instruments.clone(),
        recording,
        fault: Cell::new(None),
        change: Cell::new(None),
    };
    if faults.memory_leak == Some(role.role) {
        crate::faults::leak();
        current.fault.set(Some("memory-leak"));
    }
    if faults.cpu_hog == Some(role.role) {
        role.faults.hog_cpu(role.role);
        current.fault.set(Some("cpu-hog"));
    }
    // Traffic generators say so in their baggage; tools tell them from people by it.
    let synthetic = recording
        && current
            .baggage
            .as_ref()
            .is_some_and(|b| baggage_entry(b, "synthetic_request").as_deref() == Some("true"));

    let in_flight = role.metrics().in_flight();
    let mut serving = std::pin::pin!(span::scope(current, next.call(req)));
    let mut result = serving.as_mut().await;
    drop(in_flight);
    if role.lifecycle.is_draining() {
        // Draining: the client's next request goes on a new connection, to another
        // process (a new one beside this on the same port, or another endpoint).
        if let Ok(res) = &mut result {
            res.response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
    }
    let (fault, change) = serving
        .as_mut()
        .take_value()
        .map_or((None, None), |c| (c.fault.get(), c.change.get()));

    let (status, route, error) = match &result {
        Ok(res) => (
            res.status(),
            route_of(res.request()),
            res.response().error(),
        ),
        Err(e) => (e.as_response_error().status_code(), None, Some(e)),
    };
    let served = Served {
        method,
        path: &path,
        route: route.as_deref(),
        status,
        elapsed: started.elapsed(),
        error,
        fault,
    };
    role.metrics().observe_request(
        method,
        served.route_label(),
        status,
        served.elapsed,
        request.is_some().then_some(&trace.trace_id),
    );
    if let Some(mut attributes) = request {
        if synthetic {
            attributes.push(("synthetic_request", Value::Bool(true)));
        }
        let active = faults.active();
        if !active.is_empty() {
            attributes.push(("ecommerce.faults", Value::Strs(active)));
        }
        if let Some(change) = change {
            attributes.push(("ecommerce.fault_state.change", change.into()));
        }
        role.tracer()
            .record(served.span(trace, span::unix_nanos(started), attributes));
    }
    served.log(&trace);
    result
}

/// What became of a request.
struct Served<'a> {
    method: &'static str,
    path: &'a str,
    /// The route pattern matched, if one did.
    route: Option<&'a str>,
    status: StatusCode,
    elapsed: Duration,
    error: Option<&'a Error>,
    /// The fault that acted on the request, if one did.
    fault: Option<&'static str>,
}

impl Served<'_> {
    fn route_label(&self) -> &str {
        self.route.unwrap_or("unmatched")
    }

    /// The request's server span, with the `attributes` known beforehand.
    fn span(
        &self,
        trace: TraceContext,
        start_unix_nanos: u64,
        mut attributes: Vec<(&'static str, Value)>,
    ) -> SpanData {
        let status = self.status.as_u16();
        attributes.push(("http.response.status_code", i64::from(status).into()));
        if let Some(route) = self.route {
            attributes.push(("http.route", route.to_string().into()));
        }
        if let Some(fault) = self.fault {
            attributes.push(("ecommerce.fault.applied", fault.into()));
        }
        // A server span is an error on 5xx only: 4xx are the client's (semantic conventions).
        let error = self.status.is_server_error().then(|| {
            attributes.push(("error.type", span::status_text(status).into()));
            self.error
                .map_or_else(|| self.status.to_string(), ToString::to_string)
        });
        SpanData {
            trace_id: trace.trace_id,
            span_id: trace.span_id,
            parent_span_id: trace.parent_span_id,
            parent_is_remote: trace.parent_span_id.is_some(),
            flags: trace.flags,
            name: match self.route {
                Some(route) => format!("{} {route}", self.method).into(),
                None => self.method.into(),
            },
            kind: Kind::Server,
            start_unix_nanos,
            end_unix_nanos: start_unix_nanos + self.elapsed.as_nanos() as u64,
            attributes,
            error,
        }
    }

    /// The request's logfmt line: at error level for a failure of the shop's own (5xx
    /// with a cause), with the cause; info otherwise.
    fn log(&self, trace: &TraceContext) {
        let level = match self.error {
            Some(_) if self.status.is_server_error() => log::Level::Error,
            _ => log::Level::Info,
        };
        // Formatted only when it is logged: under load the level is often warn.
        if !log::log_enabled!(target: "request", level) {
            return;
        }
        let mut line = format!(
            "msg=request method={} path={} route={} status={} duration_ms={:.3} trace_id={} span_id={}",
            self.method,
            logfmt::value(self.path),
            logfmt::value(self.route_label()),
            self.status.as_u16(),
            self.elapsed.as_secs_f64() * 1000.0,
            trace.trace_id_hex(),
            trace.span_id_hex(),
        );
        if let Some(fault) = self.fault {
            line.push_str(&format!(" fault={fault}"));
        }
        if let (log::Level::Error, Some(error)) = (level, self.error) {
            // The handler's error with every cause under it; other errors as actix has them.
            let text = match error.as_error::<ApiError>() {
                Some(e) => e.log_text(),
                None => format!("{error:?}"),
            };
            line.push_str(&format!(" error={}", logfmt::value(&text)));
        }
        log::log!(target: "request", level, "{line}");
    }
}

/// Kubelet and Prometheus traffic: measured, but not traced (it would bury the shop's
/// own traces).
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The semantic-convention attributes of a request, known before it is served.
fn request_attributes(req: &ServiceRequest, method: &'static str) -> Vec<(&'static str, Value)> {
    let mut attributes = Vec::with_capacity(16);
    attributes.push(("http.request.method", method.into()));
    attributes.push(("url.path", req.path().to_string().into()));
    // This build serves plain HTTP only (TLS ends in front of it, if anywhere).
    attributes.push(("url.scheme", "http".into()));
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| req.app_config().host());
    let (address, port) = match host.rsplit_once(':') {
        Some((address, port)) if !port.contains(']') => (address, port.parse().ok()),
        _ => (host, None),
    };
    attributes.push(("server.address", address.to_string().into()));
    let port = port.unwrap_or_else(|| req.app_config().local_addr().port());
    attributes.push(("server.port", i64::from(port).into()));
    if let Some(peer) = req.peer_addr() {
        attributes.push(("client.address", peer.ip().to_string().into()));
    }
    let version = match req.version() {
        actix_web::http::Version::HTTP_10 => "1.0",
        actix_web::http::Version::HTTP_2 => "2",
        _ => "1.1",
    };
    attributes.push(("network.protocol.version", version.into()));
    if let Some(agent) = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
    {
        attributes.push(("user_agent.original", agent.to_string().into()));
    }
    attributes
}

/// The method as a metric label; any non-standard method is `OTHER`, so that clients
/// cannot create series without bound.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method as M;
    const STANDARD: [(M, &str); 9] = [
        (M::GET, "GET"),
        (M::POST, "POST"),
        (M::PUT, "PUT"),
        (M::DELETE, "DELETE"),
        (M::HEAD, "HEAD"),
        (M::OPTIONS, "OPTIONS"),
        (M::PATCH, "PATCH"),
        (M::CONNECT, "CONNECT"),
        (M::TRACE, "TRACE"),
    ];
    STANDARD
        .iter()
        .find(|(m, _)| m == method)
        .map_or("OTHER", |(_, label)| label)
}

/// The route a handler says it served, for requests that no route pattern matched (the
/// gateways parse their paths themselves).
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

fn route_of(req: &actix_web::HttpRequest) -> Option<String> {
    if let Some(RouteLabel(label)) = req.extensions().get::<RouteLabel>() {
        return Some(label.to_string());
    }
    req.match_pattern()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_share_one_label() {
        use actix_web::http::Method;
        assert_eq!(method_label(&Method::PUT), "PUT");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }
}
