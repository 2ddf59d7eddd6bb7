//! Export as its users meet it: the binary sends spans and log records over https (trusting
//! a private CA through `SSL_CERT_FILE`), gzipped, to an OTLP receiver of the test's own,
//! and the content role fetches its images from an https bucket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use support::otlp::{ReceivedLog, Receiver, LOGS_PATH, TRACES_PATH};
use support::ports::free_port;
use support::tls::{TestCa, TlsStub};

const BIN: &str = env!("CARGO_BIN_EXE_ecommerce");
const WITHIN: Duration = Duration::from_secs(15);

/// `ecommerce serve` as its own process, its stderr kept; killed and reaped however the
/// test ends.
struct Shop {
    child: Child,
    /// Where its first role listens.
    address: String,
    log: Arc<Mutex<String>>,
}

impl Shop {
    /// Starts `serve <args>` with a clean environment but `env`, listening at
    /// `address`, and waits until it is healthy.
    async fn start(address: &str, args: &[&str], env: &[(&str, &str)]) -> Shop {
        Shop::start_listening(address, address, args, env).await
    }

    /// The same with `--listen <listen>`, waiting for (and talking to) `address`: with
    /// several roles, `listen` is the base the roles' ports are counted from.
    async fn start_listening(
        listen: &str,
        address: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Shop {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", listen])
            .args(args)
            .env_clear()
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let log: Arc<Mutex<String>> = Arc::default();
        let stderr = child.stderr.take().unwrap();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = kept.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let shop = Shop {
            child,
            address: address.to_string(),
            log,
        };
        let deadline = Instant::now() + WITHIN;
        while !support::http::answers_healthz(address) {
            assert!(
                Instant::now() < deadline,
                "{args:?} did not start:\n{}",
                shop.log()
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        shop
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The lines of its log that contain `needle`, once there are `count` of them.
    async fn lines_with(&self, needle: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + WITHIN;
        loop {
            let lines: Vec<String> = self
                .log()
                .lines()
                .filter(|l| l.contains(needle))
                .map(str::to_string)
                .collect();
            if lines.len() >= count {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle} line in:\n{}",
                self.log()
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends one raw request (which says `Connection: close`): the answer.
    async fn send(&self, request: String) -> String {
        let address = self.address.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(&address).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).unwrap();
            String::from_utf8_lossy(&answer).into_owned()
        })
        .await
        .unwrap()
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn local_address() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// A payment as caller `trace_id` (the caller's span `00f067aa0ba902b7`, sampled).
fn payment(trace_id: &str) -> String {
    let body = r#"{"amount": 3.5, "card": {"number": "4111 1111 1111 1111"}}"#;
    format!(
        "POST /process HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n\
         traceparent: 00-{trace_id}-00f067aa0ba902b7-01\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The payment role, declining every payment (so its handler logs a line of its own),
/// exporting to `receiver` every 100 ms with `env` besides.
async fn declining_payment(receiver: &Receiver, env: &[(&str, &str)]) -> Shop {
    let mut all = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.base.as_str()),
        ("OTEL_LOGS_EXPORTER", "otlp"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
    ];
    all.extend_from_slice(env);
    Shop::start(
        &local_address(),
        &[
            "--role",
            "payment",
            "--payment-delay-ms",
            "0",
            "--fault",
            "payment-failure=1",
        ],
        &all,
    )
    .await
}

fn the_record<'a>(logs: &'a [ReceivedLog], trace_id: &str, body: &str) -> Option<&'a ReceivedLog> {
    logs.iter()
        .find(|l| l.trace_id() == trace_id && l.body().is_some_and(|b| b.contains(body)))
}

#[actix_web::test]
async fn spans_and_log_records_arrive_gzipped_over_https_with_the_requests_trace() {
    let ca = TestCa::new();
    let receiver = Receiver::start_tls(ca.server_config());
    let ca_file = ca.ca_file.to_str().unwrap();
    let shop = declining_payment(
        &receiver,
        &[
            ("SSL_CERT_FILE", ca_file),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ],
    )
    .await;
    let trace_id = hex::encode(rand::random::<[u8; 16]>());

    let answer = shop.send(payment(&trace_id)).await;

    assert!(answer.starts_with("HTTP/1.1 402"), "{answer}");
    let spans = receiver
        .trace(&trace_id, WITHIN, |spans| {
            spans.iter().any(|s| s.is_server())
        })
        .await;
    let server = spans.iter().find(|s| s.is_server()).unwrap();
    assert_eq!(server.service, "payment");
    assert_eq!(server.parent_id(), "00f067aa0ba902b7");
    let request_line = "msg=request method=POST";
    let declined = "msg=\"payment declined\"";
    let logs = receiver
        .logs_until(WITHIN, |logs| {
            the_record(logs, &trace_id, request_line).is_some()
                && the_record(logs, &trace_id, declined).is_some()
        })
        .await;
    // The request line, logged once the request is served, names its ids itself.
    let line = the_record(&logs, &trace_id, request_line).unwrap();
    assert_eq!(line.span_id(), server.span_id());
    assert_eq!(line.service, "payment");
    assert_eq!(
        (
            line.record.severity_number,
            line.record.severity_text.as_str()
        ),
        (9, "INFO")
    );
    let body = line.body().unwrap();
    assert!(body.contains(&format!("trace_id={trace_id}")), "{body}");
    assert!(
        shop.log().lines().any(|l| l == body),
        "the line is not on stderr as sent:\n{body}\n{}",
        shop.log()
    );
    // A line logged inside the handler: the request's trace and flags.
    let inside = the_record(&logs, &trace_id, declined).unwrap();
    assert_eq!(inside.span_id(), server.span_id());
    assert_eq!(inside.record.flags, 1);
    assert_eq!(inside.record.severity_text, "WARN");
    assert!(inside.record.time_unix_nano > 0);
    let arrivals = receiver.arrivals();
    for path in [TRACES_PATH, LOGS_PATH] {
        assert!(arrivals.iter().any(|a| a.path == path), "{arrivals:?}");
    }
    assert!(
        arrivals.iter().all(|a| a.gzip && a.scheme == "https"),
        "{arrivals:?}"
    );
}

#[actix_web::test]
async fn without_the_ca_https_export_fails_with_one_warning_and_the_shop_keeps_serving() {
    let ca = TestCa::new();
    let receiver = Receiver::start_tls(ca.server_config());
    let shop = declining_payment(&receiver, &[]).await;
    let trace_id = hex::encode(rand::random::<[u8; 16]>());

    let first = shop.send(payment(&trace_id)).await;
    shop.lines_with("msg=\"traces export failed", 1).await;
    shop.lines_with("msg=\"logs export failed", 1).await;
    let second = shop.send(payment(&trace_id)).await;

    assert!(first.starts_with("HTTP/1.1 402"), "{first}");
    assert!(second.starts_with("HTTP/1.1 402"), "{second}");
    let warnings = shop.lines_with("export failed", 2).await;
    assert!(
        warnings.iter().all(|l| l.contains("level=warn")),
        "{warnings:?}"
    );
    // Once per outage, not once per batch, and never fed back into the log queue.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(shop.lines_with("export failed", 2).await.len(), 2);
    assert!(receiver.arrivals().is_empty(), "{:?}", receiver.arrivals());
    assert!(support::http::answers_healthz(&shop.address));
}

/// A base port whose `offsets` are all free (several roles listen there).
fn base_port_for(offsets: &[u16]) -> u16 {
    for _ in 0..50 {
        let base = free_port();
        let free = offsets.iter().all(|offset| {
            base.checked_add(*offset)
                .is_some_and(|port| TcpListener::bind(("127.0.0.1", port)).is_ok())
        });
        if free {
            return base;
        }
    }
    panic!("no base port with {offsets:?} free");
}

#[actix_web::test]
async fn a_process_of_several_roles_names_each_log_record_by_its_role() {
    let receiver = Receiver::start();
    let cart = ecommerce::role::Role::Cart.offset();
    let payment_offset = ecommerce::role::Role::Payment.offset();
    let base = base_port_for(&[cart, payment_offset]);
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.base.as_str()),
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_LOGS_EXPORTER", "otlp"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
    ];
    let shop = Shop::start_listening(
        &format!("127.0.0.1:{base}"),
        &format!("127.0.0.1:{}", base + payment_offset),
        &[
            "--role",
            "cart,payment",
            "--payment-delay-ms",
            "0",
            "--fault",
            "payment-failure=1",
        ],
        &env,
    )
    .await;
    let trace_id = hex::encode(rand::random::<[u8; 16]>());

    let answer = shop.send(payment(&trace_id)).await;

    assert!(answer.starts_with("HTTP/1.1 402"), "{answer}");
    let logs = receiver
        .logs_until(WITHIN, |logs| {
            the_record(logs, &trace_id, "msg=request method=POST").is_some()
                && logs
                    .iter()
                    .any(|l| l.body().is_some_and(|b| b.contains("msg=\"serving\"")))
        })
        .await;
    let line = the_record(&logs, &trace_id, "msg=request method=POST").unwrap();
    assert_eq!(line.service, "payment");
    let declined = the_record(&logs, &trace_id, "payment declined").unwrap();
    assert_eq!(declined.service, "payment");
    // Lines of no request and no role's thread are the process's own.
    let serving = logs
        .iter()
        .find(|l| l.body().is_some_and(|b| b.contains("msg=\"serving\"")))
        .unwrap();
    assert_eq!(serving.service, "ecommerce");
    assert!(serving.trace_id().is_empty());
    assert!(receiver.spans().is_empty(), "traces were switched off");
}

/// An https bucket holding one image, `/bucket/tea.png`.
fn bucket(ca: &TestCa, image: &'static [u8]) -> TlsStub {
    TlsStub::start(ca.server_config(), move |cfg| {
        cfg.route(
            "/bucket/tea.png",
            web::get().to(move || async move {
                HttpResponse::Ok().content_type("image/png").body(image)
            }),
        );
    })
}

#[actix_web::test]
async fn the_content_role_serves_an_image_fetched_over_https() {
    let ca = TestCa::new();
    let image: &'static [u8] = b"PNG, or as good as one for a test";
    let bucket = bucket(&ca, image);
    let source = format!("{}/bucket", bucket.url);
    let args = ["--role", "content", "--content-source", source.as_str()];
    let ca_file = ca.ca_file.to_str().unwrap();
    let trusting = Shop::start(&local_address(), &args, &[("SSL_CERT_FILE", ca_file)]).await;
    let untrusting = Shop::start(&local_address(), &args, &[]).await;
    let get = "GET /tea.png HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n";

    let fetched = trusting.send(get.to_string()).await;
    let refused = untrusting.send(get.to_string()).await;

    assert!(fetched.starts_with("HTTP/1.1 200"), "{fetched}");
    assert!(fetched.as_bytes().ends_with(image), "{fetched}");
    assert!(refused.starts_with("HTTP/1.1 502"), "{refused}");
}
