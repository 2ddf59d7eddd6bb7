//! 250 clients each sending a search body one byte a second hold nothing but their own
//! connection: other shoppers' searches through the web-gateway stay fast.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::rt::net::TcpStream;
use ecommerce::role::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::shop::{spawn_processes_with, TestApp};

const ATTACKERS: usize = 250;
const ATTACK_FOR: Duration = Duration::from_secs(12);
const PROBE_FOR: Duration = Duration::from_secs(8);

/// What one slow client saw: answers by status, and connections it could not open.
#[derive(Default, Debug)]
struct Seen {
    answers: Vec<u16>,
    refused: usize,
}

/// Sends a 64-byte search body one byte a second, reconnecting whenever the server
/// answers or closes, until `until`.
async fn slow_client(address: String, until: Instant) -> Seen {
    let mut seen = Seen::default();
    let head = "POST /api/v1/product/search HTTP/1.1\r\nHost: shop\r\n\
                Content-Type: application/json\r\nContent-Length: 64\r\n\r\n";
    while Instant::now() < until {
        let Ok(mut stream) = TcpStream::connect(&address).await else {
            seen.refused += 1;
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if stream.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        let mut answer = [0u8; 512];
        loop {
            if Instant::now() >= until || stream.write_all(b" ").await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut answer)).await {
                Err(_) => continue,
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => {
                    let text = String::from_utf8_lossy(&answer[..n]);
                    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                    seen.answers.push(status.unwrap_or(0));
                    break;
                }
            }
        }
    }
    seen
}

/// Searches one after another for `span`, returning each one's status and time taken.
async fn probe(app: &TestApp, span: Duration, pause: Duration) -> Vec<(StatusCode, Duration)> {
    let url = app.web("/api/v1/product/search");
    let body = serde_json::json!({"query": "tea", "page": {"size": 3}});
    let end = Instant::now() + span;
    let mut taken = Vec::new();
    while Instant::now() < end {
        let started = Instant::now();
        let reply = app.json(actix_web::http::Method::POST, &url, &body).await;
        taken.push((reply.status, started.elapsed()));
        actix_web::rt::time::sleep(pause).await;
    }
    taken
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[actix_web::test]
async fn slow_request_bodies_do_not_starve_other_shoppers() {
    let _serial = crate::SERIAL.lock().await;
    let app = spawn_processes_with(|_| {}).await;
    let unloaded = probe(&app, Duration::from_secs(2), Duration::from_millis(20)).await;
    let mut unloaded: Vec<Duration> = unloaded.into_iter().map(|(_, t)| t).collect();
    let unloaded = median(&mut unloaded).max(Duration::from_millis(1));

    let until = Instant::now() + ATTACK_FOR;
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|_| actix_web::rt::spawn(slow_client(app.address(Role::WebGateway), until)))
        .collect();
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let loaded = probe(&app, PROBE_FOR, Duration::from_millis(50)).await;
    let mut seen = Vec::new();
    for attacker in attackers {
        seen.push(attacker.await.expect("the slow client ran"));
    }

    let failed: Vec<_> = loaded
        .iter()
        .filter(|(s, _)| *s != StatusCode::OK)
        .collect();
    assert!(
        failed.is_empty(),
        "searches failed under attack: {failed:?}"
    );
    let mut times: Vec<Duration> = loaded.iter().map(|(_, t)| *t).collect();
    let slowest = *times.iter().max().unwrap();
    let typical = median(&mut times);
    println!(
        "searches: {} under attack, median {typical:?} (unloaded {unloaded:?}), slowest {slowest:?}",
        loaded.len()
    );
    assert!(slowest < Duration::from_millis(500), "slowest {slowest:?}");
    assert!(
        typical < unloaded * 10,
        "median {typical:?} vs {unloaded:?} unloaded"
    );
    // The slow clients were cut off by the body deadline (408), not served.
    let answers: Vec<u16> = seen.iter().flat_map(|s| s.answers.clone()).collect();
    assert!(!answers.is_empty(), "no slow client was cut off");
    assert!(answers.iter().all(|s| *s == 408), "{answers:?}");
    assert_eq!(seen.iter().map(|s| s.refused).sum::<usize>(), 0);
}
