//! The endpoints every role serves: `/healthz`, `/readyz`, `/metrics` and `/`.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use std::sync::atomic::Ordering;

use super::client;
use super::context::{Dependencies, Dependency, RoleContext};
use crate::role::Role;
use crate::stores::Health;
use crate::stores::PoolUsage;
use crate::telemetry::metrics::{label_text, write_family};
use crate::telemetry::{logfmt, span};

/// Which of the operational endpoints a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoints {
    /// The role's only listener: every operational endpoint beside the role's own routes.
    All,
    /// The role's main listener when an admin listener exists: `/healthz` only.
    HealthOnly,
    /// The admin listener: the operational endpoints and nothing else.
    Admin,
}

/// Adds the operational endpoints `which` names; a main listener also gets `/` (the
/// web-gateway keeps `/` for the shop's page).
pub fn configure(cfg: &mut web::ServiceConfig, role: Role, which: Endpoints) {
    cfg.route("/healthz", web::get().to(healthz));
    if which != Endpoints::HealthOnly {
        cfg.route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            .configure(super::admin::configure);
    }
    if which != Endpoints::Admin && role != Role::WebGateway {
        cfg.route("/", web::get().to(info));
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"healthy": true}))
}

/// `{"service": <role>, "version": ..., "faults": [...]}`; never secrets.
pub async fn info(ctx: web::Data<RoleContext>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "service": ctx.role.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "faults": ctx.faults.get().active(),
    }))
}

/// A pool usage gauge: name, help, and which figure it shows.
type PoolGauge = (&'static str, &'static str, fn(&PoolUsage) -> usize);

async fn metrics(ctx: web::Data<RoleContext>, deps: web::Data<Dependencies>) -> HttpResponse {
    let service = ctx.role.as_str();
    let mut text = ctx.metrics().render();
    let faults = ctx.faults.get().active();
    write_family(
        &mut text,
        ("ecommerce_fault_active", "gauge"),
        "Fault scenarios switched on (1 per active fault).",
        service,
        faults.iter().map(|f| (label_text(&[("fault", f)]), 1.0)),
    );
    write_family(
        &mut text,
        ("ecommerce_fault_memory_leaked_bytes", "gauge"),
        "Memory the memory-leak fault holds in this process.",
        service,
        [(String::new(), crate::faults::leaked_bytes() as f64)],
    );
    let stores: Vec<&Dependency> = deps.0.iter().filter(|d| d.is_store()).collect();
    if !stores.is_empty() {
        let pools: Vec<(String, PoolUsage)> = stores
            .iter()
            .flat_map(|d| {
                d.pool_usage().into_iter().map(|(server, usage)| {
                    (
                        label_text(&[("store", d.name()), ("server", server)]),
                        usage,
                    )
                })
            })
            .collect();
        let gauges: [PoolGauge; 4] = [
            (
                "ecommerce_store_pool_connections",
                "Connections open, all workers' pools together.",
                |u| u.open,
            ),
            (
                "ecommerce_store_pool_connections_in_use",
                "Connections lent out to requests.",
                |u| u.in_use,
            ),
            (
                "ecommerce_store_pool_connections_max",
                "The most connections the pools may open.",
                |u| u.max,
            ),
            (
                "ecommerce_store_pool_waiting",
                "Requests waiting for a connection.",
                |u| u.waiting,
            ),
        ];
        for (name, help, value) in gauges {
            let rows = pools
                .iter()
                .map(|(labels, u)| (labels.clone(), value(u) as f64));
            write_family(&mut text, (name, "gauge"), help, service, rows);
        }
        write_family(
            &mut text,
            ("ecommerce_store_unreplicated_writes_total", "counter"),
            "Writes acknowledged while the store's replica was down.",
            service,
            stores.iter().filter(|d| d.has_replicas()).map(|d| {
                (
                    label_text(&[("store", d.name())]),
                    d.unreplicated_writes() as f64,
                )
            }),
        );
    }
    if let Some(stats) = ctx.tracer().stats() {
        let spans = [
            ("exported", stats.exported.load(Ordering::Relaxed)),
            ("dropped", stats.dropped.load(Ordering::Relaxed)),
            ("failed", stats.failed.load(Ordering::Relaxed)),
        ];
        write_family(
            &mut text,
            ("ecommerce_telemetry_spans_total", "counter"),
            "Spans of this process by what became of them: exported, dropped (queue full) or failed (the endpoint refused them).",
            service,
            spans
                .into_iter()
                .map(|(outcome, n)| (label_text(&[("outcome", outcome)]), n as f64)),
        );
    }
    HttpResponse::Ok()
        .content_type(ContentType(
            "text/plain; version=0.0.4; charset=utf-8".parse().unwrap(),
        ))
        .body(text)
}

/// 200 when every dependency answers (degraded ones included), else 503 naming the
/// failed ones: `{"ready": bool, "checks": {"cart-data": "up", ...}}`.
async fn readyz(
    ctx: web::Data<RoleContext>,
    deps: web::Data<Dependencies>,
    http: web::Data<client::Http>,
) -> HttpResponse {
    let mut checks = Map::new();
    let mut ready = true;
    for dependency in &deps.0 {
        let outcome = check(dependency, &ctx, &http).await;
        let text = match outcome {
            Ok(Health::Up) => "up".to_string(),
            Ok(Health::Degraded(why)) => format!("degraded: {why}"),
            Err(why) => {
                ready = false;
                format!("down: {why}")
            }
        };
        checks.insert(dependency.name().to_string(), Value::String(text));
    }
    let body = json!({"ready": ready, "checks": checks});
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn check(
    dependency: &Dependency,
    ctx: &RoleContext,
    http: &client::Http,
) -> Result<Health, String> {
    match dependency {
        Dependency::CartData(_) if ctx.faults.get().cart_data_outage => {
            span::mark_fault("cart-data-outage");
            Err("unreachable (fault cart-data-outage)".into())
        }
        Dependency::CartData(store) => store.health().await.map_err(|e| logfmt::chain(&e)),
        Dependency::SessionData(store) => store.health().await.map_err(|e| logfmt::chain(&e)),
        Dependency::ProductData(store) => store.health().await.map_err(|e| logfmt::chain(&e)),
        Dependency::ApiGateway(url) => client::healthy(http, url).await.map(|()| Health::Up),
    }
}
