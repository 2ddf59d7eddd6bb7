//! The endpoints every role serves: `/healthz`, `/readyz`, `/metrics` and `/`.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::client;
use super::context::{Dependencies, Dependency, RoleContext};
use crate::role::Role;
use crate::stores::Health;

/// Adds the shared endpoints; the web-gateway keeps `/` for the shop's page.
pub fn configure(cfg: &mut web::ServiceConfig, role: Role) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
    if role != Role::WebGateway {
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
        "faults": ctx.faults.active(),
    }))
}

async fn metrics(ctx: web::Data<RoleContext>, deps: web::Data<Dependencies>) -> HttpResponse {
    let mut text = ctx.metrics.render();
    let stores: Vec<_> = deps
        .0
        .iter()
        .filter(|d| matches!(d, Dependency::CartData(_) | Dependency::SessionData(_)))
        .collect();
    if !stores.is_empty() {
        text.push_str("# HELP ecommerce_store_unreplicated_writes_total Writes acknowledged while the store's replica was down.\n");
        text.push_str("# TYPE ecommerce_store_unreplicated_writes_total counter\n");
        for d in stores {
            text.push_str(&format!(
                "ecommerce_store_unreplicated_writes_total{{service=\"{}\",store=\"{}\"}} {}\n",
                ctx.role,
                d.name(),
                d.unreplicated_writes()
            ));
        }
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
    http: web::Data<awc::Client>,
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
    http: &awc::Client,
) -> Result<Health, String> {
    match dependency {
        Dependency::CartData(_) if ctx.faults.cart_data_outage => {
            Err("unreachable (fault cart-data-outage)".into())
        }
        Dependency::CartData(store) => store.health().await.map_err(|e| e.to_string()),
        Dependency::SessionData(store) => store.health().await.map_err(|e| e.to_string()),
        Dependency::ProductData(store) => store.health().await.map_err(|e| e.to_string()),
        Dependency::ApiGateway(url) => client::healthy(http, url).await.map(|()| Health::Up),
    }
}
