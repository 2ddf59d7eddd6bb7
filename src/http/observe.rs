//! Middleware on every request: trace context, a logfmt request line, metrics, and the
//! memory-leak fault.

use std::sync::Mutex;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};

use super::context::RoleContext;
use super::trace::TraceContext;

/// Bytes the memory-leak fault keeps per request, and the most it keeps in all.
const LEAK_PER_REQUEST: usize = 64 * 1024;
const LEAK_LIMIT: usize = 1 << 30;

static LEAKED: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let trace = TraceContext::from_headers(req.headers());
    req.extensions_mut().insert(trace);
    let context = req.app_data::<web::Data<RoleContext>>().cloned();
    if let Some(ctx) = &context {
        if ctx.faults.memory_leak == Some(ctx.role) {
            leak();
        }
    }
    let method = req.method().clone();
    let path = req.path().to_string();

    let result = next.call(req).await;

    let (status, route, cause) = match &result {
        Ok(res) => (
            res.status(),
            route_of(res.request()),
            res.response().error().map(|e| format!("{e:?}")),
        ),
        Err(e) => (
            e.as_response_error().status_code(),
            None,
            Some(format!("{e:?}")),
        ),
    };
    let route = route.unwrap_or_else(|| "unmatched".to_string());
    let elapsed = started.elapsed();
    if let Some(ctx) = &context {
        ctx.metrics
            .observe_request(method_label(&method), &route, status.as_u16(), elapsed);
    }
    let level = match &cause {
        Some(_) if status.is_server_error() => log::Level::Error,
        _ => log::Level::Info,
    };
    // Formatted only when it is logged: under load the level is often warn.
    if log::log_enabled!(target: "request", level) {
        let mut line = format!(
            "msg=request method={method} path={} route={} status={} duration_ms={:.3} trace_id={} span_id={}",
            logfmt_value(&path),
            logfmt_value(&route),
            status.as_u16(),
            elapsed.as_secs_f64() * 1000.0,
            trace.trace_id_hex(),
            trace.span_id_hex(),
        );
        if let (log::Level::Error, Some(cause)) = (level, &cause) {
            line.push_str(&format!(" error={}", logfmt_value(cause)));
        }
        log::log!(target: "request", level, "{line}");
    }
    result
}

/// The method as a metric label; any non-standard method is `OTHER`, so that clients
/// cannot create series without bound.
fn method_label(method: &actix_web::http::Method) -> &'static str {
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

/// The memory-leak fault: keep a little of every request, up to a limit.
fn leak() {
    let mut leaked = LEAKED.lock().unwrap_or_else(|e| e.into_inner());
    if leaked.len() * LEAK_PER_REQUEST < LEAK_LIMIT {
        // Filled, not zeroed, so the pages are really resident.
        leaked.push(vec![0xA5; LEAK_PER_REQUEST].into_boxed_slice());
    }
}

/// Quotes a logfmt value when it has spaces, quotes or `=`.
pub fn logfmt_value(v: &str) -> String {
    if !v.is_empty()
        && !v.contains(|c: char| c.is_whitespace() || c == '"' || c == '=' || c.is_control())
    {
        v.to_string()
    } else {
        format!("{v:?}")
    }
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

    #[test]
    fn logfmt_quotes_only_when_needed() {
        assert_eq!(logfmt_value("/api/v1/cart"), "/api/v1/cart");
        assert_eq!(logfmt_value("a b"), "\"a b\"");
        assert_eq!(logfmt_value("x=\"y\""), "\"x=\\\"y\\\"\"");
        assert_eq!(logfmt_value(""), "\"\"");
    }
}
