//! Answers as a test reads them: [`Reply`], raw HTTP ([`raw_http`]), Prometheus samples.
//!
//! [`Reply`] is read whole by the shop's own client; [`RawReply`] is the bytes off a socket
//! for a request sent byte for byte, where a client would normalise what a test probes.

use std::time::Duration;

use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use serde_json::Value;

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
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

/// The sum of the samples of `name` whose labels include all of `labels`.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            // OpenMetrics puts an exemplar after the value: ` # {trace_id="..."} 0.01`.
            let sample = line.split_once(" # ").map_or(line, |(sample, _)| sample);
            let (series, value) = sample.rsplit_once(' ')?;
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

/// The data of a chunked body (what a client hands its caller).
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

/// Whether `address` answers `GET /healthz` with 200 (blocking; a second at most).
pub fn answers_healthz(address: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(1)));
    let request = "GET /healthz HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n";
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}
