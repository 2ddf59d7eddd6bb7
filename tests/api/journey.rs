//! The synthetics' user journey on the production topology (one process per role, wired
//! through the api-gateway), whatever `ECOMMERCE_TEST_TOPOLOGY` says.

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use support::shop::{spawn_processes_with, GOOD_CARD, SWEET_TEA};

#[actix_web::test]
async fn a_shopper_walks_from_the_home_page_to_a_paid_order() {
    let app = spawn_processes_with(|_| {}).await;

    // Home: the page (which starts a session), six products and their images.
    let session = app.session().await;
    let cookie = [("cookie", format!("session_id={session}"))];
    let cookie: Vec<(&str, &str)> = cookie.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let home = app
        .send(
            Method::POST,
            &app.web("/api/v1/product/search"),
            &[("content-type", "application/json")],
            json!({"query": "", "page": {"size": 6}}).to_string(),
        )
        .await;
    assert_eq!(home.status, StatusCode::OK);
    let results = home.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 6);
    assert_eq!(home.json()["meta"]["page"]["total_results"], 32);
    for product in &results {
        let image = product["filename"].as_str().unwrap();
        let reply = app
            .send(
                Method::GET,
                &app.web(&format!("/api/v1/content/{image}")),
                &cookie,
                "",
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{image}");
        assert_eq!(reply.header("content-type"), Some("image/jpeg"));
    }
    assert_eq!(app.cart(&session).await, json!({}));

    // The product, into the cart, and the cart viewed.
    let product = app
        .get(&app.web(&format!("/api/v1/product/products/{SWEET_TEA}")))
        .await;
    assert_eq!(product.json()["price"], 3.5);
    let added = app.put_line(&session, SWEET_TEA, 1).await;
    assert_eq!(added.status, StatusCode::OK);
    assert_eq!(app.cart(&session).await, json!({SWEET_TEA: 1}));

    // Checkout: opened, then paid.
    let initiated = app
        .json(
            Method::POST,
            &app.web("/api/v1/checkout/initiate"),
            &json!({"session_id": session}),
        )
        .await;
    assert_eq!(initiated.status, StatusCode::OK);
    let paid = app.checkout(&session, GOOD_CARD).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.json());
    assert_eq!(paid.json()["message"], "success");
    assert_eq!(paid.json()["amount"], 3.5);
    assert!(paid.json()["order_id"].is_string());

    // The cart reloaded: empty; the page still knows the shopper.
    assert_eq!(app.cart(&session).await, json!({}));
    let page = app
        .send(Method::GET, &app.web("/confirmation"), &cookie, "")
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("set-cookie").is_none());
}
