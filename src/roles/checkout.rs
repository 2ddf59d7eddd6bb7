//! checkout: prices the cart from the catalog, has payment charge it, then empties it.
//! Every call goes through the api-gateway.

use std::collections::BTreeMap;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::domain::{Money, SessionId};
use crate::http::client::{call_json, upstream_failure, Reply};
use crate::http::context::RoleContext;
use crate::http::{body, ApiError};
use crate::roles::payment::random_id;

pub struct State {
    /// Base URL of the api-gateway, without a trailing slash.
    pub api_gateway: String,
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

struct Calls<'a> {
    http: &'a awc::Client,
    base: &'a str,
}

impl Calls<'_> {
    async fn call(
        &self,
        method: Method,
        path: &str,
        what: &'static str,
        body: &impl Serialize,
    ) -> Result<Reply, ApiError> {
        let url = format!("{}/api/v1/{path}", self.base);
        let reply = call_json(self.http, method, &url, ("api-gateway", what), body).await?;
        if reply.status == StatusCode::OK {
            Ok(reply)
        } else {
            Err(upstream_failure(what, &reply))
        }
    }
}

#[derive(Deserialize)]
struct CartReply {
    data: BTreeMap<String, u16>,
}

async fn process(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    http: web::Data<awc::Client>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let outcome = |o: &str| {
        ctx.metrics
            .add("ecommerce_checkouts_total", &[("outcome", o)], 1.0)
    };
    let result = checkout(&state, &http, payload).await;
    // "rejected": refused for the request's sake (bad input, declined card, empty cart);
    // "error": the shop failed.
    match &result {
        Ok(_) => outcome("success"),
        Err(e) if e.is_client_error() => outcome("rejected"),
        Err(_) => outcome("error"),
    }
    result
}

async fn checkout(
    state: &State,
    http: &awc::Client,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let order: CheckoutRequest = body::json(payload).await?;
    SessionId::parse(&order.session_id)?;
    let calls = Calls {
        http,
        base: &state.api_gateway,
    };
    let session = json!({"session_id": order.session_id});

    let cart: CartReply = calls
        .call(Method::POST, "cart", "cart", &session)
        .await?
        .json("cart")?;
    if cart.data.is_empty() {
        return Err(ApiError::Validation("Cart is empty".into()));
    }

    let ids: Vec<&String> = cart.data.keys().collect();
    let catalog: Vec<CatalogEntry> = calls
        .call(Method::POST, "product/documents", "product", &ids)
        .await?
        .json("product")?;
    let items = price_items(&cart.data, &catalog)?;
    let amount: Money = items.iter().map(|i| i.subtotal).sum();

    let transaction_id = random_id();
    let charge = json!({
        "amount": amount,
        "card": order.billing.card,
        "transaction_id": transaction_id,
    });
    calls
        .call(Method::POST, "payment/process", "payment", &charge)
        .await?;

    // Paid: the order stands even if emptying the cart fails, so that is logged, not
    // reported as a failed checkout the shopper might pay for twice.
    if let Err(e) = calls.call(Method::DELETE, "cart", "cart", &session).await {
        log::error!(
            "msg=\"cart not emptied after payment\" transaction_id={transaction_id} error=\"{e}\""
        );
    }
    Ok(HttpResponse::Ok().json(json!({
        "message": "success",
        "order_id": random_id(),
        "transaction_id": transaction_id,
        "amount": amount,
        "items": items,
        "shipping": order.shipping.address,
    })))
}

/// One item per cart line, priced from the catalog; a line whose product the catalog
/// does not have is a 409 naming it.
fn price_items(
    lines: &BTreeMap<String, u16>,
    catalog: &[CatalogEntry],
) -> Result<Vec<Item>, ApiError> {
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
