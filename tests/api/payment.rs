//! payment: card and amount validation, and a processing delay that does not block.

use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use ecommerce::config::DelayRange;
use ecommerce::role::Role;
use serde_json::{json, Value};

use support::http::Reply;
use support::shop::{spawn_app, spawn_with, TestApp, BAD_CARD, GOOD_CARD};

/// Payment is internal: checkout reaches it through the api-gateway.
async fn pay(app: &TestApp, body: &Value) -> Reply {
    let url = app.url(Role::ApiGateway, "/api/v1/payment/process");
    app.json(Method::POST, &url, body).await
}

/// Successful payments so far, by the payment role's own count.
async fn charged(app: &TestApp) -> f64 {
    app.metric(
        Role::Payment,
        "ecommerce_payments_total",
        &[("outcome", "success")],
    )
    .await
}

fn payment(number: &str, amount: Value) -> Value {
    json!({
        "amount": amount,
        "card": {"name": "Ada Lovelace", "number": number, "expiration": "12/30",
                 "security_code": "123", "postal_code": "97477"},
        "transaction_id": "tx-0001",
    })
}

#[actix_web::test]
async fn a_valid_card_and_positive_amount_are_charged_with_the_transaction_id_echoed() {
    let app = spawn_app().await;

    let reply = pay(&app, &payment(GOOD_CARD, json!(10.5))).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    let body = reply.json();
    assert_eq!(body["message"], "success");
    assert_eq!(body["transaction_id"], "tx-0001");
    assert_eq!(charged(&app).await, 1.0);
}

#[actix_web::test]
async fn without_a_transaction_id_one_is_made_up() {
    let app = spawn_app().await;
    let mut body = payment("5555-5555-5555-4444", json!(1));
    body.as_object_mut().unwrap().remove("transaction_id");

    let reply = pay(&app, &body).await;

    assert_eq!(reply.status, StatusCode::OK);
    let id = reply.json()["transaction_id"].as_str().unwrap().to_string();
    assert!(
        !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
}

#[actix_web::test]
async fn a_card_failing_the_luhn_check_is_refused_and_nothing_is_charged() {
    let app = spawn_app().await;

    for number in [BAD_CARD, "", "1234", "abcd efgh ijkl mnop"] {
        let reply = pay(&app, &payment(number, json!(10.5))).await;

        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{number:?}");
        assert_eq!(
            reply.json(),
            json!({"message": "failure", "reason": "Invalid card number"})
        );
    }
    assert_eq!(charged(&app).await, 0.0);
}

#[actix_web::test]
async fn amounts_that_are_not_positive_with_two_decimals_are_refused() {
    let app = spawn_app().await;

    for amount in [
        json!(0),
        json!(-1),
        json!("ten"),
        json!(1.005),
        json!(null),
        json!("10"),
        json!(5e-324),
        json!(0.004),
    ] {
        let reply = pay(&app, &payment(GOOD_CARD, amount.clone())).await;

        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{amount}");
        assert!(
            reply.reason().contains("amount"),
            "{amount}: {}",
            reply.reason()
        );
    }
    assert_eq!(charged(&app).await, 0.0);
}

#[actix_web::test]
async fn a_payment_without_a_card_or_amount_is_refused() {
    let app = spawn_app().await;
    let no_card = json!({"amount": 10.5, "transaction_id": "t"});
    let no_number = json!({"amount": 10.5, "card": {"name": "Ada"}});
    let no_amount = json!({"card": {"number": GOOD_CARD}});

    for body in [no_card, no_number, no_amount] {
        let reply = pay(&app, &body).await;

        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(!reply.reason().is_empty());
    }
    let malformed = app
        .send(
            Method::POST,
            &app.url(Role::ApiGateway, "/api/v1/payment/process"),
            &[("content-type", "application/json")],
            "{\"amount\": ",
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.reason().contains("Malformed JSON"));
    assert_eq!(charged(&app).await, 0.0);
}

#[actix_web::test]
async fn an_invalid_transaction_id_is_refused() {
    let app = spawn_app().await;
    let mut body = payment(GOOD_CARD, json!(1));
    body["transaction_id"] = json!("../../etc");

    let reply = pay(&app, &body).await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.reason().contains("transaction_id"));
    assert_eq!(charged(&app).await, 0.0);
}

#[actix_web::test]
async fn the_processing_delay_does_not_block_other_payments() {
    let app = spawn_with(|settings| {
        settings.payment_delay = DelayRange {
            min_ms: 300,
            max_ms: 300,
        };
        settings.workers = 1;
    })
    .await;
    let url = app.url(Role::Payment, "/process");
    let body = payment(GOOD_CARD, json!(2.5));

    let started = Instant::now();
    let replies =
        futures_util::future::join_all((0..5).map(|_| app.json(Method::POST, &url, &body))).await;
    let elapsed = started.elapsed();

    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK);
    }
    // One worker, five payments of 300 ms each: serialised they would take 1.5 s.
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1200), "{elapsed:?}");
    assert_eq!(charged(&app).await, 5.0);
}
