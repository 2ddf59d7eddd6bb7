//! `GET /faults` and `PUT /faults`: a role's faults, switched at run time by whoever holds
//! the admin token. Without a configured token the faults stay as the process started.
//! A client that guesses wrong a few times is answered 429 for a while.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How many wrong tokens one client address may send in [`GUESS_WINDOW`].
const MAX_WRONG_GUESSES: u32 = 5;
const GUESS_WINDOW: Duration = Duration::from_secs(60);
/// The most client addresses remembered; past it the oldest windows are forgotten.
const MAX_GUESSERS: usize = 10_000;

/// Wrong admin tokens by client address, in fixed windows: past the limit, every try
/// from that address (the right token too) is a 429 until its window ends.
#[derive(Default)]
pub struct Guesses {
    by_client: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Guesses {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (u32, Instant)>> {
        self.by_client.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds until `client` may try again, when it is over the limit.
    fn locked(&self, client: IpAddr, now: Instant) -> Option<u64> {
        let guesses = self.lock();
        let (wrong, since) = guesses.get(&client)?;
        let elapsed = now.saturating_duration_since(*since);
        if *wrong < MAX_WRONG_GUESSES || elapsed >= GUESS_WINDOW {
            return None;
        }
        Some((GUESS_WINDOW - elapsed).as_secs_f64().ceil() as u64)
    }

    fn wrong(&self, client: IpAddr, now: Instant) {
        let mut guesses = self.lock();
        if guesses.len() >= MAX_GUESSERS {
            guesses.retain(|_, (_, since)| now.saturating_duration_since(*since) < GUESS_WINDOW);
        }
        let entry = guesses.entry(client).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= GUESS_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }
}

/// Replaces the faults of this process with those of the body.
async fn switch(
    req: HttpRequest,
    ctx: web::Data<RoleContext>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &ctx, || {
        ApiError::Forbidden(
            "Switching faults at run time is off: no admin token is configured (--admin-token)"
                .into(),
        )
    })?;
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

/// Lets the request through when it carries the admin token; `no_token` is the answer
/// when none is configured. Wrong tokens count against the client's address.
pub fn authorize(
    req: &HttpRequest,
    ctx: &RoleContext,
    no_token: impl FnOnce() -> ApiError,
) -> Result<(), ApiError> {
    let Some(token) = &ctx.admin_token else {
        return Err(no_token());
    };
    let client = client_of(req);
    let now = Instant::now();
    if let Some(retry_after) = ctx.admin_guesses.locked(client, now) {
        return Err(ApiError::TooManyRequests {
            reason: "Too many wrong admin tokens from this address: try again later".into(),
            retry_after,
        });
    }
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token);
    let Some(given) = given else {
        ctx.admin_guesses.wrong(client, now);
        return Err(ApiError::Unauthorized(
            "An admin token is required (Authorization: Bearer <token>)".into(),
        ));
    };
    if !same_secret(given.trim(), token.expose()) {
        ctx.admin_guesses.wrong(client, now);
        return Err(ApiError::Unauthorized(
            "The admin token is not valid".into(),
        ));
    }
    Ok(())
}

/// The client's address (the peer's: the shop does not trust forwarded headers here).
pub fn client_of(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip())
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
    fn a_client_is_locked_out_after_a_few_wrong_guesses_for_its_window() {
        let guesses = Guesses::default();
        let (client, other) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let start = Instant::now();
        for _ in 0..MAX_WRONG_GUESSES {
            assert_eq!(guesses.locked(client, start), None);
            guesses.wrong(client, start);
        }
        assert_eq!(guesses.locked(client, start), Some(GUESS_WINDOW.as_secs()));
        assert_eq!(guesses.locked(other, start), None);
        assert_eq!(guesses.locked(client, start + GUESS_WINDOW), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cre", "s3cret"));
        assert!(!same_secret("", "s3cret"));
    }
}
