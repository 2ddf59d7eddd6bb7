//! The test harness: starts the whole shop and offers typed request helpers.
//!
//! By default every role runs in this test process on embedded stores, each on a free
//! port. With `ECOMMERCE_TEST_TOPOLOGY=processes` every role runs as its own process of
//! the built binary, wired through the api-gateway as in production, on the stores named
//! by `ECOMMERCE_TEST_CART_DATA`, `ECOMMERCE_TEST_SESSION_DATA` and
//! `ECOMMERCE_TEST_PRODUCT_DATA` (memory when unset).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use ecommerce::config::{DelayRange, Secret, Settings};
use ecommerce::role::Role;
use ecommerce::startup::Application;
use ecommerce::stores::StoreUrl;
use serde_json::Value;

pub const SECRET: &str = "test-session-secret";
/// A Luhn-valid test card, and one that is not.
pub const GOOD_CARD: &str = "4111 1111 1111 1111";
pub const BAD_CARD: &str = "4111 1111 1111 1112";
pub const SWEET_TEA: &str = "f95e2475";

pub struct TestApp {
    urls: BTreeMap<Role, String>,
    pub http: awc::Client,
    running: Running,
}

enum Running {
    InProcess(Vec<ServerHandle>),
    Processes(Vec<Child>),
}

impl Drop for TestApp {
    fn drop(&mut self) {
        match &mut self.running {
            Running::InProcess(handles) => {
                for handle in handles.drain(..) {
                    // Not awaited: the test's runtime ends with the test.
                    drop(handle.stop(false));
                }
            }
            Running::Processes(children) => {
                for child in children.iter_mut() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `reason` of a JSON failure.
    pub fn reason(&self) -> String {
        let json = self.json();
        assert_eq!(json["message"], "failure", "{json}");
        json["reason"].as_str().unwrap_or_default().to_string()
    }
}

/// The shop with test defaults: no payment delay, a known session secret.
pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// The shop with settings adjusted by `customize`.
pub async fn spawn_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::local(Role::ALL.to_vec(), 0);
    settings.session_secret = Secret::new(SECRET.into());
    settings.payment_delay = DelayRange {
        min_ms: 0,
        max_ms: 0,
    };
    settings.workers = 1;
    settings.shutdown_timeout = Duration::from_secs(1);
    settings.request_timeout = Duration::from_secs(5);
    if let Some(url) = env_store("ECOMMERCE_TEST_CART_DATA") {
        settings.cart_data = url;
    }
    if let Some(url) = env_store("ECOMMERCE_TEST_SESSION_DATA") {
        settings.session_data = url;
    }
    if let Some(url) = env_store("ECOMMERCE_TEST_PRODUCT_DATA") {
        settings.product_data = url;
    }
    customize(&mut settings);
    if std::env::var("ECOMMERCE_TEST_TOPOLOGY").as_deref() == Ok("processes") {
        spawn_processes(settings).await
    } else {
        spawn_in_process(settings).await
    }
}

fn env_store(var: &str) -> Option<StoreUrl> {
    let value = std::env::var(var).ok().filter(|v| !v.is_empty())?;
    Some(value.parse().unwrap_or_else(|e| panic!("{var}: {e}")))
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .disable_redirects()
        .finish()
}

async fn spawn_in_process(settings: Settings) -> TestApp {
    let roles = settings.roles.clone();
    let app = Application::build(settings).await.expect("the shop starts");
    let urls = roles
        .iter()
        .map(|r| (*r, format!("http://{}", app.address(*r).unwrap())))
        .collect();
    let handles = app.handles();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        urls,
        http: client(),
        running: Running::InProcess(handles),
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn store_arg(url: &StoreUrl) -> String {
    match url {
        StoreUrl::Memory => "memory".into(),
        StoreUrl::Redis(u) | StoreUrl::Postgres(u) => u.clone(),
    }
}

/// The command-line options that give a role process the same settings.
pub fn role_args(settings: &Settings, role: Role, urls: &BTreeMap<Role, String>) -> Vec<String> {
    let addr = |r: Role| urls[&r].trim_start_matches("http://").to_string();
    let mut args = vec![
        "serve".into(),
        "--role".into(),
        role.as_str().into(),
        "--listen".into(),
        addr(role),
        "--api-gateway-url".into(),
        urls[&Role::ApiGateway].clone(),
        "--session-secret".into(),
        settings.session_secret.expose().into(),
        "--payment-delay-ms".into(),
        format!(
            "{}-{}",
            settings.payment_delay.min_ms, settings.payment_delay.max_ms
        ),
        "--cart-data".into(),
        store_arg(&settings.cart_data),
        "--session-data".into(),
        store_arg(&settings.session_data),
        "--product-data".into(),
        store_arg(&settings.product_data),
        "--workers".into(),
        "1".into(),
        "--request-timeout-ms".into(),
        settings.request_timeout.as_millis().to_string(),
        "--cart-ttl-secs".into(),
        settings.cart_ttl.as_secs().to_string(),
        "--shutdown-timeout-secs".into(),
        "1".into(),
    ];
    for (flag, url) in [
        ("--cart-data-replica", &settings.cart_data_replica),
        ("--session-data-replica", &settings.session_data_replica),
    ] {
        if let Some(url) = url {
            args.extend([flag.into(), store_arg(url)]);
        }
    }
    if let Some(source) = &settings.content_source {
        args.extend(["--content-source".into(), source.clone()]);
    }
    for fault in settings.faults.active() {
        args.extend(["--fault".into(), fault]);
    }
    for upstream in Role::UPSTREAMS {
        args.extend([
            "--upstream".into(),
            format!("{upstream}={}", urls[&upstream]),
        ]);
    }
    args
}

async fn spawn_processes(settings: Settings) -> TestApp {
    let urls: BTreeMap<Role, String> = settings
        .roles
        .iter()
        .map(|r| (*r, format!("http://127.0.0.1:{}", free_port())))
        .collect();
    let mut children = Vec::new();
    for role in &settings.roles {
        let child = Command::new(env!("CARGO_BIN_EXE_ecommerce"))
            .args(role_args(&settings, *role, &urls))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("the binary starts");
        children.push(child);
    }
    let app = TestApp {
        urls,
        http: client(),
        running: Running::Processes(children),
    };
    for role in &settings.roles {
        app.wait_healthy(*role).await;
    }
    app
}

impl TestApp {
    /// The URL of `path` on `role`.
    pub fn url(&self, role: Role, path: &str) -> String {
        format!("{}{path}", self.urls[&role])
    }

    /// The URL of `path` on the web-gateway, the shop's public face.
    pub fn web(&self, path: &str) -> String {
        self.url(Role::WebGateway, path)
    }

    pub async fn wait_healthy(&self, role: Role) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = self.http.get(self.url(role, "/healthz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{role} did not become healthy");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `body` (raw bytes) with `method` to `url`, reading the whole answer.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut request = self.http.request(method, url);
        for (k, v) in headers {
            request = request.insert_header((*k, *v));
        }
        let mut response = request
            .send_body(body.into())
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let body = response.body().limit(4 * 1024 * 1024).await.unwrap();
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body,
        }
    }

    pub async fn get(&self, url: &str) -> Reply {
        self.send(Method::GET, url, &[], Bytes::new()).await
    }

    pub async fn json(&self, method: Method, url: &str, body: &Value) -> Reply {
        self.send(
            method,
            url,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    /// A new shopper: loads the page and returns its signed `session_id` cookie value.
    pub async fn session(&self) -> String {
        let page = self.get(&self.web("/")).await;
        assert_eq!(page.status, StatusCode::OK);
        let cookie = page
            .header("set-cookie")
            .expect("a page load sets a session");
        cookie
            .split(';')
            .next()
            .and_then(|kv| kv.strip_prefix("session_id="))
            .expect("the cookie is session_id")
            .to_string()
    }

    /// The cart of `session` as the web-gateway shows it.
    pub async fn cart(&self, session: &str) -> Value {
        let reply = self
            .json(
                Method::POST,
                &self.web("/api/v1/cart"),
                &serde_json::json!({"session_id": session}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
        reply.json()["data"].clone()
    }

    /// Sets a cart line through the web-gateway.
    pub async fn put_line(&self, session: &str, product: &str, quantity: u32) -> Reply {
        self.json(
            Method::PUT,
            &self.web(&format!("/api/v1/cart/{product}/{quantity}")),
            &serde_json::json!({"session_id": session}),
        )
        .await
    }

    /// A checkout request body paying with `card`.
    pub fn order(session: &str, card: &str) -> Value {
        let address = serde_json::json!({
            "street_1": "1 Main St", "street_2": "", "city": "Springfield",
            "state": "OR", "postal_code": "97477", "country": "US"
        });
        serde_json::json!({
            "amount": 0,
            "session_id": session,
            "shipping": {"address": address},
            "billing": {"address": address, "card": {
                "name": "Ada Lovelace", "number": card, "expiration": "12/30",
                "security_code": "123", "postal_code": "97477"
            }},
        })
    }

    pub async fn checkout(&self, session: &str, card: &str) -> Reply {
        self.json(
            Method::POST,
            &self.web("/api/v1/checkout/process"),
            &Self::order(session, card),
        )
        .await
    }
}
