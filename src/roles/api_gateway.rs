//! api-gateway: forwards `/api/v1/<service>/<path>` to the five known services, and
//! nowhere else.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::proxy::{self, Body};
use crate::http::ApiError;
use crate::role::Role;

pub struct State {
    /// Base URL of each upstream service, without a trailing slash.
    pub upstreams: BTreeMap<Role, String>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/{service}", web::route().to(forward))
        .route("/api/v1/{service}/{tail:.*}", web::route().to(forward));
}

async fn forward(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<State>,
    http: web::Data<awc::Client>,
) -> Result<HttpResponse, ApiError> {
    let service = req.match_info().get("service").unwrap_or_default();
    let role = Role::upstream(service)
        .ok_or_else(|| ApiError::NotFound(format!("No service named '{service}'")))?;
    let base = state
        .upstreams
        .get(&role)
        .ok_or_else(|| ApiError::Unexpected(format!("no upstream wired for {role}")))?;
    // The rest of the path exactly as the client sent it (`api/v1/<service>/<tail>`).
    let tail = proxy::raw_tail(&req, 3);
    let url = match req.uri().query() {
        Some(query) => format!("{base}/{tail}?{query}"),
        None => format!("{base}/{tail}"),
    };
    proxy::forward(&http, &req, &url, role.as_str(), Body::Stream(payload)).await
}
