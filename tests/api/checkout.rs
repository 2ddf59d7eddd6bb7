//! checkout: prices the cart from the catalog, charges it, empties the cart; and on every
//! refusal charges nothing and leaves the cart as it was.

use actix_web::http::{Method, StatusCode};
use ecommerce::role::Role;
use serde_json::{json, Value};

use support::http::Reply;
use support::shop::{sid_of, spawn_app, spawn_with, TestApp, BAD_CARD, GOOD_CARD, SWEET_TEA};

const SPICED_COFFEE: &str = "77ce5522"; // 4.5

async fn process(app: &TestApp, order: &Value) -> Reply {
    app.json(Method::POST, &app.web("/api/v1/checkout/process"), order)
        .await
}

#[actix_web::test]
async fn checkout_charges_the_catalog_price_in_exact_cents_and_empties_the_cart() {
    let app = spawn_app().await;
    let session = app.shopper_with(&[(SWEET_TEA, 3)]).await;

    let reply = app.checkout(&session, GOOD_CARD).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    let body = reply.json();
    assert_eq!(body["message"], "success");
    assert!(!body["order_id"].as_str().unwrap().is_empty());
    assert_eq!(body["amount"], json!(10.5));
    assert_eq!(
        body["items"],
        json!([{"id": SWEET_TEA, "name": "Sweet Tea", "quantity": 3, "price": 3.5, "subtotal": 10.5}])
    );
    assert_eq!(app.cart(&session).await, json!({}));
    assert_eq!(app.payments().await, (1.0, 10.5));
}

#[actix_web::test]
async fn checkout_of_several_lines_sums_their_subtotals() {
    let app = spawn_app().await;
    let session = app
        .shopper_with(&[(SWEET_TEA, 3), (SPICED_COFFEE, 1)])
        .await;

    let reply = app.checkout(&session, GOOD_CARD).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    let body = reply.json();
    assert_eq!(body["amount"], json!(15.0));
    let mut items = body["items"].as_array().unwrap().clone();
    items.sort_by_key(|i| i["id"].as_str().unwrap().to_string());
    assert_eq!(
        items,
        [
            json!({"id": SPICED_COFFEE, "name": "Spiced Coffee", "quantity": 1, "price": 4.5, "subtotal": 4.5}),
            json!({"id": SWEET_TEA, "name": "Sweet Tea", "quantity": 3, "price": 3.5, "subtotal": 10.5}),
        ]
    );
    assert_eq!(app.cart(&session).await, json!({}));
    assert_eq!(app.payments().await, (1.0, 15.0));
}

#[actix_web::test]
async fn a_client_sent_amount_is_ignored() {
    let app = spawn_app().await;
    let session = app.shopper_with(&[(SWEET_TEA, 3)]).await;
    let mut order = TestApp::order(&session, GOOD_CARD);
    order["amount"] = json!(0.01);

    let reply = process(&app, &order).await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["amount"], json!(10.5));
    assert_eq!(app.payments().await, (1.0, 10.5));
}

#[actix_web::test]
async fn a_declined_card_is_refused_and_the_cart_is_left_as_it_was() {
    let app = spawn_app().await;
    let session = app.shopper_with(&[(SWEET_TEA, 3)]).await;

    let reply = app.checkout(&session, BAD_CARD).await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json(),
        json!({"message": "failure", "reason": "Invalid card number"})
    );
    assert_eq!(app.cart(&session).await, json!({SWEET_TEA: 3}));
    assert_eq!(app.payments().await, (0.0, 0.0));
}

#[actix_web::test]
async fn a_payment_failure_is_passed_on_as_402_and_the_cart_is_left_as_it_was() {
    let app = spawn_with(|settings| {
        settings.faults.enable("payment-failure=1").unwrap();
    })
    .await;
    let session = app.shopper_with(&[(SWEET_TEA, 3)]).await;

    let reply = app.checkout(&session, GOOD_CARD).await;

    assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(reply.reason(), "Payment declined");
    assert_eq!(app.cart(&session).await, json!({SWEET_TEA: 3}));
    assert_eq!(app.payments().await, (0.0, 0.0));
}

#[actix_web::test]
async fn an_empty_cart_cannot_be_checked_out() {
    let app = spawn_app().await;
    let session = app.session().await;

    let reply = app.checkout(&session, GOOD_CARD).await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.reason(), "Cart is empty");
    assert_eq!(app.payments().await, (0.0, 0.0));
}

#[actix_web::test]
async fn a_product_missing_from_the_catalog_is_a_conflict_naming_it_and_nothing_is_charged() {
    let app = spawn_app().await;
    let session = app.shopper_with(&[(SWEET_TEA, 3)]).await;
    // A line the shop would never write itself, put straight into the cart.
    let put = app
        .json(
            Method::PUT,
            &app.url(Role::Cart, "/zzzz9999/2"),
            &json!({"session_id": sid_of(&session)}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);

    let reply = app.checkout(&session, GOOD_CARD).await;

    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(reply.reason().contains("zzzz9999"), "{}", reply.reason());
    assert_eq!(
        app.cart(&session).await,
        json!({SWEET_TEA: 3, "zzzz9999": 2})
    );
    assert_eq!(app.payments().await, (0.0, 0.0));
}

#[actix_web::test]
async fn an_order_missing_shipping_billing_or_card_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let session = app.shopper_with(&[(SWEET_TEA, 3)]).await;
    let full = TestApp::order(&session, GOOD_CARD);
    let without = |pointer: &str| {
        let mut order = full.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        order
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
        order
    };

    for missing in [
        "/shipping",
        "/billing",
        "/billing/card",
        "/billing/card/number",
        "/shipping/address",
        "/billing/address",
    ] {
        let reply = process(&app, &without(missing)).await;

        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{missing}");
        let reason = reply.reason();
        let field = missing.rsplit('/').next().unwrap();
        assert!(reason.contains(field), "{missing}: {reason}");
    }
    assert_eq!(app.cart(&session).await, json!({SWEET_TEA: 3}));
    assert_eq!(app.payments().await, (0.0, 0.0));
}

#[actix_web::test]
async fn a_malformed_order_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let session = app.shopper_with(&[(SWEET_TEA, 3)]).await;
    let mut wrong_type = TestApp::order(&session, GOOD_CARD);
    wrong_type["billing"]["card"] = json!("4111 1111 1111 1111");

    let malformed = app
        .send(
            Method::POST,
            &app.web("/api/v1/checkout/process"),
            &[("content-type", "application/json")],
            format!(r#"{{"session_id": "{session}", "shipping": "#),
        )
        .await;
    let mistyped = process(&app, &wrong_type).await;

    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.reason().contains("Malformed JSON"));
    assert_eq!(mistyped.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.cart(&session).await, json!({SWEET_TEA: 3}));
    assert_eq!(app.payments().await, (0.0, 0.0));
}

#[actix_web::test]
async fn initiate_answers_success() {
    let app = spawn_app().await;
    let session = app.session().await;

    let reply = app
        .json(
            Method::POST,
            &app.web("/api/v1/checkout/initiate"),
            &json!({"session_id": session}),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"message": "success"}));
}
