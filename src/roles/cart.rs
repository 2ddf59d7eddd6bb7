//! cart: one cart per session in cart-data, lines of product id and quantity; and the
//! order records checkout claims a cart into (internal: the web-gateway does not forward
//! `/orders/...`).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::domain::{AttemptKey, OrderId, ProductId, Quantity, SessionId};
use crate::http::context::RoleContext;
use crate::http::{body, ApiError};
use crate::stores::{Cart, CartStore, Claim, Restore};
use crate::telemetry::span;

pub struct State {
    pub carts: CartStore,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::post().to(get_cart))
        .route("/", web::delete().to(clear_cart))
        .route("/{product_id}/{quantity}", web::put().to(set_line))
        .route("/{product_id}", web::delete().to(remove_line))
        .route("/{product_id}", web::get().to(get_line))
        .route("/orders/{attempt}/claim", web::post().to(claim_order))
        .route("/orders/{attempt}/restore", web::post().to(restore_order))
        .route("/orders/{attempt}/complete", web::post().to(complete_order));
}

/// Every cart call names its session: `{"session_id": "<sid>.<sig>" | "<sid>"}`.
#[derive(Deserialize)]
struct SessionBody {
    session_id: String,
}

async fn session(payload: web::Payload) -> Result<SessionId, ApiError> {
    let body: SessionBody = body::object(payload).await?;
    Ok(SessionId::parse(&body.session_id)?)
}

/// The store, and the time the cart-data-latency fault adds to each of its operations;
/// unless the cart-data-outage fault makes it look unreachable.
fn store<'a>(state: &'a State, ctx: &RoleContext) -> Result<(&'a CartStore, Duration), ApiError> {
    let faults = ctx.faults.get();
    if faults.cart_data_outage {
        span::mark_fault("cart-data-outage");
        return Err(ApiError::Unavailable(
            "cart-data is unavailable (fault cart-data-outage)".into(),
        ));
    }
    let extra = faults.cart_data_delay();
    if !extra.is_zero() {
        span::mark_fault("cart-data-latency");
    }
    Ok((&state.carts, extra))
}

fn success(cart: &Cart) -> HttpResponse {
    HttpResponse::Ok().json(json!({"message": "success", "data": cart}))
}

fn counted(ctx: &RoleContext, operation: &str) {
    ctx.metrics().add(
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
    let (carts, extra) = store(&state, &ctx)?;
    let cart = carts.lines(&sid, extra).await?;
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
    let (carts, extra) = store(&state, &ctx)?;
    let cart = carts.set(&sid, &id, quantity, extra).await?;
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
    let (carts, extra) = store(&state, &ctx)?;
    let cart = carts.remove(&sid, &id, extra).await?;
    counted(&ctx, "remove");
    Ok(success(&cart))
}

async fn clear_cart(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let sid = session(payload).await?;
    let (carts, extra) = store(&state, &ctx)?;
    carts.clear(&sid, extra).await?;
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
    let (carts, extra) = store(&state, &ctx)?;
    let cart = carts.lines(&sid, extra).await?;
    let quantity = cart.get(id.as_str()).copied().unwrap_or(0);
    Ok(HttpResponse::Ok().json(json!({
        "message": "success",
        "data": {"product_id": id.as_str(), "quantity": quantity},
    })))
}

/// The body of an order call: the session, and the call's own fields.
#[derive(Deserialize)]
struct OrderBody<T> {
    session_id: String,
    #[serde(flatten)]
    fields: T,
}

/// The attempt an order route names, and its body with the session parsed.
async fn order_call<T: DeserializeOwned>(
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<(AttemptKey, SessionId, T), ApiError> {
    let attempt = AttemptKey::parse(&path.into_inner())?;
    let body: OrderBody<T> = body::object(payload).await?;
    Ok((attempt, SessionId::parse(&body.session_id)?, body.fields))
}

#[derive(Deserialize)]
struct ClaimFields {
    /// The number the order gets if this call claims the cart.
    order_id: String,
}

/// `POST /orders/<attempt>/claim`: moves the cart's lines to the attempt's order record.
/// `data.status` is `claimed` (with `order_id` and `lines`: this call's to charge),
/// `pending` (another request of the attempt holds them) or `paid` (with `receipt`, the
/// attempt's first answer); an empty cart is a 400.
async fn claim_order(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (attempt, sid, fields) = order_call::<ClaimFields>(path, payload).await?;
    let order_id = OrderId::parse(&fields.order_id)?;
    let (carts, extra) = store(&state, &ctx)?;
    let data = match carts.claim(&sid, &attempt, &order_id, extra).await? {
        Claim::Empty => return Err(ApiError::Validation("Cart is empty".into())),
        Claim::Claimed { order_id, lines } => {
            counted(&ctx, "claim");
            json!({"status": "claimed", "order_id": order_id, "lines": lines})
        }
        Claim::Pending { order_id } => json!({"status": "pending", "order_id": order_id}),
        Claim::Paid { receipt } => {
            let receipt: Value =
                serde_json::from_str(&receipt).map_err(|cause| ApiError::Corrupt {
                    what: "a stored receipt is not JSON",
                    cause,
                })?;
            json!({"status": "paid", "receipt": receipt})
        }
    };
    Ok(HttpResponse::Ok().json(json!({"message": "success", "data": data})))
}

/// `POST /orders/<attempt>/restore`: gives an unpaid claim's lines back to the cart;
/// `data.status` is `restored` or `nothing` (no such claim); a paid order is a 409.
async fn restore_order(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (attempt, sid, _) = order_call::<Map<String, Value>>(path, payload).await?;
    let (carts, extra) = store(&state, &ctx)?;
    let status = match carts.restore(&sid, &attempt, extra).await? {
        Restore::Restored => {
            counted(&ctx, "restore");
            "restored"
        }
        Restore::Nothing => "nothing",
        Restore::Paid => {
            return Err(ApiError::Conflict(
                "The order is paid: its lines stay with it".into(),
            ))
        }
    };
    Ok(HttpResponse::Ok().json(json!({"message": "success", "data": {"status": status}})))
}

#[derive(Deserialize)]
struct CompleteFields {
    /// The answer every repeat of the attempt gets.
    receipt: Value,
}

/// `POST /orders/<attempt>/complete`: records the attempt as paid, with its receipt.
async fn complete_order(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (attempt, sid, fields) = order_call::<CompleteFields>(path, payload).await?;
    let receipt = fields.receipt.to_string();
    let (carts, extra) = store(&state, &ctx)?;
    carts.complete(&sid, &attempt, &receipt, extra).await?;
    Ok(HttpResponse::Ok().json(json!({"message": "success", "data": {"status": "paid"}})))
}
