//! A test OTLP receiver ([`Receiver`]) that keeps every span the shop exports.
//!
//! It is an HTTP server that decodes the protobuf trace exports it is sent (with message
//! types declared here from the OpenTelemetry protocol, decoded by prost) and keeps every
//! span with the service that sent it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use prost::Message;

use crate::stub::Stub;

/// opentelemetry/proto/collector/trace/v1 and the messages it uses, as far as the shop
/// sends them.
pub mod proto {
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

fn find<'a>(attributes: &'a [proto::KeyValue], key: &str) -> Option<&'a proto::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

/// The receiver: `url` is the OTLP traces endpoint to configure.
pub struct Receiver {
    pub url: String,
    spans: Arc<Mutex<Vec<Received>>>,
    /// Stops with the receiver.
    _server: Stub,
}

impl Receiver {
    /// Listens on a free loopback port; answers 200 to well-formed exports, 415 to other
    /// content types and 400 to bodies that do not decode.
    pub fn start() -> Receiver {
        let spans: Arc<Mutex<Vec<Received>>> = Arc::default();
        let kept = spans.clone();
        let server = Stub::start(move |cfg| {
            let kept = kept.clone();
            cfg.app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .route(
                    "/v1/traces",
                    web::post().to(move |req: HttpRequest, body: web::Bytes| {
                        let kept = kept.clone();
                        async move { receive(&req, &body, &kept) }
                    }),
                );
        });
        Receiver {
            url: format!("{}/v1/traces", server.url),
            spans,
            _server: server,
        }
    }

    pub fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
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

fn receive(req: &HttpRequest, body: &[u8], kept: &Mutex<Vec<Received>>) -> HttpResponse {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type != "application/x-protobuf" {
        return HttpResponse::UnsupportedMediaType().finish();
    }
    let Ok(export) = proto::ExportTraceServiceRequest::decode(body) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut kept = kept.lock().unwrap();
    for resource_spans in export.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        let service = match find(&resource, "service.name") {
            Some(proto::Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                kept.push(Received {
                    service: service.clone(),
                    resource: resource.clone(),
                    span,
                });
            }
        }
    }
    // An empty ExportTraceServiceResponse: full success.
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .finish()
}
