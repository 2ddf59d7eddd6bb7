//! The outgoing HTTP client (one per worker; https peers are trusted as `crate::tls`
//! says), its one retry of calls that failed before any answer, and how its failures map
//! to 502/504.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use awc::error::{ConnectError, SendRequestError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

use super::observe::method_label;
use super::ApiError;
use crate::telemetry::logfmt;
use crate::telemetry::propagation::{BAGGAGE, TRACEPARENT};
use crate::telemetry::span::{Call, Outcome, Peer};

/// The largest upstream body a role reads whole (proxies stream and never read them).
const MAX_UPSTREAM_BODY: usize = 1024 * 1024;

/// Timeouts of every outgoing call.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

/// How long the shop's servers keep an idle connection open.
pub const SERVER_KEEP_ALIVE: Duration = Duration::from_secs(75);
/// How long a caller keeps an idle pooled connection: well inside every server's
/// keep-alive, so a pooled connection is not one its server is just closing. (A server
/// that closes sooner, like a third-party bucket, is met by the one retry.)
pub const POOL_IDLE: Duration = Duration::from_secs(30);
const _: () = assert!(POOL_IDLE.as_secs() < SERVER_KEEP_ALIVE.as_secs());

/// The outgoing clients of one worker: a pooled one for every call, and one that never
/// reuses a connection, for the single retry of a call whose pooled connection failed.
#[derive(Clone)]
pub struct Http {
    pooled: awc::Client,
    fresh: awc::Client,
}

/// Clients with explicit timeouts that follow no redirects, trusting https peers as
/// `tls` says.
pub fn build(timeouts: Timeouts, tls: &Arc<rustls::ClientConfig>) -> Http {
    let client = |idle: Duration| {
        awc::Client::builder()
            .connector(
                awc::Connector::new()
                    .timeout(timeouts.connect)
                    .conn_keep_alive(idle)
                    .rustls_0_23(tls.clone()),
            )
            .timeout(timeouts.request)
            .disable_redirects()
            .finish()
    };
    Http {
        pooled: client(POOL_IDLE),
        fresh: client(Duration::ZERO),
    }
}

/// Whether a call may be sent a second time: it changes nothing (GET, HEAD, PUT, DELETE,
/// the read-only POSTs), or an `Idempotency-Key` makes a repeat answer the first result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    Safe,
    Never,
}

impl Repeat {
    /// By method alone: the idempotent methods of RFC 9110 are safe to repeat.
    pub fn by_method(method: &Method) -> Repeat {
        if matches!(
            *method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        ) {
            Repeat::Safe
        } else {
            Repeat::Never
        }
    }
}

/// Whether a call failed before any byte of an answer arrived: refused, reset, or a pooled
/// connection the server had closed. A connect timeout is not retried (it already took
/// the whole connect timeout).
fn failed_before_answer(e: &SendRequestError) -> bool {
    use actix_http::error::ParseError;
    match e {
        SendRequestError::Connect(ConnectError::Timeout) => false,
        SendRequestError::Connect(_) | SendRequestError::Send(_) => true,
        SendRequestError::Response(ParseError::Io(_) | ParseError::Incomplete) => true,
        _ => false,
    }
}

/// Sends a request that `build` makes (from the client it is given, with its span), and
/// when `repeat` allows it, once more on a fresh connection if the first try failed
/// before any answer.
pub async fn send(
    http: &Http,
    repeat: Repeat,
    url: &str,
    body: Bytes,
    build: impl Fn(&awc::Client) -> (awc::ClientRequest, Call),
) -> Result<awc::ClientResponse, SendRequestError> {
    let (request, call) = build(&http.pooled);
    let sent = request.send_body(body.clone()).await;
    end_call(call, url, &sent);
    match sent {
        Err(e) if repeat == Repeat::Safe && failed_before_answer(&e) => {
            log::info!(
                "msg=\"call failed before any answer: sending it again on a fresh connection\" url={} error={}",
                logfmt::value(url),
                logfmt::value(&e.to_string())
            );
            let (request, call) = build(&http.fresh);
            let sent = request.send_body(body).await;
            end_call(call, url, &sent);
            sent
        }
        other => other,
    }
}

/// Whether a call failed by running out of time (connecting or waiting for the answer).
fn timed_out(e: &SendRequestError) -> bool {
    matches!(
        e,
        SendRequestError::Timeout | SendRequestError::Connect(awc::error::ConnectError::Timeout)
    )
}

/// How a call to another service failed; each says what a client is told, and keeps the
/// client library's error as its cause.
#[derive(Debug, thiserror::Error)]
pub enum CallFailure {
    #[error("did not answer in time")]
    TimedOut(#[source] SendRequestError),
    #[error("did not accept the connection in time")]
    ConnectTimedOut(#[source] SendRequestError),
    #[error("is unreachable")]
    Unreachable(#[source] SendRequestError),
    #[error("did not finish its answer in time")]
    AnswerTimedOut(#[source] awc::error::PayloadError),
    #[error("sent an incomplete answer")]
    Incomplete(#[source] awc::error::PayloadError),
    #[error("answered with an unexpected body")]
    UnexpectedBody(#[source] serde_json::Error),
}

impl CallFailure {
    /// Whether time ran out (504 rather than 502).
    pub fn timed_out(&self) -> bool {
        matches!(
            self,
            CallFailure::TimedOut(_)
                | CallFailure::ConnectTimedOut(_)
                | CallFailure::AnswerTimedOut(_)
        )
    }
}

/// Maps a failed call to `what` (a service name, never an address) to 502 or 504.
pub fn send_error(what: &str, e: SendRequestError) -> ApiError {
    let failure = match e {
        SendRequestError::Timeout => CallFailure::TimedOut(e),
        ref connect if timed_out(connect) => CallFailure::ConnectTimedOut(e),
        other => CallFailure::Unreachable(other),
    };
    ApiError::Call {
        what: what.to_string(),
        failure,
    }
}

/// Starts the span of a `method` call to `target` (one of the shop's services, or the
/// image bucket) through `peer` (the target itself, or a gateway), and sets the trace
/// headers the call carries: its own `traceparent` and the request's baggage.
pub fn start_call(
    peer: &'static str,
    target: &'static str,
    method: &actix_web::http::Method,
    headers: &mut HeaderMap,
) -> Call {
    let operation = method_label(method);
    let call = Call::start(Peer::Http { peer, target }, operation, || {
        format!("{operation} {target}").into()
    });
    headers.remove(BAGGAGE);
    if let Some(value) = call
        .traceparent()
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        headers.insert(HeaderName::from_static(TRACEPARENT), value);
    }
    if let Some(baggage) = call.baggage() {
        headers.insert(HeaderName::from_static(BAGGAGE), baggage);
    }
    call
}

/// Ends a call's span with the answer's status, or with why there was none.
pub fn end_call<S>(
    mut call: Call,
    url: &str,
    sent: &Result<awc::ClientResponse<S>, SendRequestError>,
) {
    call.attribute("url.full", || url.to_string().into());
    match sent {
        Ok(response) => call.finish(Outcome::Status(response.status().as_u16())),
        Err(e) => {
            let kind = match e {
                e if timed_out(e) => "timeout",
                SendRequestError::Connect(_) => "connect",
                _ => "transport",
            };
            call.finish(Outcome::Failed(kind, &e.to_string()))
        }
    }
}

/// A JSON call's answer: its status and body.
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Reply {
    /// The body as `T`, or 502 when `what` answered something unexpected.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| ApiError::Call {
            what: what.to_string(),
            failure: CallFailure::UnexpectedBody(e),
        })
    }

    /// The `reason` of a JSON failure, or a generic one.
    pub fn reason(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("reason")?.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("upstream answered {}", self.status))
    }
}

/// Sends `body` as JSON to `url` (a call to `what` through `peer`, traced), reading the
/// whole answer within the client's timeout; `repeat` as for [`send`].
pub async fn call_json<B: Serialize>(
    http: &Http,
    method: Method,
    url: &str,
    (peer, what): (&'static str, &'static str),
    body: &B,
    repeat: Repeat,
) -> Result<Reply, ApiError> {
    let body = serde_json::to_vec(body).map_err(|cause| ApiError::Corrupt {
        what: "a call's body did not encode",
        cause,
    })?;
    let sent = send(http, repeat, url, body.into(), |client| {
        let mut request = client
            .request(method.clone(), url)
            .content_type("application/json");
        let call = start_call(peer, what, &method, request.headers_mut());
        (request, call)
    })
    .await;
    let mut response = sent.map_err(|e| send_error(what, e))?;
    let body = response
        .body()
        .limit(MAX_UPSTREAM_BODY)
        .await
        .map_err(|e| {
            let failure = match e {
                awc::error::PayloadError::Io(ref io)
                    if io.kind() == std::io::ErrorKind::TimedOut =>
                {
                    CallFailure::AnswerTimedOut(e)
                }
                other => CallFailure::Incomplete(other),
            };
            ApiError::Call {
                what: what.to_string(),
                failure,
            }
        })?;
    Ok(Reply {
        status: response.status(),
        body,
    })
}

/// Whether `url` answers `/healthz` with 200, for readiness checks.
pub async fn healthy(http: &Http, url: &str) -> Result<(), String> {
    let response = http
        .pooled
        .get(format!("{}/healthz", url.trim_end_matches('/')))
        .send()
        .await
        .map_err(|e| match e {
            SendRequestError::Timeout => "timed out".to_string(),
            _ => "unreachable".to_string(),
        })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", response.status()))
    }
}

/// The error to give when `what` answered a call with a failure status: its refusals
/// (4xx) pass on as they are; its outages become 503/504/502.
pub fn upstream_failure(what: &str, reply: &Reply) -> ApiError {
    let reason = reply.reason();
    match reply.status {
        s if s.is_client_error() => ApiError::Refused { status: s, reason },
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable(format!("{what}: {reason}")),
        StatusCode::GATEWAY_TIMEOUT => ApiError::Timeout(format!("{what}: {reason}")),
        _ => ApiError::Upstream(format!("{what} failed: {reason}")),
    }
}
