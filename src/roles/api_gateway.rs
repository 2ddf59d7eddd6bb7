//! api-gateway: forwards `/api/v1/<service>/<path>` to the five known services, and
//! nowhere else.

use std::collections::BTreeMap;

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use crate::http::client::Http;
use crate::http::context::RoleContext;
use crate::http::observe::RouteLabel;
use crate::http::proxy::{self, repeat_of, split_api_path};
use crate::http::{body, ApiError};
use crate::role::Role;
use crate::telemetry::span;

pub struct State {
    /// Base URL of each upstream service, without a trailing slash.
    pub upstreams: BTreeMap<Role, String>,
}

/// Everything under `/api/v1` is parsed here rather than by route patterns: a static
/// prefix costs a string compare, a `{service}/{tail:.*}` pattern a regex run per request.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/api/v1").default_service(web::to(forward)));
}

async fn forward(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<State>,
    http: web::Data<Http>,
    ctx: web::Data<RoleContext>,
) -> Result<HttpResponse, ApiError> {
    let path = req.uri().path();
    let (service, tail) = split_api_path(path).unwrap_or_default();
    let role = Role::upstream(&service)
        .ok_or_else(|| ApiError::NotFound(format!("No service named '{service}'")))?;
    req.extensions_mut()
        .insert(RouteLabel(role.forwarded_route()));
    if let Some((dropped, share)) = ctx.faults.get().upstream_drop {
        // `random` is below 1: a share of 1 drops every call, 0 none.
        if dropped == role && rand::random::<f64>() < share {
            span::mark_fault("upstream-drop");
            return Err(ApiError::Upstream(format!(
                "{role} dropped by fault upstream-drop"
            )));
        }
    }
    let base = state
        .upstreams
        .get(&role)
        .ok_or_else(|| ApiError::Unexpected(format!("no upstream wired for {role}")))?;
    let url = match req.uri().query() {
        Some(query) => format!("{base}/{tail}?{query}"),
        None => format!("{base}/{tail}"),
    };
    let repeat = repeat_of(req.method(), role, tail, req.headers());
    let bytes = body::read(payload).await?;
    proxy::forward(&http, &req, &url, (role.as_str(), repeat), bytes).await
}
