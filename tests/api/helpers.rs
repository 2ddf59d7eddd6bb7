//! The test harness: starts the whole shop and offers typed request helpers.
//!
//! By default every role runs in this test process on embedded stores, each on a free
//! port. With `ECOMMERCE_TEST_TOPOLOGY=processes` every role runs as its own process of
//! the built binary, wired through the api-gateway as in production, on the stores named
//! by `ECOMMERCE_TEST_CART_DATA`, `ECOMMERCE_TEST_SESSION_DATA` and
//! `ECOMMERCE_TEST_PRODUCT_DATA` (memory when unset). The latter names a PostgreSQL
//! server: each app gets a fresh database there, migrated, and dropped afterwards.

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
    /// The admin listeners of the roles that have one (`Settings::admin_listen`).
    admin_urls: BTreeMap<Role, String>,
    pub http: awc::Client,
    running: Running,
    /// Dropped after the roles (fields drop in order).
    database: Option<crate::support::TestDatabase>,
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

/// Asserts a 400 whose reason mentions `reason_part` (in any case).
pub fn bad_request(reply: &Reply, reason_part: &str) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let reason = reply.reason();
    assert!(
        reason.to_lowercase().contains(&reason_part.to_lowercase()),
        "reason {reason:?} does not mention {reason_part:?}"
    );
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
async fn test_settings(
    customize: impl FnOnce(&mut Settings),
) -> (Settings, Option<crate::support::TestDatabase>) {
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
    let database = match std::env::var("ECOMMERCE_TEST_PRODUCT_DATA") {
        Ok(server) if !server.is_empty() => {
            let database = crate::support::TestDatabase::create(&server).await;
            settings.product_data = StoreUrl::Postgres(database.url.clone());
            Some(database)
        }
        _ => None,
    };
    customize(&mut settings);
    (settings, database)
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

/// A port for a role process (or a dead upstream) that nothing else in this test run is
/// given. Ports come from 20000-31999, below the kernel's ephemeral range, so no server
/// binding port 0 and no outgoing connection takes one between now and the role's own
/// bind; each is handed out once per run, from a random start so that concurrent runs
/// rarely meet, and skipped when something listens there already.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;
    const LOW: u32 = 20_000;
    const RANGE: u32 = 12_000;
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let next = NEXT.get_or_init(|| AtomicU32::new(rand::random::<u32>() % RANGE));
    for _ in 0..RANGE {
        let port = (LOW + next.fetch_add(1, Ordering::Relaxed) % RANGE) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + RANGE)
}

/// `settings` wired for a topology of processes: each role at its URL in `urls` (and its
/// admin listener in `admin_urls`), the api-gateway and upstreams there unless a test set
/// its own. `ecommerce::cli::serve_command` turns it into each role's command line.
pub fn wired(
    settings: &Settings,
    urls: &BTreeMap<Role, String>,
    admin_urls: &BTreeMap<Role, String>,
) -> Settings {
    let address = |url: &String| url.trim_start_matches("http://").to_string();
    let mut wired = settings.clone();
    wired.listen = urls.iter().map(|(r, u)| (*r, address(u))).collect();
    wired.admin_listen = admin_urls.iter().map(|(r, u)| (*r, address(u))).collect();
    wired.api_gateway_url = settings
        .api_gateway_url
        .clone()
        .or_else(|| urls.get(&Role::ApiGateway).cloned());
    for upstream in Role::UPSTREAMS {
        if let Some(url) = urls.get(&upstream) {
            wired
                .upstreams
                .entry(upstream)
                .or_insert_with(|| url.clone());
        }
    }
    wired.workers = settings.workers.max(1);
    wired.shutdown_timeout = Duration::from_secs(1);
    wired
}

async fn spawn_processes(settings: Settings) -> TestApp {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        let urls: BTreeMap<Role, String> = settings
            .roles
            .iter()
            .map(|r| (*r, format!("http://127.0.0.1:{}", free_port())))
            .collect();
        let admin_urls = settings
            .admin_listen
            .keys()
            .map(|r| (*r, format!("http://127.0.0.1:{}", free_port())))
            .collect();
        let mut app = TestApp {
            urls,
            admin_urls,
            http: client(),
            running: Running::Processes(Vec::new()),
            database: None,
        };
        let wired = wired(&settings, &app.urls, &app.admin_urls);
        for role in &settings.roles {
            let command = ecommerce::cli::serve_command(&wired, *role);
            let child = Command::new(env!("CARGO_BIN_EXE_ecommerce"))
                .args(command.args)
                .envs(command.env)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .spawn()
                .expect("the binary starts");
            // Owned by the app at once, so that a failure below still stops it.
            app.adopt(child);
        }
        match app.started(&settings.roles).await {
            Ok(()) => return app,
            // A port taken by another run between choosing and binding it: try others.
            Err(why) if attempt < ATTEMPTS => eprintln!("the shop did not start ({why}); retrying"),
            Err(why) => panic!("the shop did not start: {why}"),
        }
    }
    unreachable!()
}

impl TestApp {
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

    /// Waits until every role process is up, answers as itself on its own port, and is
    /// still running (a process that lost its port to another exits at once).
    async fn started(&mut self, roles: &[Role]) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        for role in roles {
            loop {
                self.still_running(roles)?;
                let healthy = match self.http.get(self.url(*role, "/healthz")).send().await {
                    Ok(r) => r.status().is_success(),
                    Err(_) => false,
                };
                if healthy {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("{role} did not become healthy"));
                }
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
            if *role != Role::WebGateway {
                let mut answer = self
                    .http
                    .get(self.url(*role, "/"))
                    .send()
                    .await
                    .map_err(|e| format!("{role}: {e}"))?;
                let info: Value = answer.json().await.map_err(|e| format!("{role}: {e}"))?;
                if info["service"] != role.as_str() {
                    return Err(format!("{role}'s port answers as {}", info["service"]));
                }
            }
        }
        self.still_running(roles)
    }

    /// Makes `child` the app's, to be killed and reaped when the app is dropped.
    fn adopt(&mut self, child: Child) {
        match &mut self.running {
            Running::Processes(children) => children.push(child),
            Running::InProcess(_) => unreachable!("an in-process shop has no role processes"),
        }
    }

    fn still_running(&mut self, roles: &[Role]) -> Result<(), String> {
        if let Running::Processes(children) = &mut self.running {
            for (role, child) in roles.iter().zip(children.iter_mut()) {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("{role} exited ({status})"));
                }
            }
        }
        Ok(())
    }

    /// Waits until `role` answers `/healthz`.
    #[allow(dead_code)] // for tests that restart a role
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

/// A bare session id no other test (or earlier run on a shared store) uses.
pub fn unique_sid(prefix: &str) -> String {
    use rand::Rng;
    format!("{prefix}-{:016x}", rand::thread_rng().gen::<u64>())
}

/// The `<sid>` part of a signed `<sid>.<signature>` session value.
pub fn sid_of(session: &str) -> &str {
    session.split('.').next().unwrap_or_default()
}

impl TestApp {
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

    /// A new shopper with `lines` (product, quantity) in their cart.
    pub async fn shopper_with(&self, lines: &[(&str, u32)]) -> String {
        let session = self.session().await;
        for (product, quantity) in lines {
            let reply = self.put_line(&session, product, *quantity).await;
            assert_eq!(reply.status, StatusCode::OK);
        }
        session
    }

    /// `host:port` of `role`, for raw connections.
    pub fn address(&self, role: Role) -> String {
        self.urls[&role].trim_start_matches("http://").to_string()
    }
}

/// The sum of the samples of `name` whose labels include all of `labels`.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let wanted = metric == name
                && labels.iter().all(|(k, v)| {
                    rest.split(',')
                        .any(|pair| pair == format!("{k}=\"{v}\"").as_str())
                });
            wanted.then(|| value.parse::<f64>().expect("a sample value"))
        })
        .sum()
}

/// An answer read off a raw connection.
pub struct RawReply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawReply {
    /// The value of the first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `request` byte for byte (no client normalises anything) and reads the answer
/// until the server closes; `request` should say `Connection: close`.
pub async fn raw_http(address: &str, request: String) -> RawReply {
    let address = address.to_string();
    actix_web::rt::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&address).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).expect("reads the answer");
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer");
        let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let mut body = bytes[split + 4..].to_vec();
        let chunked = head.lines().any(|l| {
            l.to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked")
        });
        if chunked {
            body = dechunk(&body);
        }
        RawReply { status, head, body }
    })
    .await
    .expect("the raw request ran")
}

fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = bytes.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(std::str::from_utf8(&bytes[..end]).unwrap().trim(), 16)
            .expect("a chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&bytes[end + 2..end + 2 + size]);
        bytes = &bytes[end + 2 + size + 2..];
    }
}

pub use crate::support::Stub;

/// A stub upstream that answers every request with what it received:
/// `{"method", "path", "query", "body", "headers": {name: value}}`, with the status a
/// path `/status/<code>` names (200 otherwise) and header `x-echo: yes`.
pub fn echo_stub() -> Stub {
    Stub::start(|cfg| {
        cfg.default_service(actix_web::web::to(
            |req: actix_web::HttpRequest, body: Bytes| async move {
                let status = req
                    .path()
                    .strip_prefix("/status/")
                    .and_then(|s| s.parse::<u16>().ok())
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .unwrap_or(StatusCode::OK);
                let headers: serde_json::Map<String, Value> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            Value::String(v.to_str().unwrap_or_default().to_string()),
                        )
                    })
                    .collect();
                actix_web::HttpResponse::build(status)
                    .insert_header(("x-echo", "yes"))
                    .json(serde_json::json!({
                        "method": req.method().as_str(),
                        "path": req.uri().path(),
                        "query": req.uri().query(),
                        "body": String::from_utf8_lossy(&body),
                        "headers": headers,
                    }))
            },
        ));
    })
}
