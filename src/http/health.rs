//! The endpoints every role serves: `/healthz`, `/readyz`, `/metrics` and `/`.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::client;
use super::context::{Dependencies, Dependency, RoleContext};
use crate::role::Role;
use crate::stores::Health;
use crate::stores::PoolUsage;
use crate::telemetry::metrics::{Labels, Scrape, CONTENT_TYPE};
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

/// `["name", "value"]` label pairs.
fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

async fn metrics(
    ctx: web::Data<RoleContext>,
    deps: web::Data<Dependencies>,
    http: web::Data<client::Http>,
) -> HttpResponse {
    let health = dependency_health(&deps, &ctx, &http).await;
    let faults = ctx.faults.get().active();
    let text = ctx.metrics().render(|scrape| {
        scrape.gauge(
            "ecommerce_dependency_up",
            "Whether each store and service this role uses answers (1) or not (0).",
            health.iter().map(|(dependency, outcome)| {
                (labels([("dependency", dependency.name())]), f64::from(u8::from(outcome.is_ok())))
            }),
        );
        scrape.gauge(
            "ecommerce_fault_active",
            "Fault scenarios switched on (1 per active fault).",
            faults.iter().map(|f| (labels([("fault", f)]), 1.0)),
        );
        scrape.gauge(
            "ecommerce_fault_memory_leaked_bytes",
            "Memory the memory-leak fault holds in this process.",
            [(Vec::new(), crate::faults::leaked_bytes() as f64)],
        );
        store_metrics(scrape, &deps);
        if ctx.fault_control.is_shared() {
            scrape.gauge(
                "ecommerce_fault_state_up",
                "Whether the last read of the shop's fault state worked (1) or not (0: the last known faults stay).",
                [(Vec::new(), f64::from(u8::from(ctx.fault_control.reachable())))],
            );
        }
        let exports = [
            (
                "ecommerce_telemetry_spans_total",
                "Spans of this process by what became of them: exported, dropped (queue full) or failed (the endpoint refused them).",
                ctx.tracer().stats(),
            ),
            (
                "ecommerce_telemetry_log_records_total",
                "Log records of this process exported over OTLP, by what became of them: exported, dropped (queue full) or failed (the endpoint refused them).",
                ctx.tracer().log_stats(),
            ),
        ];
        for (name, help, stats) in exports {
            let Some(stats) = stats else { continue };
            let outcomes = [
                ("exported", stats.exported()),
                ("dropped", stats.dropped()),
                ("failed", stats.failed()),
            ];
            scrape.counter(
                name,
                help,
                outcomes
                    .into_iter()
                    .map(|(outcome, n)| (labels([("outcome", outcome)]), n as f64)),
            );
        }
    });
    HttpResponse::Ok()
        .content_type(ContentType(CONTENT_TYPE.parse().expect("a media type")))
        .body(text)
}

/// The stores' connection pools and unreplicated writes.
fn store_metrics(scrape: &mut Scrape, deps: &Dependencies) {
    let stores: Vec<&Dependency> = deps.0.iter().filter(|d| d.is_store()).collect();
    if stores.is_empty() {
        return;
    }
    let pools: Vec<(Labels, PoolUsage)> = stores
        .iter()
        .flat_map(|d| {
            d.pool_usage()
                .into_iter()
                .map(|(server, usage)| (labels([("store", d.name()), ("server", server)]), usage))
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
        scrape.gauge(name, help, rows);
    }
    scrape.counter(
        "ecommerce_store_unreplicated_writes_total",
        "Writes acknowledged while the store's replica was down.",
        stores.iter().filter(|d| d.has_replicas()).map(|d| {
            (
                labels([("store", d.name())]),
                d.unreplicated_writes() as f64,
            )
        }),
    );
}

/// Every dependency checked, all at once (a scrape or probe waits for the slowest).
async fn dependency_health<'d>(
    deps: &'d Dependencies,
    ctx: &RoleContext,
    http: &client::Http,
) -> Vec<(&'d Dependency, Result<Health, String>)> {
    let checks = deps
        .0
        .iter()
        .map(|d| async move { (d, check(d, ctx, http).await) });
    futures_util::future::join_all(checks).await
}

/// Whether this process should get traffic: 200 from start-up until it drains, 503 while
/// it drains. Dependencies are listed, never decide: a store or upstream that is down
/// shows as this role's own 5xx answers with a reason, not as the role leaving its
/// Service (readiness that follows shared dependencies makes failures cascade).
/// `{"ready": bool, "draining": bool, "checks": {"cart-data": "up", ...}}`.
async fn readyz(
    ctx: web::Data<RoleContext>,
    deps: web::Data<Dependencies>,
    http: web::Data<client::Http>,
) -> HttpResponse {
    let mut checks = Map::new();
    for (dependency, outcome) in dependency_health(&deps, &ctx, &http).await {
        let text = match outcome {
            Ok(Health::Up) => "up".to_string(),
            Ok(Health::Degraded(why)) => format!("degraded: {why}"),
            Err(why) => format!("down: {why}"),
        };
        checks.insert(dependency.name().to_string(), Value::String(text));
    }
    let draining = ctx.lifecycle.is_draining();
    let body = json!({"ready": !draining, "draining": draining, "checks": checks});
    if draining {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
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
        Dependency::Service(_, url) => client::healthy(http, url).await.map(|()| Health::Up),
    }
}
