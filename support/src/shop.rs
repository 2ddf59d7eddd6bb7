//! The whole shop for one test ([`TestApp`], from [`spawn_app`]) and typed requests to it.
//!
//! The requests are a shopper's (sessions, carts, checkouts) and an operator's (metrics).
//!
//! By default every role runs in the test's process on embedded stores, each on a free
//! port. With `ECOMMERCE_TEST_TOPOLOGY=processes` every role runs as its own process of
//! the built binary, wired through the api-gateway as in production, on the stores named
//! by `ECOMMERCE_TEST_CART_DATA`, `ECOMMERCE_TEST_SESSION_DATA` and
//! `ECOMMERCE_TEST_PRODUCT_DATA` (memory when unset). The latter names a PostgreSQL
//! server: each app gets a fresh database there, migrated, and dropped afterwards.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use ecommerce::config::{DelayRange, Secret, Settings};
use ecommerce::role::Role;
use ecommerce::startup::Application;
use ecommerce::stores::StoreUrl;
use serde_json::Value;

use crate::http::{metric_value, Reply};
use crate::ports::free_port;
use crate::processes::{self, Output, Topology};
use crate::stores::TestDatabase;

pub const SECRET: &str = "test-session-secret";
/// A Luhn-valid test card, and one that is not.
pub const GOOD_CARD: &str = "4111 1111 1111 1111";
pub const BAD_CARD: &str = "4111 1111 1111 1112";
pub const SWEET_TEA: &str = "f95e2475";

/// The shop a test talks to; everything it started stops when it is dropped.
pub struct TestApp {
    urls: BTreeMap<Role, String>,
    /// The admin listeners of the roles that have one (`Settings::admin_listen`).
    admin_urls: BTreeMap<Role, String>,
    pub http: awc::Client,
    running: Running,
    /// Dropped after the roles (fields drop in order).
    database: Option<TestDatabase>,
}

enum Running {
    InProcess(Vec<ServerHandle>),
    /// Boxed: a topology carries its settings, far larger than a few handles.
    Processes(Box<Topology>),
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
            // Killed, not drained: nothing a test checks happens after its app is gone.
            Running::Processes(topology) => topology.kill_all(),
        }
    }
}

/// The shop with test defaults: no payment delay, a known session secret.
pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// The shop with settings adjusted by `customize`, in the topology that
/// `ECOMMERCE_TEST_TOPOLOGY` selects.
pub async fn spawn_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let (settings, database) = test_settings(customize).await;
    let mut app = if std::env::var("ECOMMERCE_TEST_TOPOLOGY").as_deref() == Ok("processes") {
        spawn_processes(settings).await
    } else {
        spawn_in_process(settings).await
    };
    app.database = database;
    app
}

/// The production topology whatever `ECOMMERCE_TEST_TOPOLOGY` says: one process of the
/// built binary per role, wired through the api-gateway.
pub async fn spawn_processes_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let (settings, database) = test_settings(customize).await;
    let mut app = spawn_processes(settings).await;
    app.database = database;
    app
}

/// Test defaults (no payment delay, a known session secret, stores from the
/// environment) adjusted by `customize`.
async fn test_settings(customize: impl FnOnce(&mut Settings)) -> (Settings, Option<TestDatabase>) {
    let mut settings = test_defaults(&Role::ALL);
    if let Some(url) = env_store("ECOMMERCE_TEST_CART_DATA") {
        settings.cart_data = url;
    }
    if let Some(url) = env_store("ECOMMERCE_TEST_SESSION_DATA") {
        settings.session_data = url;
    }
    let database = match std::env::var("ECOMMERCE_TEST_PRODUCT_DATA") {
        Ok(server) if !server.is_empty() => {
            let database = TestDatabase::create(&server).await;
            settings.product_data = StoreUrl::Postgres(database.url.clone());
            Some(database)
        }
        _ => None,
    };
    customize(&mut settings);
    (settings, database)
}

/// The tests' settings for `roles` on free ports: no payment delay, the known session
/// secret [`SECRET`], one worker, a one-second shutdown and a five-second call timeout.
pub fn test_defaults(roles: &[Role]) -> Settings {
    let mut settings = Settings::local(roles.to_vec(), 0);
    settings.session_secret = Secret::new(SECRET.into());
    settings.payment_delay = DelayRange {
        min_ms: 0,
        max_ms: 0,
    };
    settings.workers = 1;
    settings.shutdown_timeout = Duration::from_secs(1);
    settings.request_timeout = Duration::from_secs(5);
    settings
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
    let admin_urls = roles
        .iter()
        .filter_map(|r| Some((*r, format!("http://{}", app.admin_address(*r)?))))
        .collect();
    let handles = app.handles();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        urls,
        admin_urls,
        http: client(),
        running: Running::InProcess(handles),
        database: None,
    }
}

/// `settings` wired for a topology of processes ([`processes::wire`]) as tests run it:
/// at least one worker, and a one-second drain so that a stop never waits long.
pub fn wired(
    settings: &Settings,
    urls: &BTreeMap<Role, String>,
    admin_urls: &BTreeMap<Role, String>,
) -> Settings {
    let mut wired = processes::wire(settings, urls, admin_urls);
    wired.workers = settings.workers.max(1);
    wired.shutdown_timeout = Duration::from_secs(1);
    wired
}

async fn spawn_processes(settings: Settings) -> TestApp {
    let binary = processes::binary().unwrap_or_else(|e| panic!("{e}"));
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        // Ports a process binds itself, later: ones no other test of this run is given.
        let urls: BTreeMap<Role, String> = settings
            .roles
            .iter()
            .map(|r| (*r, format!("http://127.0.0.1:{}", free_port())))
            .collect();
        let admin_urls: BTreeMap<Role, String> = settings
            .admin_listen
            .keys()
            .map(|r| (*r, format!("http://127.0.0.1:{}", free_port())))
            .collect();
        let wired = wired(&settings, &urls, &admin_urls);
        let mut topology = Topology::new(&binary, wired).env("RUST_LOG", "warn");
        match topology.start_all(|_| Output::Inherit).await {
            Ok(_) => {
                return TestApp {
                    urls,
                    admin_urls,
                    http: client(),
                    running: Running::Processes(Box::new(topology)),
                    database: None,
                }
            }
            // A port taken by another run between choosing and binding it: try others
            // (dropping the topology kills what it started).
            Err(why) if attempt < ATTEMPTS => {
                eprintln!("the shop did not start ({}); retrying", chain(&why))
            }
            Err(why) => panic!("the shop did not start: {}", chain(&why)),
        }
    }
    unreachable!()
}

/// An error and its causes, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

impl TestApp {
    /// Starts one more process of `role` beside those of a topology of processes, at a
    /// port of its own with the same settings (a second replica, say); its base URL.
    pub async fn start_another(&mut self, role: Role) -> String {
        let Running::Processes(topology) = &mut self.running else {
            panic!("only a topology of processes starts another process");
        };
        let listen = format!("127.0.0.1:{}", free_port());
        let address = listen.clone();
        topology
            .start(
                role,
                move |settings| {
                    settings.listen.insert(role, address);
                    settings.admin_listen.remove(&role);
                },
                Output::Inherit,
            )
            .await
            .unwrap_or_else(|e| panic!("another {role} did not start: {}", chain(&e)));
        format!("http://{listen}")
    }

    /// The URL of `path` on `role`.
    pub fn url(&self, role: Role, path: &str) -> String {
        format!("{}{path}", self.urls[&role])
    }

    /// The URL of `path` among `role`'s operational endpoints: its admin listener when it
    /// has one, else its main one.
    pub fn ops_url(&self, role: Role, path: &str) -> String {
        let base = self.admin_urls.get(&role).unwrap_or(&self.urls[&role]);
        format!("{base}{path}")
    }

    /// The URL of `path` on the web-gateway, the shop's public face.
    pub fn web(&self, path: &str) -> String {
        self.url(Role::WebGateway, path)
    }

    /// `host:port` of `role`, for raw connections.
    pub fn address(&self, role: Role) -> String {
        self.urls[&role].trim_start_matches("http://").to_string()
    }

    /// Waits until `role` answers `/healthz` (for tests that restart a role).
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
        // Room for a generated catalog's whole `/documents` (tens of megabytes).
        let body = response.body().limit(64 * 1024 * 1024).await.unwrap();
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

    /// A new shopper with `lines` (product, quantity) in their cart.
    pub async fn shopper_with(&self, lines: &[(&str, u32)]) -> String {
        let session = self.session().await;
        for (product, quantity) in lines {
            let reply = self.put_line(&session, product, *quantity).await;
            assert_eq!(reply.status, StatusCode::OK);
        }
        session
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

    /// The cart of `session` (signed or not) read straight from the cart role.
    pub async fn cart_direct(&self, session: &str) -> Value {
        let reply = self
            .json(
                Method::POST,
                &self.url(Role::Cart, "/"),
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

    /// The Prometheus text of `role`.
    pub async fn metrics(&self, role: Role) -> String {
        let reply = self.get(&self.ops_url(role, "/metrics")).await;
        assert_eq!(reply.status, StatusCode::OK);
        String::from_utf8(reply.body.to_vec()).expect("metrics are text")
    }

    /// The value of a metric of `role` (summed over series matching `labels`; 0 when
    /// there is none yet).
    pub async fn metric(&self, role: Role, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.metrics(role).await, name, labels)
    }

    /// Payments the payment role accepted, and the money they moved: the witness of
    /// every charge.
    pub async fn payments(&self) -> (f64, f64) {
        let count = self
            .metric(
                Role::Payment,
                "ecommerce_payments_total",
                &[("outcome", "success")],
            )
            .await;
        let amount = self
            .metric(Role::Payment, "ecommerce_payment_amount_total", &[])
            .await;
        (count, amount)
    }
}

/// A bare session id no other test (or earlier run on a shared store) uses.
pub fn unique_sid(prefix: &str) -> String {
    use rand::Rng;
    format!("{prefix}-{:016x}", rand::thread_rng().gen::<u64>())
}

/// The `<sid>` part of a signed `<sid>.<signature>` session value.
pub fn sid_of(session: &str) -> &str {
    session.split('.').next().unwrap_or_default()
}
