//! `cargo xtask otlp-sink`: an OTLP/HTTP traces endpoint for benchmarks and tests that
//! accepts spans and counts them; nothing is stored.
//!
//! It is the tests' receiver (`support::otlp`: the same routes, the same decoding) with a
//! collector that counts ([`Tally`]): requests, body bytes and spans per `service.name`,
//! and with `--mark KEY` the server spans and those of them whose attribute KEY is true.
//! It listens on 127.0.0.1 only.
//!
//! ```text
//! cargo xtask otlp-sink                      a free port, printed on stderr
//! cargo xtask otlp-sink --port 4318
//! cargo xtask otlp-sink --port 0 --port-file target/sink.port
//! cargo xtask otlp-sink --mark synthetic_request
//!
//! GET /stats        the counts so far, as JSON
//! GET /healthz      200 "ok"
//! SIGTERM, SIGINT   print the counts (JSON, one line) on stdout and exit 0
//! ```

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use support::otlp::{Collector, Endpoint, Received, Verdict, TRACES_PATH};
use tokio::signal::unix::{signal, SignalKind};

use crate::topology::Causes;

#[derive(Debug, clap::Args)]
#[command(after_long_help = COUNTS)]
pub struct Args {
    /// Port on 127.0.0.1 (0: a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Write the port here once listening.
    #[arg(long, value_name = "FILE")]
    port_file: Option<PathBuf>,
    /// Also count server spans, and those whose attribute KEY is true.
    #[arg(long, value_name = "KEY")]
    mark: Option<String>,
}

const COUNTS: &str = "\
GET /stats answers the counts so far as JSON; SIGTERM or SIGINT prints them (one line) on
stdout and exits 0. GET /healthz answers 200.

The counts: requests (POST /v1/traces answered 200), bytes (their bodies), spans,
spans_by_service; with --mark KEY, server_spans_by_service and marked_by_service (server
spans whose attribute KEY is true); undecodable (bodies that are not an
ExportTraceServiceRequest; still answered 200 and counted in requests and bytes),
rejected (anything other than POST /v1/traces with a protobuf body, answered
404/405/411/415), uptime_s.";

pub fn run(args: Args) -> Result<(), Box<dyn StdError>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SinkError::Runtime);
    let outcome = runtime.and_then(|runtime| runtime.block_on(serve(args)));
    outcome.map_err(|e| Causes::of(&e).into())
}

async fn serve(args: Args) -> Result<(), SinkError> {
    // Before the port is known to anyone: a SIGTERM from then on prints the counts.
    let mut terminate = signal(SignalKind::terminate()).map_err(SinkError::Runtime)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(SinkError::Runtime)?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", args.port)).map_err(|source| {
        SinkError::Listen {
            port: args.port,
            source,
        }
    })?;
    let port = listener
        .local_addr()
        .map_err(|source| SinkError::Listen {
            port: args.port,
            source,
        })?
        .port();
    let tally = Arc::new(Tally::new(args.mark));
    let endpoint = Endpoint::start(listener, tally.clone())
        .map_err(|source| SinkError::Listen { port, source })?;
    if let Some(file) = &args.port_file {
        write_port(file, port).map_err(|source| SinkError::PortFile {
            path: file.clone(),
            source,
        })?;
    }
    eprintln!("otlp-sink: listening on http://127.0.0.1:{port}{TRACES_PATH}");
    let stop = async {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    };
    endpoint.serve_until(stop).await.map_err(SinkError::Serve)?;
    println!("{}", tally.snapshot());
    Ok(())
}

/// Written aside and renamed: a reader sees the whole port or no file.
fn write_port(file: &std::path::Path, port: u16) -> io::Result<()> {
    let aside = PathBuf::from(format!("{}.tmp{}", file.display(), std::process::id()));
    std::fs::write(&aside, format!("{port}\n"))?;
    std::fs::rename(&aside, file)
}

/// The counts, kept as exports arrive.
pub struct Tally {
    mark: Option<String>,
    started: Instant,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    requests: u64,
    bytes: u64,
    spans: u64,
    spans_by_service: BTreeMap<String, u64>,
    server_spans_by_service: BTreeMap<String, u64>,
    marked_by_service: BTreeMap<String, u64>,
    undecodable: u64,
    rejected: u64,
}

/// `GET /stats`, in this order (that of `scripts/otlp_sink.py`, which it replaces).
#[derive(Debug, Serialize)]
struct Snapshot<'a> {
    requests: u64,
    bytes: u64,
    spans: u64,
    spans_by_service: &'a BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_spans_by_service: Option<&'a BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    marked_by_service: Option<&'a BTreeMap<String, u64>>,
    undecodable: u64,
    rejected: u64,
    uptime_s: f64,
}

impl Tally {
    pub fn new(mark: Option<String>) -> Tally {
        Tally {
            mark: mark.filter(|m| !m.is_empty()),
            started: Instant::now(),
            counts: Mutex::default(),
        }
    }

    /// The counts so far, as one line of JSON.
    pub fn snapshot(&self) -> String {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let marking = self.mark.is_some();
        let uptime = self.started.elapsed().as_secs_f64();
        let snapshot = Snapshot {
            requests: counts.requests,
            bytes: counts.bytes,
            spans: counts.spans,
            spans_by_service: &counts.spans_by_service,
            server_spans_by_service: marking.then_some(&counts.server_spans_by_service),
            marked_by_service: marking.then_some(&counts.marked_by_service),
            undecodable: counts.undecodable,
            rejected: counts.rejected,
            uptime_s: (uptime * 1000.0).round() / 1000.0,
        };
        // Maps of strings to numbers: nothing here fails to serialize.
        serde_json::to_string(&snapshot).unwrap_or_default()
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A panic elsewhere leaves the numbers whole: each update is one statement.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `span` is a server span whose attribute `mark` is true.
    fn marked(mark: &str, span: &Received) -> bool {
        matches!(
            span.attribute(mark),
            Some(support::otlp::proto::Value::Bool(true))
        )
    }
}

impl Collector for Tally {
    fn collect(&self, bytes: usize, spans: Vec<Received>) {
        let mut counts = self.counts();
        counts.requests += 1;
        counts.bytes += bytes as u64;
        counts.spans += spans.len() as u64;
        for span in &spans {
            let service = if span.service.is_empty() {
                "unknown"
            } else {
                span.service.as_str()
            };
            *counts.spans_by_service.entry(service.into()).or_default() += 1;
            if let Some(mark) = &self.mark {
                let server = u64::from(span.is_server());
                let marked = u64::from(span.is_server() && Self::marked(mark, span));
                *counts
                    .server_spans_by_service
                    .entry(service.into())
                    .or_default() += server;
                *counts.marked_by_service.entry(service.into()).or_default() += marked;
            }
        }
    }

    fn undecodable(&self, bytes: usize) -> Verdict {
        let mut counts = self.counts();
        counts.requests += 1;
        counts.bytes += bytes as u64;
        counts.undecodable += 1;
        // Counted, and answered 200: a benchmark's exporter is not the thing measured.
        Verdict::Accept
    }

    fn refused(&self) {
        self.counts().rejected += 1;
    }

    fn stats(&self) -> Option<String> {
        Some(self.snapshot())
    }
}

/// Why the sink could not run.
#[derive(Debug, thiserror::Error)]
enum SinkError {
    #[error("cannot set up the runtime and signals")]
    Runtime(#[source] io::Error),
    #[error("cannot listen on 127.0.0.1:{port}")]
    Listen {
        port: u16,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the port to {}", .path.display())]
    PortFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the server failed")]
    Serve(#[source] io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use support::otlp::proto;

    type Cli = crate::testing::Cli<Args>;

    fn span(service: &str, kind: i32, attributes: &[(&str, proto::Value)]) -> Received {
        Received {
            service: service.into(),
            resource: Vec::new(),
            span: proto::Span {
                kind,
                attributes: attributes
                    .iter()
                    .map(|(key, value)| proto::KeyValue {
                        key: key.to_string(),
                        value: Some(proto::AnyValue {
                            value: Some(value.clone()),
                        }),
                    })
                    .collect(),
                ..Default::default()
            },
        }
    }

    const SERVER: i32 = 2;
    const CLIENT: i32 = 3;

    fn synthetic(flag: bool) -> (&'static str, proto::Value) {
        ("synthetic_request", proto::Value::Bool(flag))
    }

    /// The snapshot without its clock.
    fn counts(tally: &Tally) -> serde_json::Value {
        let mut snapshot: serde_json::Value = serde_json::from_str(&tally.snapshot()).unwrap();
        let uptime = snapshot
            .as_object_mut()
            .unwrap()
            .remove("uptime_s")
            .expect("uptime_s");
        assert!(uptime.as_f64().unwrap() >= 0.0);
        snapshot
    }

    #[test]
    fn the_options_are_those_of_the_python_sink() {
        let args = Cli::try_parse_from(["otlp-sink"]).unwrap().args;
        assert_eq!((args.port, args.port_file, args.mark), (0, None, None));
        let args = Cli::try_parse_from([
            "otlp-sink",
            "--port",
            "4318",
            "--port-file",
            "target/sink.port",
            "--mark",
            "synthetic_request",
        ])
        .unwrap()
        .args;
        assert_eq!(args.port, 4318);
        assert_eq!(args.port_file, Some(PathBuf::from("target/sink.port")));
        assert_eq!(args.mark.as_deref(), Some("synthetic_request"));
        assert!(Cli::try_parse_from(["otlp-sink", "--port", "70000"]).is_err());
    }

    #[test]
    fn spans_are_counted_per_service() {
        let tally = Tally::new(None);
        tally.collect(
            100,
            vec![span("cart", SERVER, &[]), span("cart", CLIENT, &[])],
        );
        tally.collect(50, vec![span("", SERVER, &[])]);
        tally.collect(10, Vec::new());

        assert_eq!(
            counts(&tally),
            serde_json::json!({
                "requests": 3, "bytes": 160, "spans": 3,
                "spans_by_service": {"cart": 2, "unknown": 1},
                "undecodable": 0, "rejected": 0,
            })
        );
    }

    #[test]
    fn a_mark_counts_server_spans_and_those_marked_true() {
        let tally = Tally::new(Some("synthetic_request".into()));
        tally.collect(
            1,
            vec![
                span("cart", SERVER, &[synthetic(true)]),
                span("cart", SERVER, &[synthetic(false)]),
                span("cart", CLIENT, &[synthetic(true)]),
                span(
                    "payment",
                    SERVER,
                    &[("synthetic_request", proto::Value::String("true".into()))],
                ),
                span("product", CLIENT, &[]),
            ],
        );

        let snapshot = counts(&tally);
        assert_eq!(
            snapshot["server_spans_by_service"],
            serde_json::json!({"cart": 2, "payment": 1, "product": 0})
        );
        assert_eq!(
            snapshot["marked_by_service"],
            serde_json::json!({"cart": 1, "payment": 0, "product": 0})
        );
    }

    #[test]
    fn undecodable_bodies_are_accepted_and_counted_and_refusals_too() {
        let tally = Tally::new(None);
        assert_eq!(tally.undecodable(7), Verdict::Accept);
        tally.refused();
        tally.refused();

        let snapshot = counts(&tally);
        assert_eq!(
            (
                &snapshot["requests"],
                &snapshot["bytes"],
                &snapshot["undecodable"],
                &snapshot["rejected"]
            ),
            (&1.into(), &7.into(), &1.into(), &2.into())
        );
    }

    #[test]
    fn the_snapshot_keeps_the_python_sink_s_key_order() {
        let keys = |tally: &Tally| -> Vec<String> {
            let text = tally.snapshot();
            assert!(!text.contains('\n'), "one line: {text}");
            // Every other piece between quotes is a key: the maps are empty.
            text.split('"')
                .skip(1)
                .step_by(2)
                .map(String::from)
                .collect()
        };
        assert_eq!(
            keys(&Tally::new(None)),
            [
                "requests",
                "bytes",
                "spans",
                "spans_by_service",
                "undecodable",
                "rejected",
                "uptime_s"
            ]
        );
        assert_eq!(
            keys(&Tally::new(Some("m".into()))),
            [
                "requests",
                "bytes",
                "spans",
                "spans_by_service",
                "server_spans_by_service",
                "marked_by_service",
                "undecodable",
                "rejected",
                "uptime_s"
            ]
        );
    }
}
