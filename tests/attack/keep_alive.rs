//! A caller that sends a request the moment its server closes the pooled connection gets
//! no answer; the shop sends such a call once more on a fresh connection when it is safe
//! to repeat, so no shopper sees a 502 for it, and never repeats one that is not.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use ecommerce::role::Role;
use serde_json::json;

use support::shop::{spawn_with, TestApp, GOOD_CARD};

const CALLS: usize = 20;

/// An upstream that answers the first request of every connection and closes the
/// connection when the second arrives, unanswered: as if its idle timer fired just then.
struct ClosingUpstream {
    url: String,
    requests: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl ClosingUpstream {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (r, d) = (requests.clone(), dropped.clone());
        // Serves until the test process ends; it only ever hears this test's calls.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, d) = (r.clone(), d.clone());
                std::thread::spawn(move || serve(stream, &r, &d));
            }
        });
        ClosingUpstream {
            url,
            requests,
            dropped,
        }
    }
}

fn serve(stream: TcpStream, requests: &AtomicUsize, dropped: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    for served in 0.. {
        if !read_request(&mut reader) {
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        if served == 1 {
            dropped.fetch_add(1, Ordering::SeqCst);
            return; // closed, unanswered
        }
        let body = r#"{"message":"success","results":[]}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads one request (head and a Content-Length body); false when the peer closed.
fn read_request(reader: &mut BufReader<TcpStream>) -> bool {
    let mut length = 0;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).is_ok()
}

async fn searches(app: &TestApp, url: &str) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for _ in 0..CALLS {
        let reply = app.json(Method::POST, url, &json!({"query": "tea"})).await;
        statuses.push(reply.status);
    }
    statuses
}

#[actix_web::test]
async fn the_api_gateway_sends_a_safe_call_again_when_its_connection_was_closing() {
    let _serial = crate::SERIAL.lock().await;
    let product = ClosingUpstream::start();
    let url = product.url.clone();
    let app = spawn_with(|settings| {
        settings.upstreams.insert(Role::Product, url);
    })
    .await;

    let direct = searches(&app, &app.url(Role::ApiGateway, "/api/v1/product/search")).await;
    let through_web = searches(&app, &app.web("/api/v1/product/search")).await;

    assert!(direct
        .iter()
        .chain(&through_web)
        .all(|s| *s == StatusCode::OK));
    let dropped = product.dropped.load(Ordering::SeqCst);
    assert!(dropped >= CALLS / 2, "the race was met {dropped} times");
    assert_eq!(
        product.requests.load(Ordering::SeqCst),
        2 * CALLS + dropped,
        "each dropped call was sent once more, and only those"
    );
}

#[actix_web::test]
async fn the_web_gateway_sends_a_safe_call_again_when_its_connection_was_closing() {
    let _serial = crate::SERIAL.lock().await;
    let api_gateway = ClosingUpstream::start();
    let url = api_gateway.url.clone();
    let app = spawn_with(|settings| settings.api_gateway_url = Some(url)).await;

    let statuses = searches(&app, &app.web("/api/v1/product/search")).await;

    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert!(api_gateway.dropped.load(Ordering::SeqCst) >= CALLS / 2);
}

#[actix_web::test]
async fn a_call_that_is_not_safe_to_repeat_is_sent_once() {
    let _serial = crate::SERIAL.lock().await;
    let payment = ClosingUpstream::start();
    let url = payment.url.clone();
    let app = spawn_with(|settings| {
        settings.upstreams.insert(Role::Payment, url);
    })
    .await;
    let charge = json!({"amount": 1.5, "card": {"number": GOOD_CARD}});

    let mut statuses = Vec::new();
    for _ in 0..CALLS {
        let url = app.url(Role::ApiGateway, "/api/v1/payment/process");
        statuses.push(app.json(Method::POST, &url, &charge).await.status);
    }

    let dropped = payment.dropped.load(Ordering::SeqCst);
    let failed = statuses
        .iter()
        .filter(|s| **s == StatusCode::BAD_GATEWAY)
        .count();
    assert!(dropped > 0);
    assert_eq!(
        failed, dropped,
        "each unanswered payment is a 502, not a retry"
    );
    assert_eq!(payment.requests.load(Ordering::SeqCst), CALLS);
}
