//! cart: one cart per session in cart-data, lines of product id and quantity.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{ProductId, Quantity, SessionId};
use crate::http::context::RoleContext;
use crate::http::{body, ApiError};
use crate::stores::{Cart, CartStore};
use crate::telemetry::span;

pub struct State {
    pub carts: CartStore,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::post().to(get_cart))
        .route("/", web::delete().to(clear_cart))
        .route("/{product_id}/{quantity}", web::put().to(set_line))
        .route("/{product_id}", web::delete().to(remove_line))
        .route("/{product_id}", web::get().to(get_line));
}

/// Every cart call names its session: `{"session_id": "<sid>.<sig>" | "<sid>"}`.
#[derive(Deserialize)]
struct SessionBody {
    session_id: String,
}

async fn session(payload: web::Payload) -> Result<SessionId, ApiError> {
    let body: SessionBody = body::json(payload).await?;
    Ok(SessionId::parse(&body.session_id)?)
}

/// The store, unless the cart-data-outage fault makes it look unreachable.
fn store<'a>(state: &'a State, ctx: &RoleContext) -> Result<&'a CartStore, ApiError> {
    if ctx.faults.get().cart_data_outage {
        span::mark_fault("cart-data-outage");
        return Err(ApiError::Unavailable(
            "cart-data is unavailable (fault cart-data-outage)".into(),
        ));
    }
    Ok(&state.carts)
}

fn success(cart: &Cart) -> HttpResponse {
    HttpResponse::Ok().json(json!({"message": "success", "data": cart}))
}

fn counted(ctx: &RoleContext, operation: &str) {
    ctx.metrics.add(
        "ecommerce_cart_updates_total",
        &[("operation", operation)],
        1.0,
    );
}

async fn get_cart(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let sid = session(payload).await?;
    let cart = store(&state, &ctx)?.lines(&sid).await?;
    Ok(success(&cart))
}

async fn set_line(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (id, quantity) = path.into_inner();
    let id = ProductId::parse(&id)?;
    let quantity = Quantity::parse(&quantity)?;
    let sid = session(payload).await?;
    let cart = store(&state, &ctx)?.set(&sid, &id, quantity).await?;
    counted(&ctx, "set");
    Ok(success(&cart))
}

async fn remove_line(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = ProductId::parse(&path.into_inner())?;
    let sid = session(payload).await?;
    let cart = store(&state, &ctx)?.remove(&sid, &id).await?;
    counted(&ctx, "remove");
    Ok(success(&cart))
}

async fn clear_cart(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let sid = session(payload).await?;
    store(&state, &ctx)?.clear(&sid).await?;
    counted(&ctx, "clear");
    Ok(success(&Cart::new()))
}

/// `{"message": "success", "data": {"product_id": ..., "quantity": n}}` (0 when absent).
async fn get_line(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = ProductId::parse(&path.into_inner())?;
    let sid = session(payload).await?;
    let cart = store(&state, &ctx)?.lines(&sid).await?;
    let quantity = cart.get(id.as_str()).copied().unwrap_or(0);
    Ok(HttpResponse::Ok().json(json!({
        "message": "success",
        "data": {"product_id": id.as_str(), "quantity": quantity},
    })))
}
