//! checkout: claims the cart for the order attempt, prices it from the catalog, has
//! payment charge it, and records the receipt; every call goes through the api-gateway.
//!
//! One order, one charge: the cart's lines move to an order record in one step (cart's
//! `/orders/<attempt>/claim`) before anything is charged, so a concurrent or repeated
//! checkout finds nothing left to pay. An `Idempotency-Key` names the attempt: its repeats
//! wait for the first and answer the same order, charging nothing. A failure before the
//! charge went through gives the lines back exactly (`restore`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::domain::{AttemptKey, Money, OrderId, SessionId, TransactionId};
use crate::http::client::{call_json, upstream_failure, Http, Repeat, Reply};
use crate::http::context::RoleContext;
use crate::http::proxy::IDEMPOTENCY_KEY;
use crate::http::{body, ApiError};

pub struct State {
    /// Base URL of the api-gateway, without a trailing slash.
    pub api_gateway: String,
    /// How long a repeat of an attempt waits for the first request to finish, before
    /// answering 409 (kept inside the callers' own time limit).
    pub pending_wait: Duration,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/process", web::post().to(process))
        .route("/initiate", web::post().to(initiate));
}

/// Opening the checkout page: nothing to do but be seen in logs and traces.
async fn initiate() -> HttpResponse {
    HttpResponse::Ok().json(json!({"message": "success"}))
}

#[derive(Deserialize)]
struct CheckoutRequest {
    session_id: String,
    shipping: Shipping,
    billing: Billing,
    /// What the page showed; the amount charged is computed here from the catalog.
    #[serde(default)]
    #[allow(dead_code)]
    amount: Option<Value>,
}

#[derive(Deserialize)]
struct Shipping {
    address: Address,
}

#[derive(Deserialize)]
struct Billing {
    /// Required by the contract; nothing here checks it against the card.
    #[allow(dead_code)]
    address: Address,
    card: Card,
}

/// A postal address: a free-form string or an object of its parts.
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum Address {
    Text(String),
    Parts(Map<String, Value>),
}

/// The card as entered; `number` is required, the rest passes on to payment.
#[derive(Deserialize, Serialize)]
struct Card {
    number: String,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// The catalog fields checkout needs.
#[derive(Deserialize)]
struct CatalogEntry {
    id: String,
    name: String,
    price: f64,
}

#[derive(Debug, Serialize)]
struct Item {
    id: String,
    name: String,
    quantity: u16,
    price: Money,
    subtotal: Money,
}

/// A cart's lines: product id to quantity.
type Lines = BTreeMap<String, u16>;

/// How often a repeat of an attempt looks again whether the first has finished.
const PENDING_POLL: Duration = Duration::from_millis(100);

/// The calls of one checkout attempt, all through the api-gateway.
struct Calls<'a> {
    http: &'a Http,
    base: &'a str,
    /// The `session_id` as the shopper sent it (signed), and the attempt.
    session: &'a str,
    attempt: &'a AttemptKey,
}

/// What claiming the cart gave this request.
enum Claimed {
    /// The lines to charge, as order `order_id`.
    Lines { order_id: OrderId, lines: Lines },
    /// The attempt was paid already: its receipt.
    Paid(String),
}

#[derive(Deserialize)]
struct ClaimReply {
    data: ClaimData,
}

#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum ClaimData {
    Claimed { order_id: String, lines: Lines },
    Pending,
    Paid { receipt: Value },
}

impl Calls<'_> {
    async fn call(
        &self,
        (method, path): (Method, &str),
        what: &'static str,
        body: &impl Serialize,
        repeat: Repeat,
    ) -> Result<Reply, ApiError> {
        let url = format!("{}/api/v1/{path}", self.base);
        let reply = call_json(self.http, method, &url, ("api-gateway", what), body, repeat).await?;
        if reply.status == StatusCode::OK {
            Ok(reply)
        } else {
            Err(upstream_failure(what, &reply))
        }
    }

    /// A call to the attempt's order record on cart (each is safe to repeat).
    async fn order(&self, action: &str, body: Value) -> Result<Reply, ApiError> {
        let path = format!("cart/orders/{}/{action}", self.attempt);
        self.call((Method::POST, &path), "cart", &body, Repeat::Safe)
            .await
    }

    /// Claims the cart; while another request of the attempt holds it, waits (up to
    /// `wait`) for that one's answer.
    async fn claim(&self, wait: Duration) -> Result<Claimed, ApiError> {
        let order_id = OrderId::random();
        let deadline = Instant::now() + wait;
        loop {
            let body = json!({"session_id": self.session, "order_id": order_id});
            let reply: ClaimReply = self.order("claim", body).await?.json("cart")?;
            match reply.data {
                ClaimData::Claimed { order_id, lines } => {
                    let order_id = OrderId::parse(&order_id).map_err(|_| {
                        ApiError::Upstream("cart answered with an invalid order_id".into())
                    })?;
                    return Ok(Claimed::Lines { order_id, lines });
                }
                ClaimData::Paid { receipt } => return Ok(Claimed::Paid(receipt.to_string())),
                ClaimData::Pending if Instant::now() < deadline => {
                    actix_web::rt::time::sleep(PENDING_POLL).await;
                }
                ClaimData::Pending => {
                    return Err(ApiError::Conflict(
                        "This order is still being processed: send it again in a moment".into(),
                    ))
                }
            }
        }
    }

    /// Gives the claimed lines back; a failure is logged (the lines stay in the order
    /// record, which a repeat of the attempt finds).
    async fn restore(&self) {
        let body = json!({"session_id": self.session});
        if let Err(e) = self.order("restore", body).await {
            log::error!(
                "msg=\"claimed cart lines not given back\" attempt={} error={}",
                self.attempt,
                crate::telemetry::logfmt::value(&e.to_string())
            );
        }
    }

    /// Records the receipt; a failure is logged, not reported: the order is paid.
    async fn complete(&self, receipt: &Value) {
        let body = json!({"session_id": self.session, "receipt": receipt});
        if let Err(e) = self.order("complete", body).await {
            log::error!(
                "msg=\"paid order not recorded: a repeat of its attempt may not find it\" attempt={} error={}",
                self.attempt,
                crate::telemetry::logfmt::value(&e.to_string())
            );
        }
    }
}

/// A checkout's answer: an order placed now, or the first answer of its attempt again.
enum Placed {
    New(String),
    Again(String),
}

async fn process(
    req: HttpRequest,
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    http: web::Data<Http>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let outcome = |o: &str| {
        ctx.metrics()
            .add("ecommerce_checkouts_total", &[("outcome", o)], 1.0)
    };
    let result = checkout(&state, &http, &req, payload).await;
    // "rejected": refused for the request's sake (bad input, declined card, empty cart);
    // "replayed": a repeat of a paid attempt, answered again; "error": the shop failed.
    let receipt = match result {
        Ok(Placed::New(receipt)) => {
            outcome("success");
            receipt
        }
        Ok(Placed::Again(receipt)) => {
            outcome("replayed");
            receipt
        }
        Err(e) => {
            outcome(if e.is_client_error() {
                "rejected"
            } else {
                "error"
            });
            return Err(e);
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(receipt))
}

/// The attempt a request names in its `Idempotency-Key`, if any.
fn attempt_key(req: &HttpRequest) -> Result<Option<AttemptKey>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    Ok(Some(AttemptKey::parse(text.trim())?))
}

async fn checkout(
    state: &State,
    http: &Http,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Placed, ApiError> {
    let order: CheckoutRequest = body::object(payload).await?;
    SessionId::parse(&order.session_id)?;
    // Without a key, every request is an attempt of its own.
    let attempt = attempt_key(req)?.unwrap_or_else(AttemptKey::random);
    let calls = Calls {
        http,
        base: &state.api_gateway,
        session: &order.session_id,
        attempt: &attempt,
    };
    let (order_id, lines) = match calls.claim(state.pending_wait).await? {
        Claimed::Paid(receipt) => return Ok(Placed::Again(receipt)),
        Claimed::Lines { order_id, lines } => (order_id, lines),
    };
    match charge(&calls, &order, &order_id, &lines).await {
        Ok(receipt) => {
            calls.complete(&receipt).await;
            Ok(Placed::New(receipt.to_string()))
        }
        Err(e) => {
            calls.restore().await;
            Err(e)
        }
    }
}

/// Prices the claimed lines from the catalog and has payment charge them: the receipt.
async fn charge(
    calls: &Calls<'_>,
    order: &CheckoutRequest,
    order_id: &OrderId,
    lines: &Lines,
) -> Result<Value, ApiError> {
    let ids: Vec<&String> = lines.keys().collect();
    let catalog: Vec<CatalogEntry> = calls
        .call(
            (Method::POST, "product/documents"),
            "product",
            &ids,
            Repeat::Safe,
        )
        .await?
        .json("product")?;
    let items = price_items(lines, &catalog)?;
    let amount: Money = items.iter().map(|i| i.subtotal).sum();

    let transaction_id = TransactionId::random();
    let charge = json!({
        "amount": amount,
        "card": order.billing.card,
        "transaction_id": transaction_id,
    });
    // Never repeated: a payment is not safe to send twice.
    calls
        .call(
            (Method::POST, "payment/process"),
            "payment",
            &charge,
            Repeat::Never,
        )
        .await?;
    Ok(json!({
        "message": "success",
        "order_id": order_id,
        "transaction_id": transaction_id,
        "amount": amount,
        "items": items,
        "shipping": order.shipping.address,
    }))
}

/// One item per cart line, priced from the catalog; a line whose product the catalog
/// does not have is a 409 naming it.
fn price_items(lines: &Lines, catalog: &[CatalogEntry]) -> Result<Vec<Item>, ApiError> {
    lines
        .iter()
        .map(|(id, &quantity)| {
            let entry = catalog
                .iter()
                .find(|p| &p.id == id)
                .ok_or_else(|| ApiError::Conflict(format!("Product {id} is not in the catalog")))?;
            let price = Money::from_positive_f64(entry.price)
                .map_err(|_| ApiError::Conflict(format!("Product {id} has no valid price")))?;
            Ok(Item {
                id: id.clone(),
                name: entry.name.clone(),
                quantity,
                price,
                subtotal: price * quantity,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, price: f64) -> CatalogEntry {
        CatalogEntry {
            id: id.into(),
            name: id.to_uppercase(),
            price,
        }
    }

    #[test]
    fn prices_lines_in_cents() {
        let lines = BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 1)]);
        let items = price_items(&lines, &[entry("a", 3.5), entry("b", 0.1)]).unwrap();
        let total: Money = items.iter().map(|i| i.subtotal).sum();
        assert_eq!(total.cents(), 1060);
    }

    #[test]
    fn unknown_products_are_a_conflict() {
        let lines = BTreeMap::from([("gone".to_string(), 1)]);
        let err = price_items(&lines, &[entry("a", 1.0)]).unwrap_err();
        assert!(matches!(err, ApiError::Conflict(ref m) if m.contains("gone")));
    }
}
