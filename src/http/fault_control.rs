//! The whole shop's faults from one place, on the web-gateway: `GET|PUT
//! /api/v1/admin/faults`, a game-day scenario (`GET|PUT|DELETE /api/v1/admin/scenario`),
//! the synthetic traffic level (`PUT /api/v1/admin/traffic`, and `GET /api/v1/traffic`
//! for the load generator, without a token). Every change is written to the fault state
//! every process follows (`--fault-state`), or, without one, applied to this process.
//! No route answers without a configured admin token; every change is logged with the
//! client's address, counted, and marked on the request's span.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::admin::{authorize, client_of};
use super::context::RoleContext;
use super::{body, ApiError};
use crate::faults::catalog::CATALOG;
use crate::faults::shared::{
    self, check_faults, now_ms, parse_duration, Scenario, State, Step, TRAFFIC_LEVELS,
};
use crate::telemetry::span;

/// The routes, relative to the web-gateway's `/api/v1` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/faults", web::get().to(show))
        .route("/admin/faults", web::put().to(set_faults))
        .route("/admin/scenario", web::get().to(show_scenario))
        .route("/admin/scenario", web::put().to(start_scenario))
        .route("/admin/scenario", web::delete().to(abort_scenario))
        .route("/admin/traffic", web::put().to(set_traffic))
        .route("/traffic", web::get().to(traffic));
}

fn admin(req: &HttpRequest, ctx: &RoleContext) -> Result<(), ApiError> {
    authorize(req, ctx, || {
        ApiError::NotFound("No admin endpoints: the shop has no admin token (--admin-token)".into())
    })
}

fn unavailable(e: shared::StateError) -> ApiError {
    ApiError::Unavailable(crate::telemetry::logfmt::chain(&e))
}

/// The faults live now, the processes and what each applied, the catalog, the traffic.
async fn faults_body(ctx: &RoleContext) -> Result<Value, ApiError> {
    let control = &ctx.fault_control;
    let (version, state) = control.read().await.map_err(unavailable)?;
    let processes = control.processes().await.map_err(unavailable)?;
    let now = now_ms();
    let scenario_running = state
        .scenario
        .as_ref()
        .is_some_and(|s| s.state(now) == "running");
    Ok(json!({
        "faults": state.live(now),
        "until": if scenario_running { None } else { state.until_ms.filter(|u| *u > now) },
        "version": version,
        "shared": control.is_shared(),
        "processes": processes,
        "catalog": CATALOG,
        "traffic": {"level": state.traffic_level},
    }))
}

async fn show(req: HttpRequest, ctx: web::Data<RoleContext>) -> Result<HttpResponse, ApiError> {
    admin(&req, &ctx)?;
    Ok(HttpResponse::Ok().json(faults_body(&ctx).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFaults {
    /// The whole list: what it names is on, the rest off.
    faults: Vec<String>,
    /// When given, the list switches itself off after it.
    #[serde(default, rename = "for")]
    for_: Option<String>,
}

/// Logs, counts and marks on the span a change an admin made.
fn record_change(req: &HttpRequest, ctx: &RoleContext, kind: &'static str, what: &str) {
    log::warn!(
        "msg=\"fault state changed\" change={kind} client={} what={:?}",
        client_of(req),
        what
    );
    ctx.metrics()
        .add("ecommerce_fault_changes_total", &[("change", kind)], 1.0);
    span::mark_change(kind);
}

async fn set_faults(
    req: HttpRequest,
    ctx: web::Data<RoleContext>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&req, &ctx)?;
    let request: SetFaults = body::json(payload).await?;
    let faults: Vec<String> = request
        .faults
        .iter()
        .map(|f| f.trim().to_string())
        .collect();
    check_faults(&faults).map_err(ApiError::Validation)?;
    let until = request
        .for_
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| ApiError::Validation(format!("for: {e}")))?
        .map(|d| now_ms() + d.as_millis() as u64);
    ctx.fault_control
        .change(|state| {
            state.faults = faults.clone();
            state.until_ms = until;
            // A list set by hand ends a game day.
            if let Some(scenario) = state.scenario.as_mut() {
                scenario.aborted_ms.get_or_insert(now_ms());
            }
        })
        .await
        .map_err(unavailable)?;
    let what = match &request.for_ {
        Some(d) => format!("{} for {d}", faults.join(",")),
        None => faults.join(","),
    };
    record_change(&req, &ctx, "faults", &what);
    Ok(HttpResponse::Ok().json(faults_body(&ctx).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioRequest {
    steps: Vec<StepRequest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepRequest {
    at: String,
    #[serde(rename = "for")]
    for_: String,
    faults: Vec<String>,
}

/// The most steps one scenario may have.
const MAX_STEPS: usize = 50;

fn steps_of(request: ScenarioRequest) -> Result<Vec<Step>, ApiError> {
    if request.steps.is_empty() || request.steps.len() > MAX_STEPS {
        return Err(ApiError::Validation(format!(
            "a scenario has 1 to {MAX_STEPS} steps"
        )));
    }
    request
        .steps
        .into_iter()
        .enumerate()
        .map(|(i, step)| {
            let bad = |what: String| ApiError::Validation(format!("step {}: {what}", i + 1));
            let at = parse_duration(&step.at).map_err(|e| bad(format!("at: {e}")))?;
            let for_ = parse_duration(&step.for_).map_err(|e| bad(format!("for: {e}")))?;
            if for_.is_zero() {
                return Err(bad("for: a step lasts more than 0s".into()));
            }
            let faults: Vec<String> = step.faults.iter().map(|f| f.trim().to_string()).collect();
            check_faults(&faults).map_err(bad)?;
            Ok(Step {
                at_ms: at.as_millis() as u64,
                for_ms: for_.as_millis() as u64,
                faults,
            })
        })
        .collect()
}

/// The scenario's progress: `{"state", "started", "ends", "steps": [...]}`.
fn scenario_body(state: &State) -> Value {
    let now = now_ms();
    let Some(scenario) = &state.scenario else {
        return json!({"state": "none", "started": null, "ends": null, "steps": []});
    };
    let steps: Vec<Value> = scenario
        .steps
        .iter()
        .map(|step| {
            let (start, end) = scenario.window(step);
            let progress = match scenario.aborted_ms {
                Some(at) if at < end => "done",
                _ if now < start => "pending",
                _ if now < end => "active",
                _ => "done",
            };
            json!({
                "at": format_ms(step.at_ms),
                "for": format_ms(step.for_ms),
                "faults": step.faults,
                "start": start,
                "end": end,
                "state": progress,
            })
        })
        .collect();
    json!({
        "state": scenario.state(now),
        "started": scenario.started_ms,
        "ends": scenario.aborted_ms.unwrap_or_else(|| scenario.ends_ms()),
        "steps": steps,
    })
}

/// `90000` → `1m30s`.
fn format_ms(ms: u64) -> String {
    let (h, m, s, rest) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut text = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s"), (rest, "ms")] {
        if n > 0 {
            text.push_str(&format!("{n}{unit}"));
        }
    }
    if text.is_empty() {
        text.push_str("0s");
    }
    text
}

async fn show_scenario(
    req: HttpRequest,
    ctx: web::Data<RoleContext>,
) -> Result<HttpResponse, ApiError> {
    admin(&req, &ctx)?;
    let (_, state) = ctx.fault_control.read().await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(scenario_body(&state)))
}

async fn start_scenario(
    req: HttpRequest,
    ctx: web::Data<RoleContext>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&req, &ctx)?;
    let steps = steps_of(body::json(payload).await?)?;
    let summary = steps
        .iter()
        .map(|s| {
            format!(
                "at {} {} for {}",
                format_ms(s.at_ms),
                s.faults.join(","),
                format_ms(s.for_ms)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let (_, state) = ctx
        .fault_control
        .change(|state| {
            // The faults outside the scenario are off while it runs and after it.
            state.faults.clear();
            state.until_ms = None;
            state.scenario = Some(Scenario {
                started_ms: now_ms(),
                steps,
                aborted_ms: None,
            });
        })
        .await
        .map_err(unavailable)?;
    record_change(&req, &ctx, "scenario", &summary);
    Ok(HttpResponse::Ok().json(scenario_body(&state)))
}

async fn abort_scenario(
    req: HttpRequest,
    ctx: web::Data<RoleContext>,
) -> Result<HttpResponse, ApiError> {
    admin(&req, &ctx)?;
    let (_, state) = ctx
        .fault_control
        .change(|state| {
            if let Some(scenario) = state.scenario.as_mut() {
                scenario.aborted_ms.get_or_insert(now_ms());
            }
            state.faults.clear();
            state.until_ms = None;
        })
        .await
        .map_err(unavailable)?;
    record_change(&req, &ctx, "scenario", "aborted");
    Ok(HttpResponse::Ok().json(scenario_body(&state)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Traffic {
    level: f64,
}

async fn set_traffic(
    req: HttpRequest,
    ctx: web::Data<RoleContext>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&req, &ctx)?;
    let Traffic { level } = body::json(payload).await?;
    if !TRAFFIC_LEVELS.contains(&level) {
        return Err(ApiError::Validation(format!(
            "level: {level} is not from 0 to 10 (1 is the normal load)"
        )));
    }
    ctx.fault_control
        .change(|state| state.traffic_level = level)
        .await
        .map_err(unavailable)?;
    record_change(&req, &ctx, "traffic", &level.to_string());
    Ok(HttpResponse::Ok().json(json!({"level": level})))
}

/// The traffic level the synthetics should play, as this process last read it: no
/// token (k6 asks once per iteration) and no store call.
async fn traffic(ctx: web::Data<RoleContext>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"level": ctx.fault_control.traffic_level()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_shown_as_they_are_written() {
        assert_eq!(format_ms(90_000), "1m30s");
        assert_eq!(format_ms(0), "0s");
        assert_eq!(format_ms(3_600_250), "1h250ms");
    }

    #[test]
    fn scenario_steps_are_checked_one_by_one() {
        let request = |steps: Value| -> ScenarioRequest {
            serde_json::from_value(json!({ "steps": steps })).unwrap()
        };
        let ok = steps_of(request(json!([
            {"at": "0s", "for": "2m", "faults": ["payment-latency=800"]},
            {"at": "1m", "for": "30s", "faults": ["cart-data-outage"]},
        ])))
        .unwrap();
        assert_eq!(ok[1].at_ms, 60_000);
        assert_eq!(ok[1].for_ms, 30_000);
        for (steps, reason) in [
            (json!([]), "1 to 50 steps"),
            (
                json!([{"at": "0s", "for": "0s", "faults": []}]),
                "step 1: for",
            ),
            (
                json!([{"at": "soon", "for": "1m", "faults": []}]),
                "step 1: at",
            ),
            (
                json!([{"at": "0s", "for": "1m", "faults": ["meteor"]}]),
                "step 1: unknown fault",
            ),
        ] {
            let Err(ApiError::Validation(why)) = steps_of(request(steps)) else {
                panic!("accepted");
            };
            assert!(why.contains(reason), "{why}");
        }
    }
}
