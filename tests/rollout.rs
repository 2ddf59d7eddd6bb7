//! Replacing role processes while shoppers keep coming: a new process starts beside the
//! old one on the same address (`--reuse-port`), the old one drains on SIGTERM
//! (`--drain-secs`) and exits 0, and no request fails; and a role stopped alone answers
//! every request it had accepted.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ecommerce::config::{DelayRange, Settings};
use ecommerce::domain::{SessionId, SessionSigner};
use ecommerce::role::Role;
use serde_json::json;

use support::http::{metric_value, raw_http};
use support::ports::free_port;
use support::processes::{self, Output, ProcessId, Stopped, Topology};
use support::shop::{test_defaults, unique_sid, wired, GOOD_CARD, SECRET, SWEET_TEA};
use support::stores;

/// Every role of `roles` its own process on free ports, binding with SO_REUSEPORT and
/// draining for `drain` on SIGTERM. Each process has an admin listener of its own, so
/// that its `/readyz` and `/metrics` are its own even while two processes share the
/// shop's port.
fn topology(roles: &[Role], drain: Duration, customize: impl FnOnce(&mut Settings)) -> Topology {
    let mut settings = test_defaults(roles);
    customize(&mut settings);
    let url = |_: &Role| format!("http://127.0.0.1:{}", free_port());
    let urls: BTreeMap<Role, String> = roles.iter().map(|r| (*r, url(r))).collect();
    let admin_urls: BTreeMap<Role, String> = roles.iter().map(|r| (*r, url(r))).collect();
    let mut wired = wired(&settings, &urls, &admin_urls);
    wired.reuse_port = true;
    wired.drain = drain;
    wired.shutdown_timeout = Duration::from_secs(5);
    let binary = processes::binary().unwrap_or_else(|e| panic!("{e}"));
    Topology::new(binary, wired).env("RUST_LOG", "warn")
}

fn id_of(topology: &Topology, role: Role) -> ProcessId {
    let mut ids = topology.processes().iter().filter(|p| p.role() == role);
    let id = ids.next().map(|p| p.id()).expect("a process of the role");
    assert!(ids.next().is_none(), "one process of {role} at a time here");
    id
}

fn admin_of(topology: &Topology, id: ProcessId) -> String {
    let process = topology.processes().iter().find(|p| p.id() == id).unwrap();
    process
        .admin_listen()
        .expect("an admin listener")
        .to_string()
}

/// Waits until process `id` itself (its own admin listener) says it is ready.
async fn wait_until_ready(topology: &Topology, id: ProcessId, within: Duration) {
    let process = topology.processes().iter().find(|p| p.id() == id).unwrap();
    let deadline = Instant::now() + within;
    loop {
        let ready = process.readiness().await;
        if ready == Some(200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new {} is not ready within {within:?} (/readyz: {ready:?})",
            process.role()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts a stop was a clean exit after SIGTERM.
fn assert_exited_zero(stopped: &Stopped) {
    assert!(
        !stopped.killed,
        "{} (pid {}) still ran after SIGTERM and was killed",
        stopped.role, stopped.pid
    );
    assert!(
        stopped.status.is_some_and(|s| s.success()),
        "{} (pid {}) exited with {:?}",
        stopped.role,
        stopped.pid,
        stopped.status
    );
}

/// `net.ipv4.tcp_migrate_req` set to 1 while it lives, the previous value restored after.
/// Without it, connections still queued on a SO_REUSEPORT listener that closes are reset
/// rather than handed to the listener that remains.
struct MigrateRequests {
    previous: Option<String>,
}

impl MigrateRequests {
    const PATH: &'static str = "/proc/sys/net/ipv4/tcp_migrate_req";

    fn on() -> MigrateRequests {
        let unchanged = MigrateRequests { previous: None };
        let previous = match std::fs::read_to_string(Self::PATH) {
            Ok(value) if value.trim() == "1" => return unchanged,
            Ok(value) => value,
            Err(e) => {
                eprintln!(
                    "NOTE: {} cannot be read ({e}; a kernel before 5.14?): connections \
                     queued on a closing listener may be reset",
                    Self::PATH
                );
                return unchanged;
            }
        };
        match std::fs::write(Self::PATH, "1") {
            Ok(()) => MigrateRequests {
                previous: Some(previous),
            },
            Err(e) => {
                // SAFETY: geteuid takes nothing and cannot fail.
                let root = unsafe { libc::geteuid() } == 0;
                eprintln!(
                    "NOTE: cannot set {} to 1 ({e}; {}): connections queued on a closing \
                     listener may be reset",
                    Self::PATH,
                    if root { "root" } else { "not root" }
                );
                unchanged
            }
        }
    }
}

impl Drop for MigrateRequests {
    fn drop(&mut self) {
        if let Some(previous) = &self.previous {
            if let Err(e) = std::fs::write(Self::PATH, previous.trim()) {
                eprintln!("cannot restore {} to {previous:?}: {e}", Self::PATH);
            }
        }
    }
}

/// Whether wrk is there: a test that needs it fails under CI (CI=true) and is skipped,
/// loudly, elsewhere.
fn wrk_installed() -> bool {
    let found = Command::new("wrk")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("wrk is not installed; scripts/test.sh installs it");
        }
        eprintln!("SKIPPED: wrk is not installed (apt-get install wrk); run scripts/test.sh");
    }
    found
}

/// A shopper's traffic for wrk: a product search, a cart read and a cart line set in
/// turn, for `session`. Its `done` prints wrk's counts (`WRKRESULT`, as xtask's benches
/// read them), the answers that were not 2xx (`non2xx`), the answers that closed their
/// connection (`closing`), and the first answer that was not 2xx (`WRKFIRSTFAILURE`).
fn script(session: &str) -> String {
    r#"local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local json = {["Content-Type"] = "application/json"}
  local session = '{"session_id":"SESSION"}'
  local search = wrk.format("POST", "/api/v1/product/search", json,
    '{"query":"tea","page":{"size":3}}')
  local cart = wrk.format("POST", "/api/v1/cart", json, session)
  requests = {}
  for quantity = 1, 3 do
    table.insert(requests, search)
    table.insert(requests, cart)
    table.insert(requests,
      wrk.format("PUT", "/api/v1/cart/PRODUCT/" .. quantity, json, session))
  end
  turn = 0
  non2xx = 0
  closing = 0
  first_failure = ""
end

function request()
  turn = turn % #requests + 1
  return requests[turn]
end

function response(status, headers, body)
  local connection = headers["Connection"] or headers["connection"] or ""
  if string.lower(connection) == "close" then
    closing = closing + 1
  end
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_failure == "" then
      first_failure = status .. " " .. string.gsub(string.sub(body or "", 1, 300), "\n", " ")
    end
  end
end

function done(summary, latency, requests)
  local non2xx, closing, first = 0, 0, ""
  for _, thread in ipairs(threads) do
    non2xx = non2xx + thread:get("non2xx")
    closing = closing + thread:get("closing")
    if first == "" then first = thread:get("first_failure") end
  end
  local e = summary.errors
  io.write(string.format(
    "WRKRESULT requests=%.0f duration_us=%.0f p50_us=%.0f p99_us=%.0f connect=%.0f read=%.0f write=%.0f status=%.0f timeout=%.0f non2xx=%.0f closing=%.0f\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, non2xx, closing))
  io.write("WRKFIRSTFAILURE " .. first .. "\n")
end
"#
    .replace("SESSION", session)
    .replace("PRODUCT", SWEET_TEA)
}

/// wrk's counts, from its `WRKRESULT` line.
#[derive(Debug)]
struct WrkCounts {
    fields: BTreeMap<String, u64>,
    first_failure: String,
}

impl WrkCounts {
    fn parse(output: &str) -> WrkCounts {
        let line = output
            .lines()
            .find_map(|l| l.strip_prefix("WRKRESULT "))
            .unwrap_or_else(|| panic!("wrk printed no WRKRESULT line:\n{output}"));
        let fields = line
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.parse().expect("a count")))
            .collect();
        let first_failure = output
            .lines()
            .find_map(|l| l.strip_prefix("WRKFIRSTFAILURE"))
            .unwrap_or_default()
            .trim()
            .to_string();
        WrkCounts {
            fields,
            first_failure,
        }
    }

    fn get(&self, name: &str) -> u64 {
        self.fields[name]
    }
}

/// A wrk run in the background, stopped on request (SIGINT: it stops and reports) and
/// killed if it is dropped still running.
struct Wrk {
    child: Child,
}

impl Wrk {
    /// At most `bound` long; `stop` ends it sooner.
    fn start(url: &str, script: &Path, bound: Duration) -> Wrk {
        let child = Command::new("wrk")
            .args(["-t2", "-c8", "--timeout", "5s"])
            .arg(format!("-d{}s", bound.as_secs()))
            .arg("-s")
            .arg(script)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wrk starts");
        Wrk { child }
    }

    /// Stops the run and returns its counts (within 10 s).
    async fn stop(mut self) -> (WrkCounts, String) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "wrk ended before the rollout did: make its bound longer"
        );
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) takes plain integers; the child is not reaped, so the pid is its.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "wrk did not stop on SIGINT");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        let mut output = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut output)
            .unwrap();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut output)
            .unwrap();
        (WrkCounts::parse(&output), output)
    }
}

impl Drop for Wrk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The requests process `id` served, from its own `/metrics`.
async fn served(topology: &Topology, id: ProcessId) -> f64 {
    let request = "GET /metrics HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n";
    let reply = raw_http(&admin_of(topology, id), request.into()).await;
    metric_value(
        &String::from_utf8_lossy(&reply.body),
        "http_server_requests_total",
        &[],
    )
}

#[actix_web::test]
async fn replacing_cart_product_and_the_web_gateway_under_load_fails_no_request() {
    if !wrk_installed() {
        return;
    }
    let _migrate = MigrateRequests::on();
    // Carts on Redis when there is one (a new cart process finds the old one's carts).
    let redis = stores::redis();
    let mut shop = topology(&Role::ALL, Duration::from_secs(2), |s| {
        if let Some(url) = &redis {
            s.cart_data = url.parse().unwrap();
        }
    });
    shop.start_all(|_| Output::Inherit)
        .await
        .unwrap_or_else(|e| panic!("the shop did not start: {e}"));
    let sid = SessionId::parse(&unique_sid("rollout")).unwrap();
    let session = SessionSigner::new(SECRET.as_bytes()).sign(&sid);
    let lua = std::env::temp_dir().join(format!("{}.lua", sid.as_str()));
    std::fs::write(&lua, script(&session)).unwrap();
    let web = format!("http://{}", shop.settings().listen[&Role::WebGateway]);

    let wrk = Wrk::start(&web, &lua, Duration::from_secs(30));
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    let mut replaced = Vec::new();
    for role in [Role::Cart, Role::Product, Role::WebGateway] {
        let old = id_of(&shop, role);
        let admin = format!("127.0.0.1:{}", free_port());
        let started = Instant::now();
        let new = shop
            .start(
                role,
                |s| {
                    s.admin_listen.insert(role, admin);
                },
                Output::Inherit,
            )
            .await
            .unwrap_or_else(|e| panic!("a second {role} did not start beside the first: {e}"));
        wait_until_ready(&shop, new, Duration::from_secs(10)).await;
        let ready = started.elapsed();
        let stopping = Instant::now();
        let stopped = shop
            .stop(old)
            .await
            .unwrap_or_else(|e| panic!("the old {role} did not stop: {e}"));
        replaced.push((role, new, ready, stopping.elapsed(), stopped));
    }
    // Traffic on the new processes alone for a while.
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    let (counts, output) = wrk.stop().await;
    let mut served_by_new = Vec::new();
    for (role, new, ..) in &replaced {
        served_by_new.push((*role, served(&shop, *new).await));
    }
    let _ = shop.stop_all().await;
    let _ = std::fs::remove_file(&lua);

    eprintln!("{output}");
    for (role, _, ready, stop, stopped) in &replaced {
        eprintln!("{role}: new ready in {ready:?}, old stopped in {stop:?} ({stopped:?})");
    }
    eprintln!("served by the new processes: {served_by_new:?}");
    for (.., stopped) in &replaced {
        assert_exited_zero(stopped);
    }
    let failed = ["non2xx", "status", "connect", "read", "write", "timeout"]
        .map(|name| (name, counts.get(name)));
    assert!(
        failed.iter().all(|(_, count)| *count == 0),
        "requests failed during the rollout: {failed:?} of {} requests; first answer not \
         2xx: {:?}",
        counts.get("requests"),
        counts.first_failure
    );
    assert!(
        counts.get("requests") >= 1000,
        "too little traffic to prove anything: {counts:?}"
    );
    assert!(
        counts.get("closing") > 0,
        "no answer closed its connection: nothing drained"
    );
    for (role, requests) in served_by_new {
        assert!(requests > 0.0, "the new {role} served nothing");
    }
}

/// `POST path` with a JSON `body` on a connection of its own, in a thread: the answer's
/// status and head, or how the exchange failed.
fn post(address: &str, path: &str, body: &str) -> JoinHandle<std::io::Result<(u16, String)>> {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let address = address.to_string();
    std::thread::spawn(move || {
        let mut stream = TcpStream::connect(&address)?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.write_all(request.as_bytes())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let head = answer
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((status, head))
    })
}

/// The answer to a request [`post`] sent, waited for without blocking the runtime (the
/// thread's read timeout bounds it).
async fn answer(
    handle: JoinHandle<std::io::Result<(u16, String)>>,
) -> Result<(u16, String), String> {
    while !handle.is_finished() {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    match handle.join() {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the request's thread panicked".into()),
    }
}

#[actix_web::test]
async fn a_terminated_role_answers_every_request_it_accepted_and_exits_zero() {
    const ACCEPTED: usize = 6;
    let drain = Duration::from_secs(1);
    // Each payment outlasts the drain: it is still being served when the listener closes.
    let delay = Duration::from_millis(2500);
    let mut shop = topology(&[Role::Payment], drain, |s| {
        let ms = delay.as_millis() as u64;
        s.payment_delay = DelayRange {
            min_ms: ms,
            max_ms: ms,
        };
    });
    shop.start_all(|_| Output::Inherit)
        .await
        .unwrap_or_else(|e| panic!("payment did not start: {e}"));
    let payment = id_of(&shop, Role::Payment);
    let address = shop.settings().listen[&Role::Payment].clone();
    let admin = admin_of(&shop, payment);
    let body = json!({"amount": 2.5, "card": {"number": GOOD_CARD}}).to_string();
    let get =
        |path: &str| format!("GET {path} HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n");
    let in_flight = || async {
        let metrics = raw_http(&admin, get("/metrics")).await;
        metric_value(
            &String::from_utf8_lossy(&metrics.body),
            "http_server_active_requests",
            &[],
        )
    };

    let accepted: Vec<_> = (0..ACCEPTED)
        .map(|_| post(&address, "/process", &body))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    // The scrape counts itself.
    while in_flight().await < ACCEPTED as f64 {
        assert!(
            Instant::now() < deadline,
            "payment never had {ACCEPTED} requests in flight"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let signalled = Instant::now();
    let during_drain = async {
        actix_web::rt::time::sleep(drain / 4).await;
        let ready = raw_http(&admin, get("/readyz")).await;
        let late = answer(post(&address, "/process", &body)).await;
        (ready.status, late)
    };
    let (stopped, (ready_while_draining, late)) =
        futures_util::join!(shop.stop(payment), during_drain);
    let took = signalled.elapsed();
    let stopped = stopped.unwrap_or_else(|e| panic!("payment did not stop: {e}"));
    eprintln!("payment exited {took:?} after SIGTERM: {stopped:?}");

    for (i, request) in accepted.into_iter().enumerate() {
        match answer(request).await {
            Ok((200, _)) => {}
            other => panic!("accepted request {i} was not answered 200: {other:?}"),
        }
    }
    assert_eq!(ready_while_draining, 503, "/readyz while draining");
    match &late {
        Ok((200, head)) => assert!(
            head.to_ascii_lowercase().contains("connection: close"),
            "an answer while draining keeps its connection open: {head}"
        ),
        other => panic!("a request sent while draining was not answered 200: {other:?}"),
    }
    assert_exited_zero(&stopped);
    let bound = drain + Duration::from_secs(5);
    assert!(
        took <= bound,
        "exited {took:?} after SIGTERM, more than {bound:?}"
    );
    assert!(
        took >= drain,
        "exited {took:?} after SIGTERM: it did not drain for {drain:?}"
    );
}
