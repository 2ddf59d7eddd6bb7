//! The one OTLP/HTTP receiver of traces and logs: a test's ([`Receiver`], which keeps
//! every span and log record the shop exports, over http or https) and a tool's
//! ([`Endpoint`], with a [`Collector`] of its own, such as `cargo xtask otlp-sink`, which
//! counts them).
//!
//! It is an HTTP server that decodes the protobuf exports it is sent, plain or gzipped
//! (with message types declared here from the OpenTelemetry protocol, decoded by prost,
//! see [`decode`] and [`decode_logs`]) and hands each span or log record, with the
//! service that sent it, to its collector.

use std::future::Future;
use std::io::{self, Read};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use prost::Message;

use crate::stub::Stub;
use crate::tls::TlsStub;

/// The path span exports are sent to.
pub const TRACES_PATH: &str = "/v1/traces";
/// The path log exports are sent to.
pub const LOGS_PATH: &str = "/v1/logs";
/// Far above any batch; a guard against nonsense lengths.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// opentelemetry/proto/collector/trace/v1 and .../logs/v1 and the messages they use, as
/// far as the shop sends them.
pub mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportLogsServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_logs: Vec<ResourceLogs>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceLogs {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_logs: Vec<ScopeLogs>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeLogs {
        #[prost(message, optional, tag = "1")]
        pub scope: Option<InstrumentationScope>,
        #[prost(message, repeated, tag = "2")]
        pub log_records: Vec<LogRecord>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LogRecord {
        #[prost(fixed64, tag = "1")]
        pub time_unix_nano: u64,
        /// 9 info, 13 warn, 17 error.
        #[prost(int32, tag = "2")]
        pub severity_number: i32,
        #[prost(string, tag = "3")]
        pub severity_text: String,
        #[prost(message, optional, tag = "5")]
        pub body: Option<AnyValue>,
        #[prost(message, repeated, tag = "6")]
        pub attributes: Vec<KeyValue>,
        #[prost(fixed32, tag = "8")]
        pub flags: u32,
        #[prost(bytes = "vec", tag = "9")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "10")]
        pub span_id: Vec<u8>,
        #[prost(fixed64, tag = "11")]
        pub observed_time_unix_nano: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        #[prost(message, optional, tag = "1")]
        pub scope: Option<InstrumentationScope>,
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InstrumentationScope {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub version: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        #[prost(string, tag = "3")]
        pub trace_state: String,
        #[prost(bytes = "vec", tag = "4")]
        pub parent_span_id: Vec<u8>,
        #[prost(string, tag = "5")]
        pub name: String,
        /// 2 server, 3 client.
        #[prost(int32, tag = "6")]
        pub kind: i32,
        #[prost(fixed64, tag = "7")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "8")]
        pub end_time_unix_nano: u64,
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<KeyValue>,
        #[prost(message, optional, tag = "15")]
        pub status: Option<Status>,
        #[prost(fixed32, tag = "16")]
        pub flags: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(string, tag = "2")]
        pub message: String,
        /// 1 ok, 2 error.
        #[prost(int32, tag = "3")]
        pub code: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(oneof = "Value", tags = "1, 2, 3, 4, 5")]
        pub value: Option<Value>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        String(String),
        #[prost(bool, tag = "2")]
        Bool(bool),
        #[prost(int64, tag = "3")]
        Int(i64),
        #[prost(double, tag = "4")]
        Double(f64),
        #[prost(message, tag = "5")]
        Array(ArrayValue),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ArrayValue {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<AnyValue>,
    }
}

/// A span as received, with its resource's `service.name`.
#[derive(Debug, Clone)]
pub struct Received {
    pub service: String,
    pub resource: Vec<proto::KeyValue>,
    pub span: proto::Span,
}

impl Received {
    pub fn trace_id(&self) -> String {
        hex::encode(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex::encode(&self.span.span_id)
    }

    /// The parent's id, empty for a root.
    pub fn parent_id(&self) -> String {
        hex::encode(&self.span.parent_span_id)
    }

    pub fn is_server(&self) -> bool {
        self.span.kind == 2
    }

    pub fn is_client(&self) -> bool {
        self.span.kind == 3
    }

    pub fn attribute(&self, key: &str) -> Option<&proto::Value> {
        find(&self.span.attributes, key)
    }

    /// A string attribute's value.
    pub fn text(&self, key: &str) -> Option<&str> {
        match self.attribute(key)? {
            proto::Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        match self.attribute(key)? {
            proto::Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// A string-array attribute's items.
    pub fn texts(&self, key: &str) -> Vec<String> {
        match self.attribute(key) {
            Some(proto::Value::Array(array)) => array
                .values
                .iter()
                .filter_map(|v| match &v.value {
                    Some(proto::Value::String(s)) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn resource_text(&self, key: &str) -> Option<&str> {
        match find(&self.resource, key)? {
            proto::Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the span's status is error.
    pub fn failed(&self) -> bool {
        self.span.status.as_ref().is_some_and(|s| s.code == 2)
    }
}

/// A log record as received, with its resource's `service.name`.
#[derive(Debug, Clone)]
pub struct ReceivedLog {
    pub service: String,
    pub resource: Vec<proto::KeyValue>,
    pub record: proto::LogRecord,
}

impl ReceivedLog {
    /// The trace's id, empty when the record names none.
    pub fn trace_id(&self) -> String {
        hex::encode(&self.record.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex::encode(&self.record.span_id)
    }

    /// The body when it is a string (the shop's are: the line as logged).
    pub fn body(&self) -> Option<&str> {
        match self.record.body.as_ref()?.value.as_ref()? {
            proto::Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn resource_text(&self, key: &str) -> Option<&str> {
        match find(&self.resource, key)? {
            proto::Value::String(s) => Some(s),
            _ => None,
        }
    }
}

fn find<'a>(attributes: &'a [proto::KeyValue], key: &str) -> Option<&'a proto::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

/// The spans of an `ExportTraceServiceRequest` body, each with its resource and
/// `service.name` (empty when the resource names none).
pub fn decode(body: &[u8]) -> Result<Vec<Received>, prost::DecodeError> {
    let export = proto::ExportTraceServiceRequest::decode(body)?;
    let mut spans = Vec::new();
    for resource_spans in export.resource_spans {
        let (resource, service) = service_of(resource_spans.resource);
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(Received {
                    service: service.clone(),
                    resource: resource.clone(),
                    span,
                });
            }
        }
    }
    Ok(spans)
}

/// The resource attributes and `service.name` of a ResourceSpans or ResourceLogs.
fn service_of(resource: Option<proto::Resource>) -> (Vec<proto::KeyValue>, String) {
    let resource = resource.map(|r| r.attributes).unwrap_or_default();
    let service = match find(&resource, "service.name") {
        Some(proto::Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    (resource, service)
}

/// The log records of an `ExportLogsServiceRequest` body, each with its resource and
/// `service.name`.
pub fn decode_logs(body: &[u8]) -> Result<Vec<ReceivedLog>, prost::DecodeError> {
    let export = proto::ExportLogsServiceRequest::decode(body)?;
    let mut logs = Vec::new();
    for resource_logs in export.resource_logs {
        let (resource, service) = service_of(resource_logs.resource);
        for scope in resource_logs.scope_logs {
            for record in scope.log_records {
                logs.push(ReceivedLog {
                    service: service.clone(),
                    resource: resource.clone(),
                    record,
                });
            }
        }
    }
    Ok(logs)
}

/// How one export request arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// [`TRACES_PATH`] or [`LOGS_PATH`].
    pub path: &'static str,
    /// `http` or `https`.
    pub scheme: String,
    /// Whether the body came gzipped (`Content-Encoding: gzip`).
    pub gzip: bool,
    /// The body's size on the wire.
    pub bytes: usize,
}

/// What a receiver does with what it is sent.
pub trait Collector: Send + Sync + 'static {
    /// A well-formed export: the size of its body and its spans.
    fn collect(&self, bytes: usize, spans: Vec<Received>);

    /// A well-formed log export: the size of its body and its records (by default, let
    /// go: a collector that counts spans accepts logs and forgets them).
    fn collect_logs(&self, _bytes: usize, _logs: Vec<ReceivedLog>) {}

    /// An export request to either path, as it arrived (before it is decoded).
    fn arrived(&self, _arrival: &Arrival) {}

    /// A protobuf body of `bytes` bytes that is not an export: accept it (200, as a
    /// collector that only counts does) or refuse it (400).
    fn undecodable(&self, bytes: usize) -> Verdict;

    /// A request refused: another path or method, another content type, no length.
    fn refused(&self) {}

    /// What `GET /stats` answers (a JSON document); `None`: 404.
    fn stats(&self) -> Option<String> {
        None
    }
}

/// What a receiver answers to a body that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Refuse,
}

/// The receiver's routes, on any actix app: `POST /v1/traces` and `POST /v1/logs` (200
/// with an empty export response; 411 without a length, 415 for another content type or
/// a content encoding other than gzip, 400 for a gzip body that does not inflate),
/// `GET /healthz`, `GET /stats`; 404 for other paths (405 for methods other than GET,
/// HEAD and POST).
pub fn routes(cfg: &mut web::ServiceConfig, collector: Arc<dyn Collector>) {
    let other = || web::to(other);
    cfg.app_data(web::PayloadConfig::new(MAX_BODY))
        .app_data(web::Data::from(collector))
        .service(
            web::resource(TRACES_PATH)
                .route(web::post().to(receive))
                .default_service(other()),
        )
        .service(
            web::resource(LOGS_PATH)
                .route(web::post().to(receive_logs))
                .default_service(other()),
        )
        .service(
            web::resource("/healthz")
                .route(web::get().to(|| async { "ok\n" }))
                .default_service(other()),
        )
        .service(
            web::resource("/stats")
                .route(web::get().to(stats))
                .default_service(other()),
        )
        .default_service(other());
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    collector: web::Data<dyn Collector>,
) -> HttpResponse {
    let body = match accept(&req, TRACES_PATH, body, &**collector) {
        Ok(body) => body,
        Err(refusal) => return refusal.response(),
    };
    let verdict = match decode(&body) {
        Ok(spans) => {
            collector.collect(body.len(), spans);
            Verdict::Accept
        }
        Err(_) => collector.undecodable(body.len()),
    };
    match verdict {
        // An empty ExportTraceServiceResponse: full success.
        Verdict::Accept => HttpResponse::Ok()
            .content_type("application/x-protobuf")
            .finish(),
        Verdict::Refuse => HttpResponse::BadRequest().body("not an ExportTraceServiceRequest\n"),
    }
}

async fn receive_logs(
    req: HttpRequest,
    body: web::Bytes,
    collector: web::Data<dyn Collector>,
) -> HttpResponse {
    let body = match accept(&req, LOGS_PATH, body, &**collector) {
        Ok(body) => body,
        Err(refusal) => return refusal.response(),
    };
    let verdict = match decode_logs(&body) {
        Ok(logs) => {
            collector.collect_logs(body.len(), logs);
            Verdict::Accept
        }
        Err(_) => collector.undecodable(body.len()),
    };
    match verdict {
        // An empty ExportLogsServiceResponse: full success.
        Verdict::Accept => HttpResponse::Ok()
            .content_type("application/x-protobuf")
            .finish(),
        Verdict::Refuse => HttpResponse::BadRequest().body("not an ExportLogsServiceRequest\n"),
    }
}

/// Why an export request was refused.
enum Refusal {
    NoLength,
    ContentType,
    ContentEncoding,
    NotGzip,
}

impl Refusal {
    fn response(self) -> HttpResponse {
        match self {
            Refusal::NoLength => HttpResponse::LengthRequired().body("length required\n"),
            Refusal::ContentType => {
                HttpResponse::UnsupportedMediaType().body("only application/x-protobuf\n")
            }
            Refusal::ContentEncoding => {
                HttpResponse::UnsupportedMediaType().body("only gzip or no encoding\n")
            }
            Refusal::NotGzip => HttpResponse::BadRequest().body("the gzip body does not inflate\n"),
        }
    }
}

/// The protobuf body of an export request to `path`, inflated when gzipped; or why the
/// request is refused.
fn accept(
    req: &HttpRequest,
    path: &'static str,
    body: web::Bytes,
    collector: &dyn Collector,
) -> Result<web::Bytes, Refusal> {
    let headers = req.headers();
    let chunked = headers
        .get(header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if !chunked && !headers.contains_key(header::CONTENT_LENGTH) {
        collector.refused();
        return Err(Refusal::NoLength);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/x-protobuf") {
        collector.refused();
        return Err(Refusal::ContentType);
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let gzip = match encoding.as_str() {
        "identity" => false,
        "gzip" => true,
        _ => {
            collector.refused();
            return Err(Refusal::ContentEncoding);
        }
    };
    collector.arrived(&Arrival {
        path,
        scheme: req.connection_info().scheme().to_string(),
        gzip,
        bytes: body.len(),
    });
    if !gzip {
        return Ok(body);
    }
    let mut inflated = Vec::new();
    match flate2::read::GzDecoder::new(&body[..])
        .take(MAX_BODY as u64)
        .read_to_end(&mut inflated)
    {
        Ok(_) => Ok(inflated.into()),
        Err(_) => {
            collector.refused();
            Err(Refusal::NotGzip)
        }
    }
}

async fn stats(collector: web::Data<dyn Collector>) -> HttpResponse {
    match collector.stats() {
        Some(stats) => HttpResponse::Ok()
            .content_type("application/json")
            .body(format!("{stats}\n")),
        None => {
            collector.refused();
            HttpResponse::NotFound().body("not found\n")
        }
    }
}

async fn other(req: HttpRequest, collector: web::Data<dyn Collector>) -> HttpResponse {
    collector.refused();
    if [Method::GET, Method::HEAD, Method::POST].contains(req.method()) {
        HttpResponse::NotFound().body("not found\n")
    } else {
        HttpResponse::MethodNotAllowed().body("method not allowed\n")
    }
}

/// The receiver a tool runs: on a listener it bound itself (its port its own choice), on
/// whatever tokio runtime awaits it, until told to stop.
pub struct Endpoint {
    server: actix_web::dev::Server,
}

impl Endpoint {
    /// Serves `collector`'s routes on `listener` (two workers of their own).
    pub fn start(
        listener: std::net::TcpListener,
        collector: Arc<dyn Collector>,
    ) -> io::Result<Endpoint> {
        let server = actix_web::HttpServer::new(move || {
            let collector = collector.clone();
            actix_web::App::new().configure(move |cfg| routes(cfg, collector))
        })
        .workers(2)
        // The tool decides when to stop (its own signal handling).
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        Ok(Endpoint { server })
    }

    /// Serves until `stop` completes (or the server fails), then stops, letting the
    /// requests in flight finish within a second.
    pub async fn serve_until(self, stop: impl Future<Output = ()>) -> io::Result<()> {
        let handle = self.server.handle();
        let mut server = pin!(self.server);
        let mut stop = pin!(stop);
        let ended = std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = server.as_mut().poll(cx) {
                return Poll::Ready(Some(result));
            }
            stop.as_mut().poll(cx).map(|()| None)
        })
        .await;
        match ended {
            Some(result) => result,
            None => {
                // The command is sent at once; the server's own future carries it out (and
                // answers the handle's future, which nobody else would poll meanwhile).
                drop(handle.stop(true));
                server.await
            }
        }
    }
}

/// A test's receiver, which keeps every span and log record: `url` is the OTLP traces
/// endpoint to configure, `base` the general endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`).
pub struct Receiver {
    pub url: String,
    pub base: String,
    kept: Arc<Keep>,
    /// Stops with the receiver.
    _server: Server,
}

/// The server under a receiver, over http or https: held only to stop with it.
#[allow(dead_code)]
enum Server {
    Plain(Stub),
    Tls(TlsStub),
}

/// Keeps every span, log record and arrival; refuses what does not decode, so that the
/// shop counts it failed.
#[derive(Default)]
struct Keep {
    spans: Mutex<Vec<Received>>,
    logs: Mutex<Vec<ReceivedLog>>,
    arrivals: Mutex<Vec<Arrival>>,
}

impl Collector for Keep {
    fn collect(&self, _bytes: usize, spans: Vec<Received>) {
        self.spans.lock().unwrap().extend(spans);
    }

    fn collect_logs(&self, _bytes: usize, logs: Vec<ReceivedLog>) {
        self.logs.lock().unwrap().extend(logs);
    }

    fn arrived(&self, arrival: &Arrival) {
        self.arrivals.lock().unwrap().push(arrival.clone());
    }

    fn undecodable(&self, _bytes: usize) -> Verdict {
        Verdict::Refuse
    }
}

impl Receiver {
    /// Listens on a free loopback port, in the caller's actix runtime; answers 200 to
    /// well-formed exports, 415 to other content types and 400 to bodies that do not
    /// decode.
    pub fn start() -> Receiver {
        let kept = Arc::new(Keep::default());
        let collector: Arc<dyn Collector> = kept.clone();
        let server = Stub::start(move |cfg| routes(cfg, collector.clone()));
        Receiver::new(server.url.clone(), kept, Server::Plain(server))
    }

    /// The same over https, presenting the certificate of `tls` (see
    /// [`crate::tls::TestCa`]).
    pub fn start_tls(tls: rustls::ServerConfig) -> Receiver {
        let kept = Arc::new(Keep::default());
        let collector: Arc<dyn Collector> = kept.clone();
        let server = TlsStub::start(tls, move |cfg| routes(cfg, collector.clone()));
        Receiver::new(server.url.clone(), kept, Server::Tls(server))
    }

    fn new(base: String, kept: Arc<Keep>, server: Server) -> Receiver {
        Receiver {
            url: format!("{base}{TRACES_PATH}"),
            base,
            kept,
            _server: server,
        }
    }

    pub fn spans(&self) -> Vec<Received> {
        self.kept.spans.lock().unwrap().clone()
    }

    pub fn logs(&self) -> Vec<ReceivedLog> {
        self.kept.logs.lock().unwrap().clone()
    }

    /// How each export request arrived, in order.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.kept.arrivals.lock().unwrap().clone()
    }

    /// The log records once `done` holds for them, within `within`.
    pub async fn logs_until(
        &self,
        within: Duration,
        done: impl Fn(&[ReceivedLog]) -> bool,
    ) -> Vec<ReceivedLog> {
        let deadline = Instant::now() + within;
        loop {
            let logs = self.logs();
            if done(&logs) {
                return logs;
            }
            if Instant::now() > deadline {
                let seen: Vec<&str> = logs.iter().filter_map(ReceivedLog::body).collect();
                panic!("log records incomplete after {within:?}; received {seen:#?}");
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The spans of trace `trace_id` once `done` holds for them, within `within`.
    pub async fn trace(
        &self,
        trace_id: &str,
        within: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let spans: Vec<Received> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id() == trace_id)
                .collect();
            if done(&spans) {
                return spans;
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = spans
                    .iter()
                    .map(|s| format!("{}: {}", s.service, s.span.name))
                    .collect();
                panic!("trace {trace_id} incomplete after {within:?}; received {seen:#?}");
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::raw_http;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts what it is handed; accepts what does not decode.
    #[derive(Default)]
    struct Counting {
        exports: AtomicUsize,
        spans: Mutex<Vec<String>>,
        undecodable: AtomicUsize,
        refused: AtomicUsize,
    }

    impl Collector for Counting {
        fn collect(&self, _bytes: usize, spans: Vec<Received>) {
            self.exports.fetch_add(1, Ordering::Relaxed);
            let mut names = self.spans.lock().unwrap();
            names.extend(
                spans
                    .into_iter()
                    .map(|s| format!("{} {}", s.service, s.span.name)),
            );
        }

        fn undecodable(&self, _bytes: usize) -> Verdict {
            self.undecodable.fetch_add(1, Ordering::Relaxed);
            Verdict::Accept
        }

        fn refused(&self) {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }

        fn stats(&self) -> Option<String> {
            Some(serde_json::json!({"exports": self.exports.load(Ordering::Relaxed)}).to_string())
        }
    }

    fn export(service: &str, names: &[&str]) -> Vec<u8> {
        let attribute = |key: &str, value: proto::Value| proto::KeyValue {
            key: key.into(),
            value: Some(proto::AnyValue { value: Some(value) }),
        };
        proto::ExportTraceServiceRequest {
            resource_spans: vec![proto::ResourceSpans {
                resource: Some(proto::Resource {
                    attributes: vec![attribute(
                        "service.name",
                        proto::Value::String(service.into()),
                    )],
                }),
                scope_spans: vec![proto::ScopeSpans {
                    scope: None,
                    spans: names
                        .iter()
                        .map(|name| proto::Span {
                            name: name.to_string(),
                            kind: 2,
                            ..Default::default()
                        })
                        .collect(),
                }],
            }],
        }
        .encode_to_vec()
    }

    fn post(path: &str, content_type: &str, body: &[u8]) -> String {
        // Bodies here are protobuf bytes: sent as Latin-1 would mangle them, so only
        // ASCII-safe ones go through raw_http's String.
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{}",
            body.len(),
            String::from_utf8(body.to_vec()).expect("an ASCII body")
        )
    }

    fn get(method: &str, path: &str) -> String {
        format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    }

    /// Runs `exchange` against an endpoint serving `collector`, on a runtime of its own
    /// (local tasks allowed, as an awc client spawns them).
    fn against<F: Future<Output = ()>>(
        collector: Arc<dyn Collector>,
        exchange: impl FnOnce(String) -> F,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap().to_string();
            let endpoint = Endpoint::start(listener, collector).unwrap();
            endpoint.serve_until(exchange(address)).await.unwrap();
        });
    }

    #[test]
    fn decoding_gives_each_span_its_service() {
        let spans = decode(&export("cart", &["GET /a", "GET /b"])).unwrap();
        let names: Vec<(String, String)> = spans
            .iter()
            .map(|s| (s.service.clone(), s.span.name.clone()))
            .collect();
        assert_eq!(
            names,
            [
                ("cart".into(), "GET /a".into()),
                ("cart".into(), "GET /b".into())
            ]
        );
        assert!(spans[0].is_server());
        assert!(decode(b"\xff\xff").is_err());
    }

    #[test]
    fn an_endpoint_hands_exports_to_its_collector_and_refuses_the_rest() {
        let counting = Arc::new(Counting::default());
        // Span names of ASCII bytes only, so the body travels as text.
        let body = export("cart", &["a"]);
        assert!(body.is_ascii(), "{body:?}");
        against(counting.clone(), |address| async move {
            let accepted =
                raw_http(&address, post(TRACES_PATH, "application/x-protobuf", &body)).await;
            assert_eq!(accepted.status, 200);
            assert_eq!(
                accepted.header("content-type"),
                Some("application/x-protobuf")
            );
            let undecodable = raw_http(
                &address,
                post(
                    TRACES_PATH,
                    "application/x-protobuf; charset=x",
                    b"\x7f\x7f",
                ),
            )
            .await;
            assert_eq!(undecodable.status, 200, "a counting collector accepts it");
            let wrong_type = raw_http(&address, post(TRACES_PATH, "application/json", b"{}")).await;
            assert_eq!(wrong_type.status, 415);
            let no_length = format!(
                "POST {TRACES_PATH} HTTP/1.1\r\nHost: t\r\n\
                 Content-Type: application/x-protobuf\r\nConnection: close\r\n\r\n"
            );
            assert_eq!(raw_http(&address, no_length).await.status, 411);
            assert_eq!(
                raw_http(&address, get("GET", "/elsewhere")).await.status,
                404
            );
            assert_eq!(
                raw_http(&address, get("GET", TRACES_PATH)).await.status,
                404
            );
            assert_eq!(
                raw_http(&address, get("PUT", TRACES_PATH)).await.status,
                405
            );
            let health = raw_http(&address, get("GET", "/healthz")).await;
            assert_eq!((health.status, health.body.as_slice()), (200, &b"ok\n"[..]));
            let stats = raw_http(&address, get("GET", "/stats?pretty")).await;
            assert_eq!(stats.status, 200);
            assert_eq!(stats.header("content-type"), Some("application/json"));
            assert_eq!(stats.body, b"{\"exports\":1}\n");
        });
        assert_eq!(*counting.spans.lock().unwrap(), ["cart a"]);
        assert_eq!(counting.undecodable.load(Ordering::Relaxed), 1);
        assert_eq!(counting.refused.load(Ordering::Relaxed), 5);
    }

    fn log_export(service: &str, bodies: &[&str]) -> Vec<u8> {
        proto::ExportLogsServiceRequest {
            resource_logs: vec![proto::ResourceLogs {
                resource: Some(proto::Resource {
                    attributes: vec![proto::KeyValue {
                        key: "service.name".into(),
                        value: Some(proto::AnyValue {
                            value: Some(proto::Value::String(service.into())),
                        }),
                    }],
                }),
                scope_logs: vec![proto::ScopeLogs {
                    scope: None,
                    log_records: bodies
                        .iter()
                        .map(|body| proto::LogRecord {
                            severity_number: 9,
                            body: Some(proto::AnyValue {
                                value: Some(proto::Value::String(body.to_string())),
                            }),
                            trace_id: vec![0xab; 16],
                            ..Default::default()
                        })
                        .collect(),
                }],
            }],
        }
        .encode_to_vec()
    }

    fn gzipped(body: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(body).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzipped_exports_of_spans_and_logs_are_inflated_and_kept() {
        let kept = Arc::new(Keep::default());
        against(kept.clone(), |address| async move {
            let client = awc::Client::default();
            let post = |path: &str, encoding: &str, body: Vec<u8>| {
                client
                    .post(format!("http://{address}{path}"))
                    .insert_header(("content-type", "application/x-protobuf"))
                    .insert_header(("content-encoding", encoding))
                    .send_body(body)
            };
            let spans = post(TRACES_PATH, "gzip", gzipped(&export("cart", &["GET /a"])));
            assert_eq!(spans.await.unwrap().status(), 200);
            let logs = post(LOGS_PATH, "gzip", gzipped(&log_export("cart", &["msg=a"])));
            assert_eq!(logs.await.unwrap().status(), 200);
            let plain = post(LOGS_PATH, "identity", log_export("product", &["msg=b"]));
            assert_eq!(plain.await.unwrap().status(), 200);
            let brotli = post(LOGS_PATH, "br", log_export("cart", &["msg=c"]));
            assert_eq!(brotli.await.unwrap().status(), 415);
            let broken = post(TRACES_PATH, "gzip", b"not gzip".to_vec());
            assert_eq!(broken.await.unwrap().status(), 400);
        });
        let spans = kept.spans.lock().unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].span.name, "GET /a");
        let logs = kept.logs.lock().unwrap();
        let bodies: Vec<(&str, Option<&str>)> = logs
            .iter()
            .map(|l| (l.service.as_str(), l.body()))
            .collect();
        assert_eq!(
            bodies,
            [("cart", Some("msg=a")), ("product", Some("msg=b"))]
        );
        assert_eq!(logs[0].trace_id(), "ab".repeat(16));
        let arrivals: Vec<(&str, bool, String)> = kept
            .arrivals
            .lock()
            .unwrap()
            .iter()
            .map(|a| (a.path, a.gzip, a.scheme.clone()))
            .collect();
        assert_eq!(
            arrivals,
            [
                (TRACES_PATH, true, "http".to_string()),
                (LOGS_PATH, true, "http".to_string()),
                (LOGS_PATH, false, "http".to_string()),
                (TRACES_PATH, true, "http".to_string()),
            ]
        );
    }

    #[test]
    fn a_receiver_that_keeps_spans_refuses_what_does_not_decode() {
        let kept = Arc::new(Keep::default());
        against(kept.clone(), |address| async move {
            let undecodable = raw_http(
                &address,
                post(TRACES_PATH, "application/x-protobuf", b"\x7f\x7f"),
            )
            .await;
            assert_eq!(undecodable.status, 400);
            assert_eq!(raw_http(&address, get("GET", "/stats")).await.status, 404);
        });
        assert!(kept.spans.lock().unwrap().is_empty());
    }
}
