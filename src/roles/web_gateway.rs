//! web-gateway: the shop's page and static files, sessions, and `/api/v1/*` forwarded to
//! the api-gateway after checking that cart and checkout calls carry a signed session.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde_json::{Map, Value};

use crate::domain::{percent_decode, SessionId, SessionSigner};
use crate::http::assets::{self, WEB};
use crate::http::client::Http;
use crate::http::context::RoleContext;
use crate::http::observe::RouteLabel;
use crate::http::proxy::{self, repeat_of, split_api_path};
use crate::http::{body, ApiError};
use crate::role::Role;
use crate::stores::SessionStore;
use crate::telemetry::logfmt;

pub const SESSION_COOKIE: &str = "session_id";

pub struct State {
    /// Base URL of the api-gateway, without a trailing slash.
    pub api_gateway: String,
    pub sessions: SessionStore,
    pub signer: SessionSigner,
}

/// `/api/v1` is a static prefix whose paths `api` parses itself (no per-request regex).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .configure(crate::http::fault_control::configure)
            .default_service(web::to(api)),
    )
    .default_service(web::to(page_or_file));
}

/// Security headers on every answer: the shop's page loads only its own scripts, styles
/// and images, is never framed, and names no other site in a Referer.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; \
             form-action 'self'; frame-ancestors 'none'",
        ))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "same-origin"))
}

async fn api(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<State>,
    http: web::Data<Http>,
) -> Result<HttpResponse, ApiError> {
    // The path goes on exactly as the client sent it; the service name is decoded fully,
    // so no spelling of "cart" slips past the session check.
    let path = req.uri().path();
    let (service, tail) = split_api_path(path).unwrap_or_default();
    // Only the services a browser (and the k6 journey) calls; payment is internal.
    let role = Role::upstream(&service)
        .filter(|role| role.is_public())
        .ok_or_else(|| ApiError::NotFound(format!("No service named '{service}'")))?;
    req.extensions_mut()
        .insert(RouteLabel(role.forwarded_route()));
    let bytes = body::read(payload).await?;
    if matches!(role, Role::Cart | Role::Checkout) {
        check_session_call(&state.signer, role, tail, &bytes)?;
    }
    let url = match req.uri().query() {
        Some(query) => format!("{}{path}?{query}", state.api_gateway),
        None => format!("{}{path}", state.api_gateway),
    };
    let repeat = repeat_of(req.method(), role, tail, req.headers());
    proxy::forward(&http, &req, &url, ("api-gateway", repeat), bytes).await
}

/// A cart or checkout call goes on only when the gateway has read its body exactly as the
/// service behind it will (`body::parse_object`, strict) and found a `session_id` this
/// shop signed. Whatever it cannot read is a 400 and never forwarded; a forged session a
/// 403. The cart's order routes are checkout's alone.
fn check_session_call(
    signer: &SessionSigner,
    role: Role,
    tail: &str,
    bytes: &[u8],
) -> Result<(), ApiError> {
    let first = tail.split('/').map(percent_decode).find(|s| !s.is_empty());
    let first = first.as_deref().unwrap_or_default();
    if role == Role::Cart && first == "orders" {
        return Err(ApiError::NotFound("No such cart route".into()));
    }
    // Opening checkout names no session (the original UI sends `{}`).
    let sessionless = role == Role::Checkout && first == "initiate";
    if sessionless && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let fields: Map<String, Value> = body::parse_object(bytes)?;
    // Of any JSON type: a non-string (null too) is answered like a forged one.
    match fields.get("session_id") {
        None if sessionless => Ok(()),
        None => Err(ApiError::Validation(
            "Invalid body: missing field `session_id`".into(),
        )),
        Some(Value::String(value)) if signer.verify(value).is_some() => Ok(()),
        Some(_) => Err(ApiError::Forbidden(
            "session_id is not a session of this shop".into(),
        )),
    }
}

async fn page_or_file(
    req: HttpRequest,
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
) -> Result<HttpResponse, ApiError> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::NotFound(format!(
            "No route for {} {}",
            req.method(),
            req.path()
        )));
    }
    let path = req.path();
    let last = path.rsplit('/').next().unwrap_or_default();
    if last.contains('.') {
        return static_file(&req, path);
    }
    page(&req, &state, &ctx).await
}

/// `/<path>.<ext>` from the bundle; only exact names of embedded files exist.
fn static_file(req: &HttpRequest, path: &str) -> Result<HttpResponse, ApiError> {
    let name = path.trim_start_matches('/');
    let file = assets::find(WEB, name)
        .filter(|_| name != "index.html")
        .ok_or_else(|| ApiError::NotFound(format!("No file {path}")))?;
    // Bundle files under assets/ carry a content hash in their names: they never change.
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=3600"
    };
    Ok(assets::serve(req, file, cache))
}

/// The shop's `index.html`, creating a session when the request has no valid one.
async fn page(
    req: &HttpRequest,
    state: &State,
    ctx: &RoleContext,
) -> Result<HttpResponse, ApiError> {
    let index = assets::find(WEB, "index.html")
        .ok_or_else(|| ApiError::Unexpected("the web bundle has no index.html".into()))?;
    let signed = cookie(req, SESSION_COOKIE).and_then(|v| state.signer.verify(v));
    let new_cookie = match signed {
        Some(sid) => {
            keep_session(state, &sid).await;
            None
        }
        None => {
            let sid = SessionId::random();
            keep_session(state, &sid).await;
            ctx.metrics()
                .add("ecommerce_sessions_created_total", &[], 1.0);
            Some(state.signer.sign(&sid))
        }
    };
    let mut response = assets::serve(req, index, "no-cache");
    if let Some(value) = new_cookie {
        let cookie = format!("{SESSION_COOKIE}={value}; Path=/; SameSite=Lax");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// Refreshes a session's TTL, recreating it if it expired (its signature proves this
/// shop issued it, and keeping the id keeps the shopper's cart). A store outage does not
/// stop the page: the signed cookie still works for the API.
async fn keep_session(state: &State, sid: &SessionId) {
    let kept = match state.sessions.touch(sid).await {
        Ok(true) => Ok(()),
        Ok(false) => state.sessions.create(sid).await,
        Err(e) => Err(e),
    };
    if let Err(e) = kept {
        log::warn!(
            "msg=\"session not stored\" error={}",
            logfmt::value(&logfmt::chain(&e))
        );
    }
}

/// The value of cookie `name` in the request's Cookie headers.
fn cookie<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(result: Result<(), ApiError>) -> u16 {
        use actix_web::ResponseError;
        result.map_or_else(|e| e.status_code().as_u16(), |()| 200)
    }

    #[test]
    fn only_readable_bodies_with_signed_sessions_pass() {
        let signer = SessionSigner::new(b"k");
        let good = signer.sign(&SessionId::parse("abc").unwrap());
        let check = |tail: &str, body: &str| {
            status(check_session_call(
                &signer,
                Role::Cart,
                tail,
                body.as_bytes(),
            ))
        };
        let body = |v: &str| format!(r#"{{"session_id": "{v}"}}"#);
        assert_eq!(check("", &body(&good)), 200);
        assert_eq!(check("", &body("abc")), 403);
        assert_eq!(check("", r#"{"session_id": 1}"#), 403);
        assert_eq!(check("", "{}"), 400);
        assert_eq!(check("", ""), 400);
        assert_eq!(check("", "not json"), 400);
        assert_eq!(check("", r#"{"session_id": "abc", "x": 1e999}"#), 400);
        assert_eq!(check("", r#"["abc"]"#), 400);
        let twice = format!(r#"{{"session_id": "abc", "session_id": "{good}"}}"#);
        assert_eq!(check("", &twice), 400);
        assert_eq!(check("orders/k/claim", &body(&good)), 404);
        assert_eq!(check("%6Frders/k/claim", &body(&good)), 404);
    }

    #[test]
    fn opening_checkout_needs_no_session_but_a_readable_body() {
        let signer = SessionSigner::new(b"k");
        let check = |tail: &str, body: &str| {
            status(check_session_call(
                &signer,
                Role::Checkout,
                tail,
                body.as_bytes(),
            ))
        };
        assert_eq!(check("initiate", "{}"), 200);
        assert_eq!(check("initiate", ""), 200);
        assert_eq!(check("initiate", r#"{"x": 1e999}"#), 400);
        assert_eq!(check("initiate", r#"{"session_id": "forged"}"#), 403);
        assert_eq!(check("process", "{}"), 400);
    }
}
