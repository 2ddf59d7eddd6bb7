//! Forwarding a request to an upstream and its answer back. The request body is read
//! whole first (at most 64 KiB, within the client's time limit), so a slow client never
//! holds an upstream connection; the answer is streamed.

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};

use super::client::{self, start_call, Http, Repeat};
use super::ApiError;
use crate::domain::percent_decode;
use crate::role::Role;

/// The header that makes a POST safe to repeat (checkout answers the first order again).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Whether a call to `service` at `tail` may be sent again after a failure before any
/// answer: idempotent methods, POSTs that carry an `Idempotency-Key`, and the read-only
/// POSTs (the cart read, search, suggestions, documents).
pub fn repeat_of(method: &Method, service: Role, tail: &str, headers: &HeaderMap) -> Repeat {
    let read_only_post = match service {
        Role::Cart => tail.is_empty(),
        Role::Product => matches!(tail, "search" | "suggestions" | "documents"),
        _ => false,
    };
    let keyed = headers.contains_key(IDEMPOTENCY_KEY);
    match Repeat::by_method(method) {
        Repeat::Never if *method == Method::POST && (read_only_post || keyed) => Repeat::Safe,
        other => other,
    }
}

/// Headers that describe one connection, not the message (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including any that `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// `(service, tail)` of a raw `/api/v1/<service>[/<tail>]` path; the tail stays exactly
/// as the client sent it, the service name is decoded (so `c%61rt` is `cart`).
pub fn split_api_path(path: &str) -> Option<(std::borrow::Cow<'_, str>, &str)> {
    let rest = path.strip_prefix("/api/v1/")?;
    let (service, tail) = rest.split_once('/').unwrap_or((rest, ""));
    Some((percent_decode(service), tail))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Sends `req` (method, headers, the body read whole) to `url` and relays the answer;
/// `repeat` says whether a try that failed before any answer may be sent again. `what`
/// names the upstream in errors. Hop-by-hop headers are dropped both ways,
/// `X-Forwarded-For` is appended, and redirects are passed back rather than followed.
pub async fn forward(
    http: &Http,
    req: &HttpRequest,
    url: &str,
    (what, repeat): (&'static str, Repeat),
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let sent = client::send(http, repeat, url, body, |client| {
        let mut outgoing = client.request_from(url, req.head()).no_decompress();
        let headers = outgoing.headers_mut();
        strip_hop_by_hop(headers);
        // The upstream gets its own Host; the body length is set from the body.
        headers.remove(header::HOST);
        headers.remove(header::CONTENT_LENGTH);
        let call = start_call(what, what, req.method(), headers);
        if let Some(peer) = req.peer_addr() {
            let forwarded = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
                Some(previous) => format!("{previous}, {}", peer.ip()),
                None => peer.ip().to_string(),
            };
            if let Ok(value) = HeaderValue::from_str(&forwarded) {
                headers.insert(HeaderName::from_static("x-forwarded-for"), value);
            }
        }
        (outgoing, call)
    })
    .await;
    let upstream = sent.map_err(|e| client::send_error(what, e))?;

    let status = upstream.status();
    let mut response = HttpResponse::build(status);
    let mut upstream_headers = upstream.headers().clone();
    strip_hop_by_hop(&mut upstream_headers);
    let length = content_length(&upstream_headers);
    upstream_headers.remove(header::CONTENT_LENGTH);
    for (name, value) in upstream_headers.iter() {
        response.append_header((name.clone(), value.clone()));
    }
    let bodiless = req.method() == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.is_informational();
    Ok(match length {
        _ if bodiless => response.finish(),
        Some(len) => response.body(SizedStream::new(len, upstream)),
        None => response.streaming(upstream),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_split_into_a_decoded_service_and_a_raw_tail() {
        let (service, tail) = split_api_path("/api/v1/c%61rt/a%20b/1").unwrap();
        assert_eq!((service.as_ref(), tail), ("cart", "a%20b/1"));
        let (service, tail) = split_api_path("/api/v1/cart").unwrap();
        assert_eq!((service.as_ref(), tail), ("cart", ""));
        assert!(split_api_path("/api/v2/cart").is_none());
    }

    #[test]
    fn tails_keep_the_client_s_escapes() {
        let (_, tail) = split_api_path("/api/v1/cart/a%3Fb%20c/1").unwrap();
        assert_eq!(tail, "a%3Fb%20c/1");
    }

    #[test]
    fn only_calls_that_change_nothing_or_carry_a_key_repeat() {
        let none = HeaderMap::new();
        let mut keyed = HeaderMap::new();
        keyed.insert(
            HeaderName::from_static(IDEMPOTENCY_KEY),
            HeaderValue::from_static("k1"),
        );
        let post = Method::POST;
        assert_eq!(
            repeat_of(&Method::PUT, Role::Cart, "a/1", &none),
            Repeat::Safe
        );
        assert_eq!(repeat_of(&post, Role::Cart, "", &none), Repeat::Safe);
        assert_eq!(
            repeat_of(&post, Role::Product, "search", &none),
            Repeat::Safe
        );
        assert_eq!(
            repeat_of(&post, Role::Checkout, "process", &none),
            Repeat::Never
        );
        assert_eq!(
            repeat_of(&post, Role::Checkout, "process", &keyed),
            Repeat::Safe
        );
        assert_eq!(
            repeat_of(&post, Role::Payment, "process", &none),
            Repeat::Never
        );
        assert_eq!(
            repeat_of(&Method::PATCH, Role::Cart, "", &keyed),
            Repeat::Never
        );
    }

    #[test]
    fn hop_by_hop_headers_go_including_those_connection_names() {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("content-type", "application/json"),
        ] {
            headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut headers);
        let left: Vec<_> = headers.keys().map(|k| k.as_str().to_string()).collect();
        assert_eq!(left, ["content-type"]);
    }
}
