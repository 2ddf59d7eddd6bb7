//! Fault scenarios: each one's effect, seen where a person would see it, and the shop
//! restored when it is switched off at run time (`PUT /faults` with the admin token).

use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use ecommerce::config::{Secret, Settings};
use ecommerce::role::Role;
use ecommerce::startup::Application;
use serde_json::{json, Value};

use support::http::{bad_request, Reply};
use support::shop::{spawn_with, TestApp, GOOD_CARD, SWEET_TEA};

const TOKEN: &str = "test-admin-token";

/// The shop with run-time fault switching on, and `faults` on from the start.
async fn switchable_shop(faults: &[&str]) -> TestApp {
    let faults: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
    spawn_with(move |settings| {
        settings.admin_token = Some(Secret::new(TOKEN.into()));
        for fault in &faults {
            settings.faults.enable(fault).unwrap();
        }
    })
    .await
}

/// Fault requests, as methods of the app (a trait, since `TestApp` is the support crate's).
trait FaultRequests {
    /// `PUT /faults` on `role` with `token` (none: no Authorization header).
    async fn put_faults(&self, role: Role, token: Option<&str>, faults: &[&str]) -> Reply;
    /// Switches `role`'s faults to `faults`, asserting that it worked.
    async fn switch_faults(&self, role: Role, faults: &[&str]);
    async fn active_faults(&self, role: Role) -> Value;
    async fn search(&self) -> Reply;
    /// A payment of one dollar straight to the payment role, and how long it took.
    async fn timed_payment(&self) -> (Reply, Duration);
}

impl FaultRequests for TestApp {
    async fn put_faults(&self, role: Role, token: Option<&str>, faults: &[&str]) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        self.send(
            Method::PUT,
            &self.url(role, "/faults"),
            &headers,
            json!({ "faults": faults }).to_string(),
        )
        .await
    }

    async fn switch_faults(&self, role: Role, faults: &[&str]) {
        let reply = self.put_faults(role, Some(TOKEN), faults).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
        assert_eq!(reply.json()["faults"], json!(faults));
    }

    async fn active_faults(&self, role: Role) -> Value {
        self.get(&self.url(role, "/")).await.json()["faults"].clone()
    }

    async fn search(&self) -> Reply {
        self.json(
            Method::POST,
            &self.web("/api/v1/product/search"),
            &json!({"query": "", "page": {"size": 6}}),
        )
        .await
    }

    async fn timed_payment(&self) -> (Reply, Duration) {
        let started = Instant::now();
        let reply = self
            .json(
                Method::POST,
                &self.url(Role::Payment, "/process"),
                &json!({"amount": 1.0, "card": {"number": GOOD_CARD}}),
            )
            .await;
        (reply, started.elapsed())
    }
}

#[actix_web::test]
async fn without_an_admin_token_faults_cannot_be_switched() {
    let app = spawn_with(|settings| settings.faults.enable("basic-bug").unwrap()).await;

    let reply = app.put_faults(Role::Product, Some("anything"), &[]).await;

    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.reason().contains("admin token"), "{}", reply.reason());
    assert_eq!(app.active_faults(Role::Product).await, json!(["basic-bug"]));
    let shown = app.get(&app.url(Role::Product, "/faults")).await.json();
    assert_eq!(shown["switchable"], json!(false));
}

#[actix_web::test]
async fn switching_needs_the_right_token_and_a_valid_list() {
    let app = switchable_shop(&["basic-bug"]).await;

    let missing = app.put_faults(Role::Product, None, &[]).await;
    let wrong = app.put_faults(Role::Product, Some("guess"), &[]).await;
    let unknown = app
        .put_faults(Role::Product, Some(TOKEN), &["meteor-strike"])
        .await;
    let malformed = app
        .send(
            Method::PUT,
            &app.url(Role::Product, "/faults"),
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {TOKEN}")),
            ],
            r#"{"faults": "basic-bug"}"#,
        )
        .await;

    for reply in [&missing, &wrong] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
    bad_request(&unknown, "meteor-strike");
    bad_request(&malformed, "invalid");
    // Nothing changed.
    assert_eq!(app.active_faults(Role::Product).await, json!(["basic-bug"]));
}

#[actix_web::test]
async fn basic_bug_fails_search_until_switched_off() {
    let app = switchable_shop(&[]).await;
    assert_eq!(app.search().await.status, StatusCode::OK);

    app.switch_faults(Role::Product, &["basic-bug"]).await;
    let broken = app.search().await;
    let active = app
        .metric(
            Role::Product,
            "ecommerce_fault_active",
            &[("fault", "basic-bug")],
        )
        .await;
    app.switch_faults(Role::Product, &[]).await;
    let restored = app.search().await;

    assert_eq!(broken.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(active, 1.0);
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.json());
    assert_eq!(restored.json()["results"].as_array().unwrap().len(), 6);
    assert_eq!(
        app.metric(Role::Product, "ecommerce_fault_active", &[])
            .await,
        0.0
    );
}

#[actix_web::test]
async fn payment_failure_declines_checkouts_until_switched_off() {
    let app = switchable_shop(&[]).await;
    let session = app.session().await;
    app.put_line(&session, SWEET_TEA, 1).await;

    app.switch_faults(Role::Payment, &["payment-failure=1"])
        .await;
    let declined = app.checkout(&session, GOOD_CARD).await;
    let kept = app.cart(&session).await;
    app.switch_faults(Role::Payment, &[]).await;
    let paid = app.checkout(&session, GOOD_CARD).await;

    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        kept,
        json!({ SWEET_TEA: 1 }),
        "a declined order keeps the cart"
    );
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.json());
    assert_eq!(app.cart(&session).await, json!({}));
}

#[actix_web::test]
async fn payment_latency_slows_payments_until_switched_off() {
    let app = switchable_shop(&[]).await;

    app.switch_faults(Role::Payment, &["payment-latency=800"])
        .await;
    let (slow, slow_took) = app.timed_payment().await;
    app.switch_faults(Role::Payment, &[]).await;
    let (fast, fast_took) = app.timed_payment().await;

    assert_eq!(slow.status, StatusCode::OK);
    assert!(slow_took >= Duration::from_millis(800), "{slow_took:?}");
    assert_eq!(fast.status, StatusCode::OK);
    assert!(fast_took < Duration::from_millis(800), "{fast_took:?}");
}

#[actix_web::test]
async fn cart_data_outage_makes_carts_unavailable_until_switched_off_losing_nothing() {
    let app = switchable_shop(&[]).await;
    let session = app.session().await;
    app.put_line(&session, SWEET_TEA, 2).await;

    app.switch_faults(Role::Cart, &["cart-data-outage"]).await;
    let read = app
        .json(
            Method::POST,
            &app.web("/api/v1/cart"),
            &json!({"session_id": session}),
        )
        .await;
    let write = app.put_line(&session, SWEET_TEA, 5).await;
    let ready = app.get(&app.url(Role::Cart, "/readyz")).await;
    let store_up = || {
        app.metric(
            Role::Cart,
            "ecommerce_dependency_up",
            &[("dependency", "cart-data")],
        )
    };
    let up_during = store_up().await;
    app.switch_faults(Role::Cart, &[]).await;

    assert_eq!(
        up_during, 0.0,
        "the outage shows on the cart's dependency gauge"
    );
    assert_eq!(store_up().await, 1.0);
    assert_eq!(read.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(read.reason().contains("cart-data"), "{}", read.reason());
    assert_eq!(write.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.cart(&session).await, json!({ SWEET_TEA: 2 }));
    assert_eq!(
        app.get(&app.url(Role::Cart, "/readyz")).await.status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn memory_leak_holds_memory_until_switched_off() {
    let app = switchable_shop(&[]).await;
    let leaked = || app.metric(Role::Cart, "ecommerce_fault_memory_leaked_bytes", &[]);

    app.switch_faults(Role::Cart, &["memory-leak=cart"]).await;
    for _ in 0..20 {
        app.get(&app.url(Role::Cart, "/healthz")).await;
    }
    let held = leaked().await;
    app.switch_faults(Role::Cart, &[]).await;
    for _ in 0..5 {
        app.get(&app.url(Role::Cart, "/healthz")).await;
    }

    assert!(held >= 20.0 * 64.0 * 1024.0, "{held}");
    assert_eq!(leaked().await, 0.0);
}

/// Where the api-gateway of a shop started with `faults` listens, asked to listen on
/// every interface.
async fn api_gateway_bound(faults: &[&str]) -> std::net::SocketAddr {
    let mut settings = Settings::local(vec![Role::ApiGateway], 0);
    settings
        .listen
        .insert(Role::ApiGateway, "0.0.0.0:0".to_string());
    for fault in faults {
        settings.faults.enable(fault).unwrap();
    }
    let app = Application::build(settings)
        .await
        .expect("the gateway starts");
    let address = app.address(Role::ApiGateway).unwrap();
    for handle in app.handles() {
        handle.stop(false).await;
    }
    address
}

#[actix_web::test]
async fn bind_localhost_binds_loopback_only_and_a_restart_without_it_restores() {
    let faulty = api_gateway_bound(&["bind-localhost"]).await;
    let restored = api_gateway_bound(&[]).await;

    assert!(faulty.ip().is_loopback(), "{faulty}");
    assert!(restored.ip().is_unspecified(), "{restored}");
}

#[actix_web::test]
async fn bind_localhost_cannot_change_at_run_time() {
    let app = switchable_shop(&[]).await;

    let reply = app
        .put_faults(Role::ApiGateway, Some(TOKEN), &["bind-localhost"])
        .await;

    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(reply.reason().contains("restart"), "{}", reply.reason());
    assert_eq!(app.active_faults(Role::ApiGateway).await, json!([]));
}
