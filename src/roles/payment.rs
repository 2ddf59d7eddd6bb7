//! payment: validates a card and an amount, then takes a while to "charge" it.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::DelayRange;
use crate::domain::{CardNumber, Money, TransactionId};
use crate::http::context::RoleContext;
use crate::http::{body, ApiError};
use crate::telemetry::span;

pub struct State {
    pub delay: DelayRange,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/process", web::post().to(process));
}

#[derive(Deserialize)]
struct PaymentRequest {
    amount: Value,
    card: Card,
    #[serde(default)]
    transaction_id: Option<String>,
}

#[derive(Deserialize)]
struct Card {
    number: String,
}

async fn process(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let request: PaymentRequest = body::json(payload).await?;
    let outcome = |o: &str| {
        ctx.metrics()
            .add("ecommerce_payments_total", &[("outcome", o)], 1.0)
    };
    let card = CardNumber::parse(&request.card.number).inspect_err(|_| outcome("invalid"))?;
    let amount = request
        .amount
        .as_f64()
        .ok_or_else(|| crate::domain::Invalid("Invalid amount: use a positive number".into()))
        .and_then(Money::from_positive_f64)
        .inspect_err(|_| outcome("invalid"))?;
    let transaction_id = match request.transaction_id {
        Some(id) => TransactionId::parse(&id).inspect_err(|_| outcome("invalid"))?,
        None => TransactionId::random(),
    };

    let faults = ctx.faults.get();
    let (delay, declined) = {
        let mut rng = rand::thread_rng();
        let delay = rng.gen_range(state.delay.min_ms..=state.delay.max_ms)
            + faults.payment_latency_ms.unwrap_or(0);
        let declined = faults
            .payment_failure
            .is_some_and(|ratio| rng.gen_bool(ratio));
        (delay, declined)
    };
    if faults.payment_latency_ms.is_some_and(|ms| ms > 0) {
        span::mark_fault("payment-latency");
    }
    if delay > 0 {
        // Asleep on the timer, not the thread: other requests go on meanwhile.
        actix_web::rt::time::sleep(Duration::from_millis(delay)).await;
    }
    if declined {
        span::mark_fault("payment-failure");
        outcome("declined");
        log::warn!(
            "msg=\"payment declined\" fault=payment-failure transaction_id={transaction_id} card=****{}",
            card.last4()
        );
        return Err(ApiError::Refused {
            status: actix_web::http::StatusCode::PAYMENT_REQUIRED,
            reason: "Payment declined".into(),
        });
    }
    outcome("success");
    ctx.metrics()
        .add("ecommerce_payment_amount_total", &[], amount.as_f64());
    Ok(HttpResponse::Ok().json(json!({
        "message": "success",
        "transaction_id": transaction_id,
        "amount": amount,
    })))
}
