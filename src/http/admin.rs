//! `GET /faults` and `PUT /faults`: a role's faults, switched at run time by whoever holds
//! the admin token. Without a configured token the faults stay as the process started.

use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::context::RoleContext;
use super::{body, ApiError};
use crate::faults::Faults;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/faults", web::get().to(show))
        .route("/faults", web::put().to(switch));
}

/// `{"service": ..., "faults": [...], "switchable": bool}`.
async fn show(ctx: web::Data<RoleContext>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "service": ctx.role.as_str(),
        "faults": ctx.faults.get().active(),
        "switchable": ctx.admin_token.is_some(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Switch {
    /// The faults to have on from now (`NAME[=VALUE]` each); the others go off.
    faults: Vec<String>,
}

/// Replaces the faults of this process with those of the body.
async fn switch(
    req: HttpRequest,
    ctx: web::Data<RoleContext>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = &ctx.admin_token else {
        return Err(ApiError::Forbidden(
            "Switching faults at run time is off: no admin token is configured (--admin-token)"
                .into(),
        ));
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "An admin token is required (Authorization: Bearer <token>)".into(),
            )
        })?;
    if !same_secret(given.trim(), token.expose()) {
        return Err(ApiError::Unauthorized(
            "The admin token is not valid".into(),
        ));
    }
    let request: Switch = body::json(payload).await?;
    let faults = Faults::parse(&request.faults).map_err(ApiError::Validation)?;
    ctx.faults.replace(faults).map_err(ApiError::Conflict)?;
    let active = ctx.faults.get().active();
    log::warn!(
        "msg=\"faults switched\" service={} faults={:?}",
        ctx.role,
        active.join(",")
    );
    Ok(HttpResponse::Ok().json(json!({
        "service": ctx.role.as_str(),
        "faults": active,
        "switchable": true,
    })))
}

/// Compares digests of both, so the time taken says nothing about how much matched.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cre", "s3cret"));
        assert!(!same_secret("", "s3cret"));
    }
}
