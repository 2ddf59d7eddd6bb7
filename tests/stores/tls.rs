//! The stores over TLS, on servers of the test's own that present a certificate from the
//! test's CA: `rediss://` for cart-data, session-data and the fault state; PostgreSQL's
//! `sslmode` for product-data and `migrate`; and `--ca-file`, the one trust of a process.

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use ecommerce::faults::shared::Control;
use ecommerce::faults::{FaultSwitch, Faults};
use ecommerce::role::Role;
use serde_json::json;

use support::ports::free_port;
use support::shop::{spawn_processes_with, spawn_with, TestApp, SWEET_TEA};
use support::store_tls::{PgTlsCluster, RedisTlsServer};
use support::tls::TestCa;

/// `/readyz`'s check of `store` on `role` (`up`, or `down: <the cause chain>`).
async fn readiness(app: &TestApp, role: Role, store: &str) -> String {
    let ready = app.get(&app.url(role, "/readyz")).await;
    ready.json()["checks"][store]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn search(app: &TestApp) -> support::http::Reply {
    let query = json!({"query": "tea", "page": {"size": 3}});
    app.json(Method::POST, &app.web("/api/v1/product/search"), &query)
        .await
}

/// Runs the binary to its end (at most 30 s), with `SSL_CERT_FILE` unset.
fn ecommerce(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecommerce"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("SSL_CERT_FILE")
        .env_remove("ECOMMERCE_CA_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ecommerce {args:?} did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Exited with code 2 and one line on stderr that names `option`.
fn assert_one_line_naming(output: &Output, option: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(option), "{stderr}");
    lines[0].to_string()
}

#[actix_web::test]
async fn carts_and_sessions_live_on_a_tls_redis_trusted_through_the_ca_file() {
    let ca = TestCa::new();
    let Some(redis) = RedisTlsServer::start(&ca) else {
        return;
    };
    let url = redis.url("localhost");
    let app = spawn_with(|s| {
        s.cart_data = url.parse().unwrap();
        s.session_data = url.parse().unwrap();
        s.ca_file = Some(ca.ca_file.clone());
    })
    .await;
    let session = app.session().await;

    let put = app.put_line(&session, SWEET_TEA, 2).await;

    assert_eq!(put.status, StatusCode::OK, "{}", put.json());
    assert_eq!(app.cart(&session).await, json!({SWEET_TEA: 2}));
    assert_eq!(readiness(&app, Role::Cart, "cart-data").await, "up");
}

#[actix_web::test]
async fn a_tls_redis_whose_certificate_is_not_trusted_answers_503_with_the_reason() {
    let ca = TestCa::new();
    let Some(redis) = RedisTlsServer::start(&ca) else {
        return;
    };
    let url = redis.url("localhost");
    // No --ca-file: the server's CA is no root of the system's.
    let app = spawn_with(|s| s.cart_data = url.parse().unwrap()).await;
    let sid = json!({"session_id": format!("untrusted{:08x}", rand::random::<u32>())});
    let started = Instant::now();

    let put = app
        .json(
            Method::PUT,
            &app.url(Role::Cart, &format!("/{SWEET_TEA}/1")),
            &sid,
        )
        .await;
    let took = started.elapsed();
    let check = readiness(&app, Role::Cart, "cart-data").await;

    assert_eq!(put.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(put.reason().contains("cart-data"), "{}", put.reason());
    assert!(took < Duration::from_secs(5), "refused after {took:?}");
    assert!(
        check.starts_with("down: cart-data is unavailable")
            && check.contains("TLS handshake with localhost:")
            && check.contains("invalid peer certificate: UnknownIssuer"),
        "{check}"
    );
}

#[actix_web::test]
async fn a_role_process_is_given_the_ca_file_and_reaches_a_tls_redis() {
    let ca = TestCa::new();
    let Some(redis) = RedisTlsServer::start(&ca) else {
        return;
    };
    let url = redis.url("127.0.0.1");
    let app = spawn_processes_with(|s| {
        s.roles = vec![Role::Cart];
        s.cart_data = url.parse().unwrap();
        s.ca_file = Some(ca.ca_file.clone());
    })
    .await;
    let sid = json!({"session_id": format!("process{:08x}", rand::random::<u32>())});

    let put = app
        .json(
            Method::PUT,
            &app.url(Role::Cart, &format!("/{SWEET_TEA}/3")),
            &sid,
        )
        .await;

    assert_eq!(put.status, StatusCode::OK, "{}", put.json());
    assert_eq!(put.json()["data"], json!({SWEET_TEA: 3}));
}

#[actix_web::test]
async fn the_fault_state_is_kept_on_a_tls_redis() {
    let ca = TestCa::new();
    let Some(redis) = RedisTlsServer::start(&ca) else {
        return;
    };
    let url = redis.url("localhost");
    let trust = ecommerce::startup::trust(Some(&ca.ca_file), None).unwrap();
    let control = |name: &str| {
        let switch = Arc::new(FaultSwitch::new(Faults::default()));
        Control::shared(&url, switch, Faults::default(), name.into()).unwrap()
    };
    let trusting = control("trusting").trusting(trust.redis());
    let untrusting = control("untrusting");

    let written = trusting
        .change(|state| state.faults = vec!["basic-bug".into()])
        .await;
    let read = control("reader").trusting(trust.redis()).read().await;
    let refused = untrusting.read().await.map(|_| ()).unwrap_err();

    assert!(written.is_ok(), "{:?}", written.err());
    assert_eq!(read.unwrap().1.faults, ["basic-bug"]);
    let chain = ecommerce::telemetry::logfmt::chain(&refused);
    assert!(chain.contains("UnknownIssuer"), "{chain}");
}

#[actix_web::test]
async fn product_data_over_verify_full_searches_on_encrypted_connections() {
    let ca = TestCa::new();
    let Some(pg) = PgTlsCluster::start(&ca).await else {
        return;
    };
    let db = pg.tls_only_database(true).await;
    let url = pg.url("localhost", &db, "sslmode=verify-full");
    let app = spawn_with(|s| {
        s.product_data = url.parse().unwrap();
        s.ca_file = Some(ca.ca_file.clone());
    })
    .await;

    let found = search(&app).await;

    assert_eq!(found.status, StatusCode::OK, "{}", found.json());
    assert_eq!(found.json()["results"].as_array().unwrap().len(), 3);
    let (encrypted, all) = pg.shop_connections().await;
    assert!(
        all >= 1 && encrypted == all,
        "{encrypted} of {all} encrypted"
    );
}

#[actix_web::test]
async fn sslmode_require_encrypts_without_checking_the_certificate() {
    let ca = TestCa::new();
    let Some(pg) = PgTlsCluster::start(&ca).await else {
        return;
    };
    let db = pg.tls_only_database(true).await;
    // No --ca-file: nothing could check the certificate, and nothing does.
    let url = pg.url("127.0.0.1", &db, "sslmode=require");
    let app = spawn_with(|s| s.product_data = url.parse().unwrap()).await;

    let found = search(&app).await;

    assert_eq!(found.status, StatusCode::OK, "{}", found.json());
}

#[actix_web::test]
async fn verify_full_refuses_a_certificate_for_another_name_and_verify_ca_takes_it() {
    let ca = TestCa::new();
    let Some(pg) = PgTlsCluster::start(&ca).await else {
        return;
    };
    let db = pg.tls_only_database(true).await;
    // Connects to 127.0.0.1, but expects a certificate for a name it does not hold.
    let url = |mode| {
        pg.url(
            "elsewhere.test",
            &db,
            &format!("hostaddr=127.0.0.1&sslmode={mode}"),
        )
    };
    let (full, chain) = (url("verify-full"), url("verify-ca"));
    let trusting = |url: String| {
        let ca_file = ca.ca_file.clone();
        spawn_with(move |s| {
            s.product_data = url.parse().unwrap();
            s.ca_file = Some(ca_file);
        })
    };
    let full = trusting(full).await;
    let chain_only = trusting(chain.clone()).await;
    let untrusting = spawn_with(|s| s.product_data = chain.parse().unwrap()).await;

    let refused = search(&full).await;
    let check = readiness(&full, Role::Product, "product-data").await;
    let taken = search(&chain_only).await;
    let unknown = readiness(&untrusting, Role::Product, "product-data").await;

    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        check.starts_with("down: product-data is unavailable")
            && check.contains("error performing TLS handshake")
            && check.contains("certificate not valid for name \"elsewhere.test\""),
        "{check}"
    );
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.json());
    assert!(unknown.contains("UnknownIssuer"), "{unknown}");
}

#[actix_web::test]
async fn migrate_loads_the_catalog_over_tls_trusting_the_ca_file() {
    let ca = TestCa::new();
    let Some(pg) = PgTlsCluster::start(&ca).await else {
        return;
    };
    let db = pg.tls_only_database(false).await;
    let url = pg.url("localhost", &db, "sslmode=verify-full");
    let ca_file = ca.ca_file.to_str().unwrap();

    let untrusted = ecommerce(&["migrate", "--product-data", &url]);
    let migrated = ecommerce(&["migrate", "--product-data", &url, "--ca-file", ca_file]);

    let line = assert_one_line_naming(&untrusted, "--product-data");
    assert!(line.contains("UnknownIssuer"), "{line}");
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let app = spawn_with(|s| {
        s.product_data = url.parse().unwrap();
        s.ca_file = Some(ca.ca_file.clone());
    })
    .await;
    assert_eq!(search(&app).await.status, StatusCode::OK);
}

#[test]
fn an_unusable_ca_file_or_sslmode_stops_the_binary_with_one_line_naming_the_option() {
    let dir = std::env::temp_dir().join(format!("ecommerce-ca-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_pem = dir.join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let not_pem = not_pem.to_str().unwrap().to_string();
    let not_pem = not_pem.as_str();
    let listen = format!("127.0.0.1:{}", free_port());
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--role", "product", "--listen", &listen];
        args.extend_from_slice(extra);
        ecommerce(&args)
    };
    let db = "postgres://postgres@127.0.0.1:1/products";

    for ca_file in ["/nonexistent/ca.pem", not_pem] {
        let line = assert_one_line_naming(&serve(&["--ca-file", ca_file]), "--ca-file");
        assert!(line.contains(ca_file), "{line}");
        let migrate = ecommerce(&["migrate", "--product-data", db, "--ca-file", ca_file]);
        assert_one_line_naming(&migrate, "--ca-file");
    }
    let unknown = format!("{db}?sslmode=verify");
    let line = assert_one_line_naming(&serve(&["--product-data", &unknown]), "--product-data");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(line.contains("sslmode 'verify'"), "{line}");
}
