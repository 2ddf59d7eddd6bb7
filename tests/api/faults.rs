//! Fault scenarios: each one's effect, seen where a person would see it, and the shop
//! restored when it is switched off at run time (`PUT /faults` with the admin token).

use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use ecommerce::config::{Secret, Settings};
use ecommerce::role::Role;
use ecommerce::startup::Application;
use ecommerce::telemetry::settings::Otlp;
use serde_json::{json, Value};

use support::http::{bad_request, Reply};
use support::otlp::{Received, Receiver};
use support::shop::{spawn_with, unique_sid, TestApp, GOOD_CARD, SWEET_TEA};

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
    // The outage is the cart's own 503s; the cart stays in its Service.
    assert_eq!(ready.status, StatusCode::OK);
    assert!(ready.json()["checks"]["cart-data"]
        .as_str()
        .is_some_and(|c| c.starts_with("down")));
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

/// Another product of the catalog than [`SWEET_TEA`].
const HOT_CHOCOLATE: &str = "ee0a957a";

/// The shop with run-time fault switching on, exporting its spans to `receiver` every
/// 100 ms.
async fn traced_switchable_shop(receiver: &Receiver) -> TestApp {
    let url = receiver.url.clone();
    spawn_with(move |settings| {
        settings.admin_token = Some(Secret::new(TOKEN.into()));
        settings.otlp = Some(Otlp {
            schedule_delay: Duration::from_millis(100),
            ..Otlp::to(&url)
        });
    })
    .await
}

/// A request as the caller of a new sampled trace: its answer, how long it took, and
/// the trace's id.
async fn traced(
    app: &TestApp,
    method: Method,
    url: &str,
    body: Value,
) -> (Reply, Duration, String) {
    let trace_id = hex::encode(rand::random::<[u8; 16]>());
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let started = Instant::now();
    let reply = app
        .send(
            method,
            url,
            &[
                ("content-type", "application/json"),
                ("traceparent", &traceparent),
            ],
            body.to_string(),
        )
        .await;
    (reply, started.elapsed(), trace_id)
}

/// The spans of trace `trace_id` once `service`'s server span is among them, and that span.
async fn server_span_of(
    receiver: &Receiver,
    trace_id: &str,
    service: &str,
) -> (Received, Vec<Received>) {
    let is_it = |s: &Received| s.is_server() && s.service == service;
    let spans = receiver
        .trace(trace_id, Duration::from_secs(15), |spans| {
            spans.iter().any(is_it)
        })
        .await;
    let server = spans.iter().find(|s| is_it(s)).unwrap().clone();
    (server, spans)
}

fn span_duration(span: &Received) -> Duration {
    Duration::from_nanos(span.span.end_time_unix_nano - span.span.start_time_unix_nano)
}

/// The store span (`db.system`) under `server`.
fn store_span<'a>(spans: &'a [Received], server: &Received, db_system: &str) -> &'a Received {
    spans
        .iter()
        .find(|s| s.text("db.system") == Some(db_system) && s.parent_id() == server.span_id())
        .unwrap_or_else(|| panic!("no {db_system} span under {}", server.span.name))
}

/// Time the store operations of `role` on `db_system` took in all, by its metrics.
async fn store_seconds(app: &TestApp, role: Role, db_system: &str) -> f64 {
    app.metric(
        role,
        "db_client_operation_duration_seconds_sum",
        &[("db_system", db_system)],
    )
    .await
}

#[actix_web::test]
async fn bad_values_of_the_newer_faults_are_refused_with_what_they_need() {
    let app = switchable_shop(&[]).await;

    let cases = [
        ("product-data-slow=0", "milliseconds from 1 to 60000"),
        ("cart-data-latency=61000", "milliseconds from 1 to 60000"),
        ("upstream-drop=cart", "<upstream>:<ratio>"),
        ("upstream-drop=web-gateway:1", "an upstream before the ':'"),
        ("upstream-drop=cart:2", "a ratio from 0 to 1"),
        ("product-failure=no/such", "a product id"),
        ("cpu-hog=basket", "a role"),
    ];
    for (fault, needs) in cases {
        let reply = app.put_faults(Role::Product, Some(TOKEN), &[fault]).await;
        bad_request(&reply, needs);
        assert!(reply.reason().contains(fault), "{}", reply.reason());
    }

    assert_eq!(app.active_faults(Role::Product).await, json!([]));
}

#[actix_web::test]
async fn product_data_slow_makes_every_query_a_slow_store_span_until_switched_off() {
    let receiver = Receiver::start();
    let app = traced_switchable_shop(&receiver).await;
    let url = app.url(Role::Product, &format!("/products/{SWEET_TEA}"));
    let before = store_seconds(&app, Role::Product, "postgresql").await;

    app.switch_faults(Role::Product, &["product-data-slow=300"])
        .await;
    let (slow, slow_took, trace_id) = traced(&app, Method::GET, &url, json!(null)).await;
    let during = store_seconds(&app, Role::Product, "postgresql").await;
    app.switch_faults(Role::Product, &[]).await;
    let (fast, fast_took, _) = traced(&app, Method::GET, &url, json!(null)).await;

    assert_eq!(slow.status, StatusCode::OK);
    assert_eq!(slow.json()["id"], SWEET_TEA);
    assert!(slow_took >= Duration::from_millis(300), "{slow_took:?}");
    assert!(
        during - before >= 0.3,
        "store time grew by {} s",
        during - before
    );
    let (server, spans) = server_span_of(&receiver, &trace_id, "product").await;
    assert_eq!(
        server.text("ecommerce.fault.applied"),
        Some("product-data-slow")
    );
    let query = store_span(&spans, &server, "postgresql");
    assert!(
        span_duration(query) >= Duration::from_millis(300),
        "{query:?}"
    );
    assert_eq!(fast.status, StatusCode::OK);
    assert!(fast_took < Duration::from_millis(300), "{fast_took:?}");
}

#[actix_web::test]
async fn product_data_slow_slows_search_and_documents_too() {
    let app = switchable_shop(&["product-data-slow=300"]).await;

    for (path, body) in [
        ("/search", json!({"query": "tea"})),
        ("/documents", json!([SWEET_TEA])),
    ] {
        let started = Instant::now();
        let reply = app
            .json(Method::POST, &app.url(Role::Product, path), &body)
            .await;
        let took = started.elapsed();

        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.json());
        assert!(took >= Duration::from_millis(300), "{path}: {took:?}");
    }
}

#[actix_web::test]
async fn cart_data_latency_slows_every_cart_operation_in_its_store_span_until_switched_off() {
    let receiver = Receiver::start();
    let app = traced_switchable_shop(&receiver).await;
    let sid = unique_sid("latency");
    let set_line = |quantity: u32| {
        let url = app.url(Role::Cart, &format!("/{SWEET_TEA}/{quantity}"));
        let app = &app;
        let sid = sid.clone();
        async move { traced(app, Method::PUT, &url, json!({"session_id": sid})).await }
    };
    let before = store_seconds(&app, Role::Cart, "redis").await;

    app.switch_faults(Role::Cart, &["cart-data-latency=300"])
        .await;
    let (slow, slow_took, trace_id) = set_line(2).await;
    let during = store_seconds(&app, Role::Cart, "redis").await;
    app.switch_faults(Role::Cart, &[]).await;
    let (fast, fast_took, _) = set_line(3).await;

    assert_eq!(slow.status, StatusCode::OK, "{}", slow.json());
    assert!(slow_took >= Duration::from_millis(300), "{slow_took:?}");
    assert!(
        during - before >= 0.3,
        "store time grew by {} s",
        during - before
    );
    let (server, spans) = server_span_of(&receiver, &trace_id, "cart").await;
    assert_eq!(
        server.text("ecommerce.fault.applied"),
        Some("cart-data-latency")
    );
    let command = store_span(&spans, &server, "redis");
    assert!(
        span_duration(command) >= Duration::from_millis(300),
        "{command:?}"
    );
    assert_eq!(fast.status, StatusCode::OK);
    assert!(fast_took < Duration::from_millis(300), "{fast_took:?}");
    assert_eq!(app.cart_direct(&sid).await, json!({ SWEET_TEA: 3 }));
}

#[actix_web::test]
async fn upstream_drop_answers_502_for_that_share_without_calling_the_upstream() {
    let receiver = Receiver::start();
    let app = traced_switchable_shop(&receiver).await;
    let url = app.url(
        Role::ApiGateway,
        &format!("/api/v1/product/products/{SWEET_TEA}"),
    );
    let product_served = || {
        app.metric(
            Role::Product,
            "http_server_requests_total",
            &[("route", "/products/{id}")],
        )
    };
    let dropped_502s = || {
        app.metric(
            Role::ApiGateway,
            "http_server_requests_total",
            &[("route", "/api/v1/product/{tail}"), ("status", "502")],
        )
    };

    app.switch_faults(Role::ApiGateway, &["upstream-drop=product:1"])
        .await;
    let (dropped, _, trace_id) = traced(&app, Method::GET, &url, json!(null)).await;
    let also_dropped = app.get(&url).await;
    let other_upstream = app
        .get(&app.url(Role::ApiGateway, "/api/v1/content/healthz"))
        .await;
    let served_meanwhile = product_served().await;
    let counted = dropped_502s().await;
    app.switch_faults(Role::ApiGateway, &["upstream-drop=product:0"])
        .await;
    let none_dropped = app.get(&url).await;
    app.switch_faults(Role::ApiGateway, &[]).await;
    let restored = app.get(&url).await;

    for reply in [&dropped, &also_dropped] {
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            reply.json(),
            json!({"message": "failure", "reason": "product dropped by fault upstream-drop"})
        );
    }
    assert_eq!(served_meanwhile, 0.0, "the product role was called");
    assert_eq!(counted, 2.0);
    assert_eq!(
        other_upstream.status,
        StatusCode::OK,
        "other upstreams pass"
    );
    let (server, _) = server_span_of(&receiver, &trace_id, "api-gateway").await;
    assert_eq!(
        server.text("ecommerce.fault.applied"),
        Some("upstream-drop")
    );
    assert_eq!(server.int("http.response.status_code"), Some(502));
    assert_eq!(none_dropped.status, StatusCode::OK);
    assert_eq!(restored.status, StatusCode::OK);
    assert_eq!(product_served().await, 2.0);
}

#[actix_web::test]
async fn product_failure_fails_one_product_only_until_switched_off() {
    let receiver = Receiver::start();
    let app = traced_switchable_shop(&receiver).await;
    let product = |id: &str| app.url(Role::Product, &format!("/products/{id}"));
    let documents = |ids: Value| {
        let url = app.url(Role::Product, "/documents");
        let app = &app;
        async move { app.json(Method::POST, &url, &ids).await.status }
    };

    app.switch_faults(Role::Product, &[&format!("product-failure={SWEET_TEA}")])
        .await;
    let (failed, _, trace_id) = traced(&app, Method::GET, &product(SWEET_TEA), json!(null)).await;
    let other = app.get(&product(HOT_CHOCOLATE)).await;
    let asked_for_it = documents(json!([HOT_CHOCOLATE, SWEET_TEA])).await;
    let not_asked = documents(json!([HOT_CHOCOLATE])).await;
    let whole_catalog = documents(json!([])).await;
    let holding_it = app.shopper_with(&[(SWEET_TEA, 1)]).await;
    let checkout = app.checkout(&holding_it, GOOD_CARD).await;
    let kept = app.cart(&holding_it).await;
    app.switch_faults(Role::Product, &[]).await;
    let restored = app.get(&product(SWEET_TEA)).await;

    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.json()["id"], HOT_CHOCOLATE);
    assert_eq!(asked_for_it, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(not_asked, StatusCode::OK);
    assert_eq!(whole_catalog, StatusCode::OK);
    assert!(checkout.status.is_server_error(), "{}", checkout.json());
    assert_eq!(
        kept,
        json!({ SWEET_TEA: 1 }),
        "a failed checkout keeps the cart"
    );
    let (server, _) = server_span_of(&receiver, &trace_id, "product").await;
    assert_eq!(
        server.text("ecommerce.fault.applied"),
        Some("product-failure")
    );
    assert!(server.failed());
    assert_eq!(restored.status, StatusCode::OK);
    assert_eq!(restored.json()["id"], SWEET_TEA);
}

/// Whether the roles run in this process (the default) rather than as processes of
/// their own (`ECOMMERCE_TEST_TOPOLOGY=processes`).
fn in_process() -> bool {
    std::env::var("ECOMMERCE_TEST_TOPOLOGY").as_deref() != Ok("processes")
}

/// CPU seconds the cpu-hog fault has burned: its thread's, when the shop runs in this
/// process (whose other tests burn CPU too); `role`'s process's otherwise.
async fn hog_seconds(app: &TestApp, role: Role) -> f64 {
    if !in_process() {
        return app.metric(role, "process_cpu_seconds_total", &[]).await;
    }
    let tasks = std::fs::read_dir("/proc/self/task").expect("Linux's /proc");
    tasks
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            if name.trim() != ecommerce::faults::CPU_HOG_THREAD {
                return None;
            }
            // utime and stime, in the kernel's USER_HZ (100) ticks, after `(comm) state`.
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks: f64 =
                fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .sum()
}

#[actix_web::test]
async fn cpu_hog_burns_a_core_for_its_role_until_switched_off() {
    let receiver = Receiver::start();
    let app = traced_switchable_shop(&receiver).await;
    let start = hog_seconds(&app, Role::Cart).await;

    app.switch_faults(Role::Cart, &["cpu-hog=cart"]).await;
    let (first, _, trace_id) =
        traced(&app, Method::GET, &app.url(Role::Cart, "/"), json!(null)).await;
    // Within a second on an idle machine; a busy one (a build alongside) gets longer.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut burned = 0.0;
    while burned <= 0.3 && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        burned = hog_seconds(&app, Role::Cart).await - start;
    }
    let active = app
        .metric(
            Role::Cart,
            "ecommerce_fault_active",
            &[("fault", "cpu-hog=cart")],
        )
        .await;
    app.switch_faults(Role::Cart, &[]).await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let stopped = hog_seconds(&app, Role::Cart).await;
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let later = hog_seconds(&app, Role::Cart).await;

    assert_eq!(first.status, StatusCode::OK);
    assert!(burned > 0.3, "{burned} CPU seconds burned");
    assert_eq!(active, 1.0);
    assert!(
        later - stopped < 0.3,
        "still burning: {} s in 1 s",
        later - stopped
    );
    let (server, _) = server_span_of(&receiver, &trace_id, "cart").await;
    assert_eq!(server.text("ecommerce.fault.applied"), Some("cpu-hog"));
}
