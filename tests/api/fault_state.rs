//! One fault state for the whole shop: the web-gateway's admin API switches every process
//! (each role its own process on a real Redis, a second replica of a role included),
//! timed faults and game-day scenarios end by themselves, and a process that cannot
//! reach the state serves on with its last known faults.

use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use ecommerce::config::Secret;
use ecommerce::role::Role;
use serde_json::{json, Value};

use support::http::Reply;
use support::shop::{spawn_processes_with, spawn_with, TestApp, GOOD_CARD, SWEET_TEA};
use support::stores::RedisServer;

const TOKEN: &str = "test-admin-token";
const LANDS_WITHIN: Duration = Duration::from_secs(2);

/// Admin requests to the web-gateway, as methods of the app.
trait ShopAdmin {
    async fn admin(&self, method: Method, path: &str, token: Option<&str>, body: Value) -> Reply;
    async fn set_faults(&self, body: Value) -> Value;
    /// `/api/v1/admin/scenario` with the token.
    async fn scenario(&self, method: Method, body: Value) -> Reply;
}

impl ShopAdmin for TestApp {
    async fn admin(&self, method: Method, path: &str, token: Option<&str>, body: Value) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer.as_str()));
        }
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        self.send(method, &self.web(path), &headers, body).await
    }

    async fn set_faults(&self, body: Value) -> Value {
        let reply = self
            .admin(Method::PUT, "/api/v1/admin/faults", Some(TOKEN), body)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
        reply.json()
    }

    async fn scenario(&self, method: Method, body: Value) -> Reply {
        self.admin(method, "/api/v1/admin/scenario", Some(TOKEN), body)
            .await
    }
}

/// `GET /faults` of the process at `base`.
async fn faults_at(app: &TestApp, base: &str) -> Value {
    app.get(&format!("{base}/faults")).await.json()["faults"].clone()
}

/// Waits (at most `within`) until the process at `base` applies `expected`; how long it took.
async fn until_applied(app: &TestApp, base: &str, expected: Value, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let faults = faults_at(app, base).await;
        if faults == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{base} applies {faults}, not {expected}, after {within:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A paid checkout of one Sweet Tea through the web-gateway: its status.
async fn checkout_status(app: &TestApp) -> StatusCode {
    let session = app.shopper_with(&[(SWEET_TEA, 1)]).await;
    app.checkout(&session, GOOD_CARD).await.status
}

#[actix_web::test]
async fn without_a_token_there_is_no_admin_api_and_wrong_tokens_are_refused_then_slowed() {
    let closed = spawn_app_with_token(None).await;
    let open = spawn_app_with_token(Some(TOKEN)).await;

    let none = closed
        .admin(
            Method::GET,
            "/api/v1/admin/faults",
            Some(TOKEN),
            Value::Null,
        )
        .await;
    let missing = open
        .admin(Method::GET, "/api/v1/admin/faults", None, Value::Null)
        .await;
    // The missing token was the first wrong try of five.
    let mut wrong = Vec::new();
    for _ in 0..4 {
        let reply = open
            .admin(
                Method::PUT,
                "/api/v1/admin/faults",
                Some("guess"),
                json!({"faults": ["payment-failure=1"]}),
            )
            .await;
        wrong.push(reply.status);
    }
    let locked = open
        .admin(
            Method::GET,
            "/api/v1/admin/faults",
            Some(TOKEN),
            Value::Null,
        )
        .await;

    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{wrong:?}"
    );
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.header("retry-after").is_some());
    // Nothing was switched by the refused calls.
    assert_eq!(
        faults_at(&open, &open.url(Role::Payment, "")).await,
        json!([])
    );
}

async fn spawn_app_with_token(token: Option<&str>) -> TestApp {
    let token = token.map(|t| Secret::new(t.into()));
    spawn_with(move |settings| settings.admin_token = token).await
}

/// The shop (in the topology the environment selects) following a fault state in a
/// Redis of the test's own; the Redis stops with the test.
async fn shop_with_state() -> (TestApp, RedisServer) {
    let state = RedisServer::primary();
    let url = format!("{}/0", state.url());
    let app = spawn_with(|settings| {
        settings.admin_token = Some(Secret::new(TOKEN.into()));
        settings.fault_state = Some(url);
    })
    .await;
    (app, state)
}

#[actix_web::test]
async fn without_a_shared_state_the_api_switches_the_web_gateways_own_process() {
    let app = spawn_app_with_token(Some(TOKEN)).await;

    let state = app.set_faults(json!({"faults": ["basic-bug"]})).await;

    assert_eq!(state["shared"], false);
    assert_eq!(state["processes"].as_array().unwrap().len(), 1, "{state}");
    assert_eq!(state["processes"][0]["version"], state["version"]);
    assert_eq!(
        faults_at(&app, &app.url(Role::WebGateway, "")).await,
        json!(["basic-bug"])
    );
}

#[actix_web::test]
async fn bad_changes_are_refused_and_change_nothing() {
    let app = spawn_app_with_token(Some(TOKEN)).await;
    for (body, reason) in [
        (json!({"faults": ["meteor"]}), "unknown fault"),
        (json!({"faults": ["bind-localhost"]}), "at start"),
        (json!({"faults": ["basic-bug"], "for": "soon"}), "for:"),
        (json!({"faults": "basic-bug"}), ""),
    ] {
        let reply = app
            .admin(
                Method::PUT,
                "/api/v1/admin/faults",
                Some(TOKEN),
                body.clone(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            reply.reason().contains(reason),
            "{body}: {}",
            reply.reason()
        );
    }
    let traffic = app
        .admin(
            Method::PUT,
            "/api/v1/admin/traffic",
            Some(TOKEN),
            json!({"level": 11}),
        )
        .await;
    assert_eq!(traffic.status, StatusCode::BAD_REQUEST);
    let state = app
        .admin(
            Method::GET,
            "/api/v1/admin/faults",
            Some(TOKEN),
            Value::Null,
        )
        .await
        .json();
    assert_eq!(state["faults"], json!([]));
    assert_eq!(state["version"], 0);
    assert_eq!(state["traffic"]["level"], 1.0);
}

#[actix_web::test]
async fn one_change_switches_every_role_and_a_timed_fault_ends_by_itself() {
    let (app, _state) = shop_with_state().await;

    let state = app
        .set_faults(json!({"faults": ["payment-failure=1"], "for": "3s"}))
        .await;
    for role in Role::ALL {
        until_applied(
            &app,
            &app.url(role, ""),
            json!(["payment-failure=1"]),
            LANDS_WITHIN,
        )
        .await;
    }
    let declined = checkout_status(&app).await;
    let off_after = until_applied(
        &app,
        &app.url(Role::Payment, ""),
        json!([]),
        Duration::from_secs(6),
    )
    .await;

    assert_eq!(state["faults"], json!(["payment-failure=1"]), "{state}");
    assert_eq!(state["shared"], true);
    assert!(state["until"].as_u64().is_some(), "{state}");
    assert!(state["catalog"].as_array().unwrap().len() >= 6);
    assert_eq!(declined, StatusCode::PAYMENT_REQUIRED);
    assert!(off_after < Duration::from_secs(5), "{off_after:?}");
    assert_eq!(checkout_status(&app).await, StatusCode::OK);
    let changes = app
        .metric(
            Role::WebGateway,
            "ecommerce_fault_changes_total",
            &[("change", "faults")],
        )
        .await;
    assert_eq!(changes, 1.0);
}

#[actix_web::test]
async fn the_traffic_level_is_set_with_the_token_and_read_without_it() {
    let app = spawn_app_with_token(Some(TOKEN)).await;
    let before = app.get(&app.web("/api/v1/traffic")).await.json();

    let set = app
        .admin(
            Method::PUT,
            "/api/v1/admin/traffic",
            Some(TOKEN),
            json!({"level": 2.5}),
        )
        .await;
    let after = app.get(&app.web("/api/v1/traffic")).await.json();

    assert_eq!(before, json!({"level": 1.0}));
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(after, json!({"level": 2.5}));
}

/// A two-step game day: payment declines, then a cart outage, each for a second.
fn game_day() -> Value {
    json!({"steps": [
        {"at": "0s", "for": "1500ms", "faults": ["payment-failure=1"]},
        {"at": "1500ms", "for": "1500ms", "faults": ["cart-data-outage"]},
    ]})
}

/// The faults a process at `base` applies every 100 ms for `span`, without repeats.
async fn sequence_at(app: &TestApp, base: &str, span: Duration) -> Vec<Value> {
    let started = Instant::now();
    let mut seen: Vec<Value> = Vec::new();
    while started.elapsed() < span {
        let faults = faults_at(app, base).await;
        if seen.last() != Some(&faults) {
            seen.push(faults);
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

#[actix_web::test]
async fn a_scenario_runs_its_steps_in_order_and_an_abort_ends_it() {
    let (app, _state) = shop_with_state().await;

    let started = app.scenario(Method::PUT, game_day()).await;
    let seen = sequence_at(&app, &app.url(Role::Cart, ""), Duration::from_millis(4500)).await;
    let done = app.scenario(Method::GET, Value::Null).await.json();
    app.scenario(Method::PUT, game_day()).await;
    until_applied(
        &app,
        &app.url(Role::Cart, ""),
        json!(["payment-failure=1"]),
        LANDS_WITHIN,
    )
    .await;
    let aborted = app.scenario(Method::DELETE, Value::Null).await.json();

    assert_eq!(started.status, StatusCode::OK, "{}", started.json());
    assert_eq!(started.json()["state"], "running");
    assert_eq!(started.json()["steps"][0]["state"], "active");
    // (A process of its own may see the start up to a poll late.)
    let steps: Vec<&Value> = seen.iter().skip_while(|f| **f == json!([])).collect();
    assert_eq!(
        steps,
        [
            &json!(["payment-failure=1"]),
            &json!(["cart-data-outage"]),
            &json!([])
        ],
        "the steps in order, then nothing"
    );
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(aborted["state"], "aborted", "{aborted}");
    until_applied(&app, &app.url(Role::Cart, ""), json!([]), LANDS_WITHIN).await;
}

#[actix_web::test]
async fn every_process_of_a_topology_follows_the_shared_state_even_ones_started_later() {
    let state = RedisServer::primary();
    let url = format!("{}/0", state.url());
    let mut app = spawn_processes_with(|settings| {
        settings.admin_token = Some(Secret::new(TOKEN.into()));
        settings.fault_state = Some(url);
    })
    .await;
    let second_payment = app.start_another(Role::Payment).await;
    let payments = [app.url(Role::Payment, ""), second_payment];

    let state_after = app
        .set_faults(json!({"faults": ["payment-failure=1"]}))
        .await;
    for base in &payments {
        let took = until_applied(&app, base, json!(["payment-failure=1"]), LANDS_WITHIN).await;
        assert!(took <= LANDS_WITHIN, "{base}: {took:?}");
    }
    let declined = checkout_status(&app).await;
    let third_payment = app.start_another(Role::Payment).await;
    let at_start = faults_at(&app, &third_payment).await;
    let listed = app
        .admin(
            Method::GET,
            "/api/v1/admin/faults",
            Some(TOKEN),
            Value::Null,
        )
        .await
        .json();

    assert_eq!(state_after["shared"], true);
    assert_eq!(declined, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        at_start,
        json!(["payment-failure=1"]),
        "a process started later"
    );
    let processes = listed["processes"].as_array().unwrap();
    let payment_processes = processes
        .iter()
        .filter(|p| p["service"] == "payment")
        .count();
    assert_eq!(payment_processes, 3, "{listed}");
    assert_eq!(processes.len(), Role::ALL.len() + 2, "{listed}");
    assert!(
        processes.iter().all(|p| p["version"] == listed["version"]),
        "every process applied the last version: {listed}"
    );

    // A timed fault ends everywhere by itself.
    app.set_faults(json!({"faults": ["payment-failure=1"], "for": "1s"}))
        .await;
    for base in &payments {
        until_applied(&app, base, json!([]), Duration::from_secs(3)).await;
    }

    // A scenario runs its steps in order in another process than the one that took it,
    // and an abort ends it there too.
    app.scenario(Method::PUT, game_day()).await;
    let seen = sequence_at(&app, &app.url(Role::Cart, ""), Duration::from_millis(4500)).await;
    assert_eq!(
        seen.iter().filter(|f| **f != json!([])).collect::<Vec<_>>(),
        [&json!(["payment-failure=1"]), &json!(["cart-data-outage"])],
        "{seen:?}"
    );
    app.scenario(Method::PUT, game_day()).await;
    until_applied(
        &app,
        &payments[1],
        json!(["payment-failure=1"]),
        LANDS_WITHIN,
    )
    .await;
    app.scenario(Method::DELETE, Value::Null).await;
    until_applied(&app, &payments[1], json!([]), LANDS_WITHIN).await;
    drop(state);
}

#[actix_web::test]
async fn a_process_that_cannot_reach_the_state_keeps_its_last_faults_and_serves() {
    let mut state = RedisServer::primary();
    let url = format!("{}/0", state.url());
    let app = spawn_with(|settings| {
        settings.admin_token = Some(Secret::new(TOKEN.into()));
        settings.fault_state = Some(url);
    })
    .await;
    app.set_faults(json!({"faults": ["payment-failure=1"]}))
        .await;
    let payment = app.url(Role::Payment, "");
    until_applied(&app, &payment, json!(["payment-failure=1"]), LANDS_WITHIN).await;

    state.stop();
    let up = || app.metric(Role::Payment, "ecommerce_fault_state_up", &[]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while up().await != 0.0 {
        assert!(Instant::now() < deadline, "the state's outage never showed");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let declined = checkout_status(&app).await;
    let faults = faults_at(&app, &payment).await;
    let ready = app.get(&app.url(Role::Payment, "/readyz")).await.status;
    let listed = app
        .admin(
            Method::GET,
            "/api/v1/admin/faults",
            Some(TOKEN),
            Value::Null,
        )
        .await;
    state.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    while up().await != 1.0 {
        assert!(Instant::now() < deadline, "the state never came back");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(
        declined,
        StatusCode::PAYMENT_REQUIRED,
        "the last known faults stay"
    );
    assert_eq!(faults, json!(["payment-failure=1"]));
    assert_eq!(
        ready,
        StatusCode::OK,
        "faults are never a reason to be unready"
    );
    assert_eq!(listed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        listed.reason().contains("fault state"),
        "{}",
        listed.reason()
    );
}

#[actix_web::test]
async fn every_change_is_counted_by_what_changed() {
    let app = spawn_app_with_token(Some(TOKEN)).await;
    app.set_faults(json!({"faults": []})).await;
    app.set_faults(json!({"faults": ["basic-bug"]})).await;
    let scenario = app.scenario(Method::PUT, game_day()).await;
    assert_eq!(scenario.status, StatusCode::OK);
    let metrics = app.metrics(Role::WebGateway).await;
    let count = |change| {
        support::http::metric_value(
            &metrics,
            "ecommerce_fault_changes_total",
            &[("change", change)],
        )
    };
    assert_eq!(count("faults"), 2.0);
    assert_eq!(count("scenario"), 1.0);
}
