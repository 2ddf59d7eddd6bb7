//! Readiness follows the process, never its dependencies: with any fault on, or any store
//! down, every role stays ready (so none leaves its Service), and the failure shows
//! where the README's fault table says: the failing role's own status and reason.

use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use ecommerce::config::{Faults, Settings};
use ecommerce::role::Role;
use serde_json::json;
use support::http::Reply;
use support::ports::free_port;
use support::shop::{spawn_with, TestApp, GOOD_CARD, SWEET_TEA};

/// Every role answers `/readyz` with 200 and `ready: true`.
async fn every_role_is_ready(app: &TestApp, while_: &str) {
    for role in Role::ALL {
        let reply = app.get(&app.ops_url(role, "/readyz")).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{role} left readiness while {while_}: {}",
            reply.json()
        );
        assert_eq!(reply.json()["ready"], true, "{role} while {while_}");
    }
}

async fn search(app: &TestApp) -> Reply {
    app.json(
        Method::POST,
        &app.web("/api/v1/product/search"),
        &json!({"query": "", "page": {"size": 3}}),
    )
    .await
}

async fn timed<T>(work: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = work.await;
    (out, started.elapsed())
}

/// The value each fault is switched on with here.
fn spec(name: &str) -> &'static str {
    match name {
        "basic-bug" => "basic-bug",
        "bind-localhost" => "bind-localhost",
        "payment-failure" => "payment-failure=1",
        "payment-latency" => "payment-latency=400",
        "cart-data-outage" => "cart-data-outage",
        "memory-leak" => "memory-leak=cart",
        "product-data-slow" => "product-data-slow=400",
        "cart-data-latency" => "cart-data-latency=400",
        "upstream-drop" => "upstream-drop=cart:1",
        "product-failure" => "product-failure=f95e2475",
        "cpu-hog" => "cpu-hog=payment",
        other => panic!("no readiness case for fault {other}: add one here"),
    }
}

/// Drives the request the fault acts on and checks that it fails where the fault table
/// says, with that role's own status and reason.
async fn shows_where_the_table_says(app: &TestApp, name: &str) {
    let session = app.session().await;
    match name {
        "basic-bug" => {
            let reply = search(app).await;
            assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        }
        "bind-localhost" => {
            // Here every caller is on loopback: the fault shows as the api-gateway's
            // bind address, checked in `bind_localhost_*` (tests/api/faults.rs); the
            // shop still works and nobody leaves readiness.
            assert_eq!(search(app).await.status, StatusCode::OK);
        }
        "payment-failure" => {
            app.put_line(&session, SWEET_TEA, 1).await;
            let reply = app.checkout(&session, GOOD_CARD).await;
            assert_eq!(
                reply.status,
                StatusCode::PAYMENT_REQUIRED,
                "{}",
                reply.json()
            );
        }
        "payment-latency" => {
            app.put_line(&session, SWEET_TEA, 1).await;
            let (reply, took) = timed(app.checkout(&session, GOOD_CARD)).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert!(took >= Duration::from_millis(400), "{took:?}");
        }
        "cart-data-outage" => {
            let reply = app.put_line(&session, SWEET_TEA, 1).await;
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(reply.reason().contains("cart-data"), "{}", reply.reason());
        }
        "memory-leak" => {
            app.cart(&session).await;
            let held = app
                .metric(Role::Cart, "ecommerce_fault_memory_leaked_bytes", &[])
                .await;
            assert!(held > 0.0, "{held}");
        }
        "product-data-slow" => {
            let (reply, took) = timed(search(app)).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert!(took >= Duration::from_millis(400), "{took:?}");
        }
        "cart-data-latency" => {
            let (cart, took) = timed(app.cart(&session)).await;
            assert_eq!(cart, json!({}));
            assert!(took >= Duration::from_millis(400), "{took:?}");
        }
        "upstream-drop" => {
            let reply = app.put_line(&session, SWEET_TEA, 1).await;
            assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
            assert!(
                reply.reason().contains("upstream-drop"),
                "{}",
                reply.reason()
            );
        }
        "product-failure" => {
            let failed = app
                .get(&app.web(&format!("/api/v1/product/products/{SWEET_TEA}")))
                .await;
            assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(search(app).await.status, StatusCode::OK);
        }
        "cpu-hog" => {
            // The first request the fault meets starts the busy thread.
            app.get(&app.url(Role::Payment, "/healthz")).await;
            let cpu = || app.metric(Role::Payment, "process_cpu_seconds_total", &[]);
            let before = cpu().await;
            actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
            let used = cpu().await - before;
            assert!(
                used >= 0.5,
                "the payment process used {used} s of CPU in 1.5 s"
            );
        }
        other => panic!("no readiness case for fault {other}"),
    }
}

#[actix_web::test]
async fn with_any_fault_on_every_role_stays_ready_and_the_fault_shows_where_it_starts() {
    for name in Faults::NAMES.map(|n| n.split('=').next().unwrap()) {
        let app = spawn_with(|s| s.faults.enable(spec(name)).unwrap()).await;

        shows_where_the_table_says(&app, name).await;

        every_role_is_ready(&app, &format!("fault {name} is on")).await;
    }
}

/// A store URL where nothing answers.
fn nothing_at(scheme: &str) -> String {
    match scheme {
        "redis" => format!("redis://127.0.0.1:{}/0", free_port()),
        _ => format!("{scheme}://postgres@127.0.0.1:{}/products", free_port()),
    }
}

#[actix_web::test]
async fn with_a_store_down_every_role_stays_ready_and_the_failure_is_the_store_s_role() {
    type Down = fn(&mut Settings);
    let cases: [(&str, Down); 3] = [
        ("cart-data", |s| {
            s.cart_data = nothing_at("redis").parse().unwrap();
            s.cart_data_replica = None;
        }),
        ("session-data", |s| {
            s.session_data = nothing_at("redis").parse().unwrap();
            s.session_data_replica = None;
        }),
        ("product-data", |s| {
            s.product_data = nothing_at("postgres").parse().unwrap()
        }),
    ];
    for (store, down) in cases {
        let app = spawn_with(down).await;

        let session = app.session().await;
        let (role, reply) = match store {
            "cart-data" => (Role::Cart, app.put_line(&session, SWEET_TEA, 1).await),
            "product-data" => (Role::Product, search(&app).await),
            // A page load still works without its session stored: the signed cookie
            // is enough for the API. The outage shows on the web-gateway's checks.
            _ => (Role::WebGateway, app.get(&app.web("/")).await),
        };
        if role == Role::WebGateway {
            assert_eq!(reply.status, StatusCode::OK);
        } else {
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{store}");
            assert!(reply.reason().contains(store), "{}", reply.reason());
        }
        let checks = app.get(&app.ops_url(role, "/readyz")).await.json();
        assert!(
            checks["checks"][store]
                .as_str()
                .is_some_and(|c| c.starts_with("down")),
            "{checks}"
        );
        let up = app
            .metric(role, "ecommerce_dependency_up", &[("dependency", store)])
            .await;
        assert_eq!(up, 0.0, "{store}");

        every_role_is_ready(&app, &format!("{store} is down")).await;
    }
}
