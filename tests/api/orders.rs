//! One order, one charge: checkout claims the cart before charging, so concurrent and
//! repeated checkouts of one cart charge it once; an `Idempotency-Key` answers the same
//! order again; a failed payment gives the lines back exactly.

use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use ecommerce::config::DelayRange;
use ecommerce::role::Role;
use futures_util::future::join_all;
use serde_json::{json, Value};

use support::http::{bad_request, Reply};
use support::shop::{
    spawn_app, spawn_processes_with, spawn_with, unique_sid, TestApp, BAD_CARD, GOOD_CARD,
    SWEET_TEA,
};

const SPICED_COFFEE: &str = "77ce5522"; // 4.5

/// A checkout through the web-gateway, with an `Idempotency-Key` when `key` is given.
async fn checkout(app: &TestApp, session: &str, card: &str, key: Option<&str>) -> Reply {
    let order = TestApp::order(session, card).to_string();
    let mut headers = vec![("content-type", "application/json")];
    if let Some(key) = key {
        headers.push(("idempotency-key", key));
    }
    app.send(
        Method::POST,
        &app.web("/api/v1/checkout/process"),
        &headers,
        order,
    )
    .await
}

/// A payment delay long enough for requests to overlap.
fn slow_payments(ms: u64) -> impl FnOnce(&mut ecommerce::config::Settings) {
    move |settings| {
        settings.payment_delay = DelayRange {
            min_ms: ms,
            max_ms: ms,
        }
    }
}

#[actix_web::test]
async fn parallel_checkouts_of_one_cart_charge_it_once() {
    let app = spawn_with(slow_payments(200)).await;
    let session = app.shopper_with(&[(SWEET_TEA, 3)]).await;

    let replies = join_all((0..5).map(|_| checkout(&app, &session, GOOD_CARD, None))).await;

    let paid: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(paid.len(), 1, "exactly one checkout pays");
    for reply in replies.iter().filter(|r| r.status != StatusCode::OK) {
        bad_request(reply, "Cart is empty");
    }
    assert_eq!(paid[0].json()["amount"], json!(10.5));
    assert_eq!(app.payments().await, (1.0, 10.5));
    assert_eq!(app.cart(&session).await, json!({}));
}

#[actix_web::test]
async fn parallel_repeats_of_one_attempt_answer_one_order_and_charge_once() {
    let app = spawn_with(slow_payments(300)).await;
    let session = app.shopper_with(&[(SWEET_TEA, 3)]).await;
    let key = unique_sid("attempt");

    let replies = join_all((0..5).map(|_| checkout(&app, &session, GOOD_CARD, Some(&key)))).await;

    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
        assert_eq!(reply.body, replies[0].body, "the same order, word for word");
    }
    assert_eq!(replies[0].json()["amount"], json!(10.5));
    assert_eq!(app.payments().await, (1.0, 10.5));
    let replayed = app
        .metric(
            Role::Checkout,
            "ecommerce_checkouts_total",
            &[("outcome", "replayed")],
        )
        .await;
    assert_eq!(replayed, 4.0);
}

#[actix_web::test]
async fn a_repeat_after_the_order_answers_it_again_and_removes_nothing() {
    let app = spawn_app().await;
    let session = app.shopper_with(&[(SWEET_TEA, 3)]).await;
    let key = unique_sid("attempt");
    let first = checkout(&app, &session, GOOD_CARD, Some(&key)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json());
    // The shopper goes on shopping; a late retry of the paid attempt must not touch it.
    app.put_line(&session, SPICED_COFFEE, 2).await;

    let again = checkout(&app, &session, GOOD_CARD, Some(&key)).await;

    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, first.body);
    assert_eq!(app.cart(&session).await, json!({SPICED_COFFEE: 2}));
    assert_eq!(app.payments().await, (1.0, 10.5));
}

#[actix_web::test]
async fn a_line_added_during_checkout_is_kept_for_later() {
    let app = spawn_with(slow_payments(500)).await;
    let session = app.shopper_with(&[(SWEET_TEA, 3)]).await;

    let (paid, added) = futures_util::join!(checkout(&app, &session, GOOD_CARD, None), async {
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        app.put_line(&session, SPICED_COFFEE, 1).await
    });

    assert_eq!(added.status, StatusCode::OK);
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.json());
    assert_eq!(paid.json()["amount"], json!(10.5), "only the claimed lines");
    assert_eq!(app.cart(&session).await, json!({SPICED_COFFEE: 1}));
    assert_eq!(app.payments().await, (1.0, 10.5));
}

#[actix_web::test]
async fn a_failed_payment_gives_the_lines_back_exactly_and_the_attempt_can_be_retried() {
    let app = spawn_app().await;
    let session = app
        .shopper_with(&[(SWEET_TEA, 3), (SPICED_COFFEE, 1)])
        .await;
    let key = unique_sid("attempt");

    let declined = checkout(&app, &session, BAD_CARD, Some(&key)).await;

    bad_request(&declined, "card");
    assert_eq!(
        app.cart(&session).await,
        json!({SWEET_TEA: 3, SPICED_COFFEE: 1})
    );
    assert_eq!(app.payments().await, (0.0, 0.0));
    let retried = checkout(&app, &session, GOOD_CARD, Some(&key)).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.json());
    assert_eq!(retried.json()["amount"], json!(15.0));
    assert_eq!(app.payments().await, (1.0, 15.0));
}

#[actix_web::test]
async fn an_invalid_idempotency_key_is_refused_and_nothing_is_claimed() {
    let app = spawn_app().await;
    let session = app.shopper_with(&[(SWEET_TEA, 3)]).await;

    for key in ["a b", "x/y", "", &"k".repeat(129)] {
        let reply = checkout(&app, &session, GOOD_CARD, Some(key)).await;
        bad_request(&reply, "Idempotency-Key");
    }

    assert_eq!(app.cart(&session).await, json!({SWEET_TEA: 3}));
    assert_eq!(app.payments().await, (0.0, 0.0));
}

#[actix_web::test]
async fn the_order_routes_are_checkout_s_alone() {
    let app = spawn_app().await;
    let session = app.shopper_with(&[(SWEET_TEA, 3)]).await;
    let body = json!({"session_id": session, "order_id": "mine", "receipt": {}});

    for action in ["claim", "restore", "complete"] {
        let url = app.web(&format!("/api/v1/cart/orders/k1/{action}"));
        let reply = app.json(Method::POST, &url, &body).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{action}");
    }

    assert_eq!(app.cart(&session).await, json!({SWEET_TEA: 3}));
}

/// The production topology, with the real payment delay (500-1000 ms): a double click
/// 200 ms apart, and five parallel checkouts without a key, each charge once.
#[actix_web::test]
async fn on_the_production_topology_double_clicks_and_parallel_checkouts_charge_once() {
    let app = spawn_processes_with(|settings| settings.payment_delay = DelayRange::DEFAULT).await;
    let clicker = app.shopper_with(&[(SWEET_TEA, 3)]).await;
    let key = unique_sid("attempt");
    let parallel = app.shopper_with(&[(SPICED_COFFEE, 2)]).await;

    let (clicks, replies) = futures_util::join!(
        async {
            let first = checkout(&app, &clicker, GOOD_CARD, Some(&key));
            let second = async {
                actix_web::rt::time::sleep(Duration::from_millis(200)).await;
                checkout(&app, &clicker, GOOD_CARD, Some(&key)).await
            };
            futures_util::join!(first, second)
        },
        join_all((0..5).map(|_| checkout(&app, &parallel, GOOD_CARD, None)))
    );

    let (first, second) = clicks;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json());
    assert_eq!(second.status, StatusCode::OK, "{}", second.json());
    assert_eq!(first.json()["order_id"], second.json()["order_id"]);
    let paid: Vec<Value> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .map(Reply::json)
        .collect();
    assert_eq!(paid.len(), 1, "one of five parallel checkouts pays");
    assert_eq!(app.payments().await, (2.0, 10.5 + 9.0));
}
