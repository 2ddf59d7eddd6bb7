//! web-gateway: the shop's page and static files, sessions, and `/api/v1/*` forwarded to
//! the api-gateway after checking that cart and checkout calls carry a signed session.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::domain::{SessionId, SessionSigner};
use crate::http::assets::{self, WEB};
use crate::http::context::RoleContext;
use crate::http::observe::RouteLabel;
use crate::http::proxy::{self, route_label, split_api_path, Body};
use crate::http::{body, ApiError};
use crate::role::Role;
use crate::stores::SessionStore;

pub const SESSION_COOKIE: &str = "session_id";

pub struct State {
    /// Base URL of the api-gateway, without a trailing slash.
    pub api_gateway: String,
    pub sessions: SessionStore,
    pub signer: SessionSigner,
}

/// `/api/v1` is a static prefix whose paths `api` parses itself (no per-request regex).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/api/v1").default_service(web::to(api)))
        .default_service(web::to(page_or_file));
}

/// Services whose calls name a session, which must then be signed.
const SESSION_SERVICES: [&str; 2] = ["cart", "checkout"];

async fn api(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<State>,
    http: web::Data<awc::Client>,
) -> Result<HttpResponse, ApiError> {
    // The path goes on exactly as the client sent it; the service name is decoded fully,
    // so no spelling of "cart" slips past the session check.
    let path = req.uri().path();
    let url = match req.uri().query() {
        Some(query) => format!("{}{path}?{query}", state.api_gateway),
        None => format!("{}{path}", state.api_gateway),
    };
    let (service, _) = split_api_path(path).unwrap_or_default();
    let label = Role::upstream(&service).map_or("/api/v1/{tail}", route_label);
    req.extensions_mut().insert(RouteLabel(label));
    let body = if SESSION_SERVICES.contains(&service.as_ref()) {
        let bytes = body::read(payload).await?;
        require_signed_session(&state.signer, &bytes)?;
        Body::Bytes(bytes)
    } else {
        Body::Stream(payload)
    };
    proxy::forward(&http, &req, &url, "api-gateway", body).await
}

/// A `session_id` in a JSON body must be one this shop signed. Bodies without one pass
/// on (the service answers 400 for the missing field).
fn require_signed_session(signer: &SessionSigner, bytes: &[u8]) -> Result<(), ApiError> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(());
    };
    match fields.get("session_id") {
        None => Ok(()),
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
            ctx.metrics
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
        log::warn!("msg=\"session not stored\" error=\"{e}\"");
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

    #[test]
    fn only_signed_sessions_pass() {
        let signer = SessionSigner::new(b"k");
        let good = signer.sign(&SessionId::parse("abc").unwrap());
        let body = |v: &str| format!(r#"{{"session_id": "{v}"}}"#);
        assert!(require_signed_session(&signer, body(&good).as_bytes()).is_ok());
        assert!(require_signed_session(&signer, body("abc").as_bytes()).is_err());
        assert!(require_signed_session(&signer, br#"{"session_id": 1}"#).is_err());
        assert!(require_signed_session(&signer, b"{}").is_ok());
        assert!(require_signed_session(&signer, b"not json").is_ok());
    }
}
