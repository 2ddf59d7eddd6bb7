//! The figures of `cargo xtask bench-tracing`: its runs, the span accounting (the check
//! against the test receiver, and exported + dropped against requests served after the
//! rounds), what nginx logged, and the report made of them. Nothing here runs anything.

use std::collections::BTreeMap;

use ecommerce::role::Role;
use support::http::metric_value;

use super::{Mode, Scenario};
use crate::report::{self, median, thousands as n};

/// One wrk run of one mode (round 0: the warm-up).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub scenario: Scenario,
    pub mode: Mode,
    pub round: u32,
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non2xx: u64,
    pub socket_errors: u64,
    pub shop_cpu_s: f64,
    pub receiver_cpu_s: f64,
    pub cpu_us_per_request: f64,
}

/// Spans of one role by outcome, from its `ecommerce_telemetry_spans_total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spans {
    pub exported: u64,
    pub dropped: u64,
    pub failed: u64,
}

impl Spans {
    pub fn produced(&self) -> u64 {
        self.exported + self.dropped + self.failed
    }
}

/// What one role's /metrics say: the searches it served (its POST requests: here only
/// searches), the `GET /` it answered (the identity check of a start: one server span
/// each, and no calls), and its spans.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub served: u64,
    pub probes: u64,
    pub spans: Spans,
}

impl Counted {
    /// The spans it must have made: `per` for each search, one for each probe.
    pub fn expected_spans(&self, per: u64) -> u64 {
        self.served * per + self.probes
    }

    /// `served × per` and the probes, as a problem spells the expectation.
    fn expectation(&self, per: u64, served: &str) -> String {
        let mut text = format!("{} {served}× {per}", n(self.served));
        if self.probes > 0 {
            text += &format!(" + {} identity check", n(self.probes));
        }
        text
    }

    /// Spans per search, the probes' own left out.
    fn per_search(&self, spans: u64) -> f64 {
        if self.served == 0 {
            0.0
        } else {
            spans.saturating_sub(self.probes) as f64 / self.served as f64
        }
    }
}

impl Counted {
    pub fn of_metrics(text: &str) -> Counted {
        let count = |name: &str, labels: &[(&str, &str)]| metric_value(text, name, labels) as u64;
        let spans =
            |outcome: &str| count("ecommerce_telemetry_spans_total", &[("outcome", outcome)]);
        Counted {
            served: count("http_server_requests_total", &[("method", "POST")]),
            probes: count(
                "http_server_requests_total",
                &[("method", "GET"), ("route", "/")],
            ),
            spans: Spans {
                exported: spans("exported"),
                dropped: spans("dropped"),
                failed: spans("failed"),
            },
        }
    }
}

/// Whether /metrics show span export at all (a role that exports none has no series).
pub fn exports_spans(metrics: &str) -> bool {
    metrics
        .lines()
        .any(|l| l.starts_with("ecommerce_telemetry_spans_total{"))
}

/// The span count check of one scenario: `sent` searches, and per role what it counted
/// and how many of its spans the receiver decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub scenario: Scenario,
    pub sent: u64,
    pub roles: Vec<(Role, Counted, u64)>,
    /// What the receiver got meanwhile.
    pub received: Tally,
}

/// The span count check's problems: each role served every search, exported exactly
/// `sent × spans per search` (none dropped or failed), and the receiver decoded each.
pub fn verify_problems(v: &Verified) -> Vec<String> {
    let s = v.scenario.as_str();
    let mut problems = Vec::new();
    for (role, counted, decoded) in &v.roles {
        let per = v.scenario.spans(*role);
        let expected = Counted {
            served: v.sent,
            ..*counted
        };
        let got = counted.spans;
        if counted.served != v.sent {
            problems.push(format!(
                "span count check, {s}: {role} served {} searches, {} sent",
                n(counted.served),
                n(v.sent)
            ));
        }
        if got.exported != expected.expected_spans(per) || got.dropped > 0 || got.failed > 0 {
            problems.push(format!(
                "span count check, {s}: {role} exported {} spans (dropped {}, failed {}), expected exactly {} ({})",
                n(got.exported),
                n(got.dropped),
                n(got.failed),
                n(expected.expected_spans(per)),
                expected.expectation(per, "")
            ));
        }
        if *decoded != got.exported {
            problems.push(format!(
                "span count check, {s}: the sink decoded {} spans of {role}, the role exported {}",
                n(*decoded),
                n(got.exported)
            ));
        }
    }
    if v.received.undecodable > 0 || v.received.refused > 0 {
        problems.push(format!(
            "span count check, {s}: the sink got undecodable bodies or refused requests"
        ));
    }
    problems
}

/// What the span count check's receiver counted: spans by service, export bodies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub spans_by_service: BTreeMap<String, u64>,
    pub spans: u64,
    pub bytes: u64,
    pub undecodable: u64,
    pub refused: u64,
}

impl Tally {
    /// What was counted since `before`.
    pub fn since(&self, before: &Tally) -> Tally {
        Tally {
            spans_by_service: self
                .spans_by_service
                .iter()
                .map(|(k, v)| {
                    let was = before.spans_by_service.get(k).copied().unwrap_or(0);
                    (k.clone(), v.saturating_sub(was))
                })
                .collect(),
            spans: self.spans.saturating_sub(before.spans),
            bytes: self.bytes.saturating_sub(before.bytes),
            undecodable: self.undecodable.saturating_sub(before.undecodable),
            refused: self.refused.saturating_sub(before.refused),
        }
    }

    pub fn bytes_per_span(&self) -> f64 {
        self.bytes as f64 / self.spans.max(1) as f64
    }
}

/// The measured "on" roles of one scenario after the rounds, and nginx's log lines of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub scenario: Scenario,
    pub on: Vec<(Role, Counted)>,
    /// `status request_length content_length` per export request.
    pub nginx_log: Vec<String>,
}

/// Spans against requests after the rounds: per role exported + dropped = served × spans
/// per search exactly, every role served what the entry served, at most 1% dropped, none
/// failed, and the entry served what wrk completed (`wrk_done`, the check search
/// included) plus at most one request in flight per connection of each run.
pub fn accounting_problems(
    m: &Measured,
    wrk_done: u64,
    runs: u64,
    conns: u32,
) -> (Vec<String>, i64) {
    let s = m.scenario.as_str();
    let entry = m.scenario.entry();
    let served_entry =
        m.on.iter()
            .find(|(r, _)| *r == entry)
            .map_or(0, |(_, c)| c.served);
    let mut problems = Vec::new();
    let mut total = Spans::default();
    for (role, counted) in &m.on {
        let per = m.scenario.spans(*role);
        let expected = counted.expected_spans(per);
        let got = counted.spans;
        total.exported += got.exported;
        total.dropped += got.dropped;
        total.failed += got.failed;
        if counted.served != served_entry {
            problems.push(format!(
                "{s}: {role} served {} searches, {entry} {}",
                n(counted.served),
                n(served_entry)
            ));
        }
        if got.exported + got.dropped != expected {
            problems.push(format!(
                "{s}: {role} exported {} and dropped {} spans, expected exactly {} ({})",
                n(got.exported),
                n(got.dropped),
                n(expected),
                counted.expectation(per, "served ")
            ));
        }
    }
    let produced = total.produced();
    if produced > 0 && total.dropped as f64 / produced as f64 > 0.01 {
        problems.push(format!(
            "{s}: {} of {} spans dropped ({:.1}%, over 1%): the export queue was full",
            n(total.dropped),
            n(produced),
            total.dropped as f64 / produced as f64 * 100.0
        ));
    }
    if total.failed > 0 {
        problems.push(format!(
            "{s}: {} spans failed (the receiver refused them or did not answer)",
            n(total.failed)
        ));
    }
    let in_flight = served_entry as i64 - wrk_done as i64;
    if in_flight < 0 || in_flight > (runs * u64::from(conns)) as i64 {
        problems.push(format!(
            "{s}: the {entry} served {} searches, wrk completed {} (+1 check): more apart than the {conns} connections of {runs} runs explain",
            n(served_entry),
            n(wrk_done.saturating_sub(1))
        ));
    }
    (problems, in_flight)
}

/// What nginx's log says: export requests by status, body bytes, request-line and header
/// bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NginxLog {
    pub statuses: BTreeMap<String, u64>,
    pub requests: u64,
    pub body_bytes: u64,
    pub request_bytes: u64,
}

pub fn read_nginx_log(lines: &[String]) -> NginxLog {
    let mut log = NginxLog::default();
    for line in lines {
        let mut fields = line.split_whitespace();
        let (Some(status), Some(req_len)) = (fields.next(), fields.next()) else {
            continue;
        };
        log.requests += 1;
        *log.statuses.entry(status.to_string()).or_default() += 1;
        log.request_bytes += req_len.parse::<u64>().unwrap_or(0);
        // nginx logs "-" for a request without Content-Length
        log.body_bytes += fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    }
    log
}

/// Everything the report is made of.
#[derive(Debug, Clone)]
pub struct ReportInput {
    pub machine: String,
    pub command: String,
    pub seconds: u64,
    pub conns: u32,
    pub threads: u32,
    pub rounds: u32,
    pub warmup: u64,
    pub delay: u64,
    pub queue: Option<u64>,
    pub batch: Option<u64>,
    pub verify_requests: u64,
    pub skipped: Option<String>,
    pub rows: Vec<Row>,
    pub verified: Vec<Verified>,
    pub measured: Vec<Measured>,
}

struct ModeFigures {
    rps: f64,
    p50: f64,
    p99: f64,
    each: Vec<f64>,
    cpu: f64,
    receiver_cpu: f64,
    seconds: f64,
    runs: Vec<Row>,
}

fn figures(rows: &[Row], scenario: Scenario, mode: Mode) -> ModeFigures {
    let mut runs: Vec<Row> = rows
        .iter()
        .filter(|r| r.scenario == scenario && r.mode == mode && r.round > 0)
        .cloned()
        .collect();
    runs.sort_by_key(|r| r.round);
    let of = |f: fn(&Row) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    ModeFigures {
        rps: of(|r| r.rps),
        p50: of(|r| r.p50_ms),
        p99: of(|r| r.p99_ms),
        each: runs.iter().map(|r| r.rps).collect(),
        cpu: of(|r| r.cpu_us_per_request),
        receiver_cpu: runs.iter().map(|r| r.receiver_cpu_s).sum(),
        seconds: runs
            .iter()
            .filter(|r| r.rps != 0.0)
            .map(|r| r.requests as f64 / r.rps)
            .sum(),
        runs,
    }
}

fn errors(runs: &[Row]) -> String {
    let non2xx: u64 = runs.iter().map(|r| r.non2xx).sum();
    let k = non2xx + runs.iter().map(|r| r.socket_errors).sum::<u64>();
    if k == 0 {
        "0".into()
    } else {
        format!("**{}** ({} non-2xx)", n(k), n(non2xx))
    }
}

/// The report (Markdown) and the problems found in the figures.
pub fn report(input: &ReportInput) -> (String, Vec<String>) {
    let mut problems = Vec::new();

    let mut verify_rows = Vec::new();
    for v in &input.verified {
        for (role, counted, decoded) in &v.roles {
            let per = counted.per_search(counted.spans.exported);
            verify_rows.push(vec![
                v.scenario.as_str().to_string(),
                n(v.sent),
                role.to_string(),
                n(counted.served),
                n(counted.spans.exported),
                format!("{per:.2}"),
                n(*decoded),
            ]);
        }
        problems.extend(verify_problems(v));
    }
    let verify_table = report::table(
        &[
            "scenario",
            "searches",
            "role",
            "requests served",
            "spans exported",
            "spans per request",
            "sink decoded",
        ],
        &["---", "---:", "---", "---:", "---:", "---:", "---:"],
        &verify_rows,
    );

    for r in &input.rows {
        if r.non2xx > 0 || r.socket_errors > 0 {
            let what = if r.round == 0 {
                "warm-up".to_string()
            } else {
                format!("round {}", r.round)
            };
            problems.push(format!(
                "{}, {what}, tracing {}: {} non-2xx answers, {} socket errors (connect/read/write/timeout)",
                r.scenario.as_str(), r.mode.as_str(), n(r.non2xx), n(r.socket_errors)
            ));
        }
    }

    let mut sections = Vec::new();
    let mut overheads = BTreeMap::new();
    for m in &input.measured {
        let s = m.scenario;
        let check_bytes = input
            .verified
            .iter()
            .find(|v| v.scenario == s)
            .map_or(0.0, |v| v.received.bytes_per_span());
        let (off, on) = (
            figures(&input.rows, s, Mode::Off),
            figures(&input.rows, s, Mode::On),
        );
        let overhead = (off.rps - on.rps) / off.rps * 100.0;
        let cpu_overhead = (on.cpu - off.cpu) / off.cpu * 100.0;
        overheads.insert(s, (overhead, on.cpu - off.cpu, cpu_overhead));

        let mut rows = Vec::new();
        for (f, label) in [(&off, "off"), (&on, "on, OTLP to nginx")] {
            rows.push(vec![
                label.to_string(),
                report::group(f.rps, 0),
                format!("{:.2} ms", f.p50),
                format!("{:.2} ms", f.p99),
                f.each
                    .iter()
                    .map(|x| report::group(*x, 0))
                    .collect::<Vec<_>>()
                    .join(" / "),
                format!("{:.1} µs", f.cpu),
                errors(&f.runs),
            ]);
        }
        rows.push(vec![
            "on vs off".into(),
            format!("{:+.1}%", -overhead),
            format!("{:+.2} ms", on.p50 - off.p50),
            format!("{:+.2} ms", on.p99 - off.p99),
            String::new(),
            format!("{:+.1} µs ({cpu_overhead:+.0}%)", on.cpu - off.cpu),
            String::new(),
        ]);
        let table = report::table(
            &[
                "tracing",
                "req/s (median)",
                "p50 (median)",
                "p99 (median)",
                "req/s of each round",
                "CPU per request",
                "errors",
            ],
            &["---", "---:", "---:", "---:", "---", "---:", "---:"],
            &rows,
        );

        let all_on: Vec<&Row> = input
            .rows
            .iter()
            .filter(|r| r.scenario == s && r.mode == Mode::On)
            .collect();
        // and the one search that checks the roles
        let wrk_done = all_on.iter().map(|r| r.requests).sum::<u64>() + 1;
        let (accounting, in_flight) =
            accounting_problems(m, wrk_done, all_on.len() as u64, input.conns);
        problems.extend(accounting);
        let entry = s.entry();
        let served_entry =
            m.on.iter()
                .find(|(r, _)| *r == entry)
                .map_or(0, |(_, c)| c.served);
        let mut total = Spans::default();
        let mut probes = 0;
        let mut span_rows = Vec::new();
        for (role, c) in &m.on {
            probes += c.probes;
            total.exported += c.spans.exported;
            total.dropped += c.spans.dropped;
            total.failed += c.spans.failed;
            let per = c.per_search(c.spans.produced());
            span_rows.push(vec![
                role.to_string(),
                n(c.served),
                n(c.spans.exported),
                n(c.spans.dropped),
                n(c.spans.failed),
                format!("{per:.2} (expected {})", s.spans(*role)),
            ]);
        }
        let per_all = if served_entry > 0 {
            total.produced().saturating_sub(probes) as f64 / served_entry as f64
        } else {
            0.0
        };
        span_rows.push(vec![
            "all".into(),
            n(served_entry),
            n(total.exported),
            n(total.dropped),
            n(total.failed),
            format!("{per_all:.2} (expected {})", s.spans_per_search()),
        ]);
        let span_table = report::table(
            &[
                "traced role",
                "requests served",
                "spans exported",
                "dropped",
                "failed",
                "spans per request",
            ],
            &["---", "---:", "---:", "---:", "---:", "---:"],
            &span_rows,
        );

        let log = read_nginx_log(&m.nginx_log);
        let statuses = log
            .statuses
            .iter()
            .map(|(k, v)| format!("{} × {k}", n(*v)))
            .collect::<Vec<_>>()
            .join(", ");
        let all_200 = log.statuses.keys().all(|k| k == "200") && log.requests > 0;
        if log.statuses.keys().any(|k| k != "200") {
            problems.push(format!("{}: nginx answered {statuses}", s.as_str()));
        }
        if log.requests == 0 {
            problems.push(format!("{}: nginx logged no export request", s.as_str()));
        }
        let receiver = format!(
            "nginx received {} export requests, {}, {} MB of bodies ({:.0} bytes per exported span; {check_bytes:.0} in the sink's check) and {} MB of request lines and headers; {} spans per export request. nginx's CPU: {:.2} s over {:.0} s of traced load ({:.1}% of a core).",
            n(log.requests),
            if all_200 { "all answered 200".to_string() } else { format!("answered {statuses}") },
            report::group(log.body_bytes as f64 / 1e6, 1),
            log.body_bytes as f64 / total.exported.max(1) as f64,
            report::group(log.request_bytes as f64 / 1e6, 1),
            report::group(total.exported as f64 / log.requests.max(1) as f64, 0),
            on.receiver_cpu,
            on.seconds,
            on.receiver_cpu / on.seconds.max(1e-9) * 100.0,
        );
        let counts = format!(
            "Requests: wrk completed {} with tracing on (warm-up and rounds) and one search checked the roles; the {entry} served {}: {} were in flight when wrk stopped (answered, not counted by wrk). Spans: exported + dropped = requests served × spans per request exactly, per role (plus, on every role but the web-gateway, the one span of the `GET /` with which its start checked that it is the role it should be; spans per request leave that one out).",
            n(wrk_done - 1),
            n(served_entry),
            report::group(in_flight as f64, 0),
        );
        sections.push(format!(
            "### {}\n\n{}; {} spans per search ({}).\n\n{table}\n\n{span_table}\n\n{receiver}\n{counts}\n",
            s.title(),
            s.what(),
            s.spans_per_search(),
            s.spans_text(),
        ));
    }

    let mut verdict = Vec::new();
    match overheads.get(&Scenario::Search) {
        Some((o, _, _)) => verdict.push(format!(
            "overhead {o:.1}% on the search path — under 10%: {}",
            if *o < 10.0 { "yes" } else { "no" }
        )),
        None => verdict.push(format!(
            "no verdict on the search path: scenario \"search\" was not measured{}",
            input
                .skipped
                .as_ref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        )),
    }
    if let Some((o, dcpu, pcpu)) = overheads.get(&Scenario::Hop) {
        verdict.push(format!(
            "worst case, one hop on the in-memory catalog (3 spans per search, least work per span): overhead {o:.1}% of req/s, {dcpu:+.1} µs CPU per request ({pcpu:+.0}%)"
        ));
    }

    let rounds = input.rounds;
    let text = format!(
        "machine: {machine}

```
{command}
```

Search (`POST /api/v1/product/search`, 6 results), roles at `RUST_LOG=warn`; after a {warmup} s
warm-up of each, {rounds} round{plural} of tracing off then on, {seconds} s each, {conns} connections,
wrk -t{threads}; medians over the rounds. \"on\": OTLP/HTTP protobuf to nginx on 127.0.0.1 (one
worker; reads each body, discards it, answers 200), `OTEL_BSP_SCHEDULE_DELAY={delay}`, queue
{queue}, batch {batch}. CPU per request: user + system time of the scenario's roles (not
PostgreSQL's, not nginx's) over the run and the pause after it, divided by the requests wrk
completed.

Span count check before the rounds (not measured): {verify} searches and one more
through a separate set of traced roles exporting to the tests' OTLP receiver
(`support::otlp`, in the bench's own process), which decodes and counts every span. Every
role but the web-gateway also exports the one span of the `GET /` with which its start
checked that it is the role it should be; spans per request leave that one out.

{verify_table}

{sections}
{verdict}
",
        machine = input.machine,
        command = input.command,
        warmup = input.warmup,
        plural = if rounds == 1 { "" } else { "s" },
        seconds = input.seconds,
        conns = input.conns,
        threads = input.threads.min(input.conns),
        delay = input.delay,
        queue = input
            .queue
            .map_or("2048 (default)".into(), |q| q.to_string()),
        batch = input
            .batch
            .map_or("512 (default)".into(), |b| b.to_string()),
        verify = n(input.verify_requests),
        sections = sections.join("\n"),
        verdict = verdict.join("\n"),
    );
    (text, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(served: u64, exported: u64, dropped: u64, failed: u64) -> Counted {
        Counted {
            served,
            probes: 0,
            spans: Spans {
                exported,
                dropped,
                failed,
            },
        }
    }

    #[test]
    fn metrics_give_searches_served_and_spans_by_outcome() {
        let text = "\
# TYPE http_server_requests counter
http_server_requests_total{method=\"POST\",route=\"/search\",status=\"200\",status_class=\"2xx\"} 1001
http_server_requests_total{method=\"GET\",route=\"/metrics\",status=\"200\",status_class=\"2xx\"} 7
http_server_requests_total{method=\"GET\",route=\"/\",status=\"200\",status_class=\"2xx\"} 1
# TYPE ecommerce_telemetry_spans counter
ecommerce_telemetry_spans_total{outcome=\"exported\"} 2001.0
ecommerce_telemetry_spans_total{outcome=\"dropped\"} 2.0
# EOF
";
        let c = Counted::of_metrics(text);
        assert_eq!(
            c,
            Counted {
                probes: 1,
                ..counted(1001, 2001, 2, 0)
            }
        );
        // two spans a search, and the identity check's one
        assert_eq!(c.expected_spans(2), 2003);
        assert_eq!(c.per_search(c.spans.produced()), 2.0);
        assert!(exports_spans(text));
        assert!(!exports_spans(
            "http_server_requests_total{method=\"POST\"} 1\n"
        ));
    }

    #[test]
    fn the_span_count_check_wants_exactly_requests_times_spans_and_every_span_decoded() {
        let good = Verified {
            scenario: Scenario::Hop,
            sent: 1001,
            roles: vec![
                (Role::ApiGateway, counted(1001, 2002, 0, 0), 2002),
                (Role::Product, counted(1001, 1001, 0, 0), 1001),
            ],
            received: Tally::default(),
        };
        assert!(verify_problems(&good).is_empty());
        let refused = Verified {
            received: Tally {
                refused: 1,
                ..Tally::default()
            },
            ..good.clone()
        };
        assert_eq!(
            verify_problems(&refused),
            ["span count check, hop: the sink got undecodable bodies or refused requests"]
        );
        let bad = Verified {
            roles: vec![
                (Role::ApiGateway, counted(1000, 2000, 0, 0), 2000),
                (Role::Product, counted(1001, 1001, 0, 0), 999),
            ],
            ..good.clone()
        };
        let problems = verify_problems(&bad);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert_eq!(
            problems[1],
            "span count check, hop: api-gateway exported 2,000 spans (dropped 0, failed 0), expected exactly 2,002 (1,001 × 2)"
        );
        assert_eq!(
            problems[2],
            "span count check, hop: the sink decoded 999 spans of product, the role exported 1,001"
        );
        let dropped = Verified {
            roles: vec![(Role::Product, counted(1001, 1000, 1, 0), 1000)],
            ..good.clone()
        };
        assert_eq!(verify_problems(&dropped).len(), 1);
        // a start's identity check (GET /) makes one span more, and is expected
        let probed = Counted {
            probes: 1,
            ..counted(1001, 1002, 0, 0)
        };
        let checked = Verified {
            roles: vec![(Role::Product, probed, 1002)],
            ..good.clone()
        };
        assert!(verify_problems(&checked).is_empty());
        let short = Verified {
            roles: vec![(
                Role::Product,
                Counted {
                    probes: 1,
                    ..counted(1001, 1001, 0, 0)
                },
                1001,
            )],
            ..good
        };
        assert_eq!(
            verify_problems(&short),
            ["span count check, hop: product exported 1,001 spans (dropped 0, failed 0), expected exactly 1,002 (1,001 × 1 + 1 identity check)"]
        );
    }

    fn hop_measured(on: Vec<(Role, Counted)>) -> Measured {
        Measured {
            scenario: Scenario::Hop,
            on,
            nginx_log: vec!["200 250 166000".into(), "200 250 -".into()],
        }
    }

    #[test]
    fn after_the_rounds_exported_and_dropped_spans_add_up_to_requests_served() {
        // 7 runs of wrk (warm-up and 3 rounds... here 4), 16 connections, 30 in flight
        let m = hop_measured(vec![
            (Role::ApiGateway, counted(870_245, 1_740_000, 490, 0)),
            (Role::Product, counted(870_245, 870_245, 0, 0)),
        ]);
        let (problems, in_flight) = accounting_problems(&m, 870_215, 4, 16);
        assert!(problems.is_empty(), "{problems:#?}");
        assert_eq!(in_flight, 30);

        // one span unaccounted for, a role that served fewer, and wrk far off
        let m = hop_measured(vec![
            (Role::ApiGateway, counted(870_245, 1_740_489, 0, 0)),
            (Role::Product, counted(870_244, 870_244, 0, 0)),
        ]);
        let (problems, _) = accounting_problems(&m, 800_000, 4, 16);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("expected exactly 1,740,490 (870,245 served × 2)"));
        assert_eq!(
            problems[1],
            "hop: product served 870,244 searches, api-gateway 870,245"
        );
        assert!(problems[2].contains("more apart than the 16 connections of 4 runs explain"));
    }

    #[test]
    fn more_than_one_percent_dropped_or_any_failed_is_a_problem() {
        let m = hop_measured(vec![
            (Role::ApiGateway, counted(1000, 1900, 100, 0)),
            (Role::Product, counted(1000, 990, 0, 10)),
        ]);
        let (problems, _) = accounting_problems(&m, 1000, 2, 16);
        assert!(problems
            .iter()
            .any(|p| p.contains("100 of 3,000 spans dropped (3.3%, over 1%)")));
        assert!(problems.iter().any(|p| p.contains("10 spans failed")));
    }

    #[test]
    fn the_sink_counts_what_came_since_a_look() {
        let before = Tally {
            spans_by_service: BTreeMap::from([("product".to_string(), 10)]),
            spans: 10,
            bytes: 3000,
            ..Tally::default()
        };
        let after = Tally {
            spans_by_service: BTreeMap::from([
                ("product".to_string(), 1011),
                ("api-gateway".to_string(), 2002),
            ]),
            spans: 3013,
            bytes: 1_000_000,
            ..Tally::default()
        };
        let since = after.since(&before);
        assert_eq!(since.spans_by_service["product"], 1001);
        assert_eq!(since.spans_by_service["api-gateway"], 2002);
        assert_eq!(since.spans, 3003);
        assert_eq!(format!("{:.0}", since.bytes_per_span()), "332");
    }

    #[test]
    fn nginx_log_lines_count_requests_statuses_and_bytes() {
        let log = read_nginx_log(&[
            "200 250 166000".into(),
            "200 240 -".into(),
            "502 230 1000".into(),
            "".into(),
        ]);
        assert_eq!(log.requests, 3);
        assert_eq!(log.body_bytes, 167_000);
        assert_eq!(log.request_bytes, 720);
        assert_eq!(log.statuses["502"], 1);
    }

    fn row(mode: Mode, round: u32, rps: f64, cpu: f64) -> Row {
        Row {
            scenario: Scenario::Hop,
            mode,
            round,
            requests: (rps * 2.0) as u64,
            rps,
            p50_ms: 0.4,
            p99_ms: if mode == Mode::On { 1.05 } else { 0.87 },
            non2xx: 0,
            socket_errors: 0,
            shop_cpu_s: 1.0,
            receiver_cpu_s: 0.05,
            cpu_us_per_request: cpu,
        }
    }

    #[test]
    fn the_report_gives_medians_overhead_and_the_verdict() {
        let rows = vec![
            row(Mode::Off, 0, 30_000.0, 50.0),
            row(Mode::On, 0, 29_000.0, 55.0),
            row(Mode::Off, 1, 34_925.0, 44.0),
            row(Mode::On, 1, 32_754.0, 48.3),
            row(Mode::Off, 2, 36_109.0, 44.8),
            row(Mode::On, 2, 33_036.0, 48.0),
            row(Mode::Off, 3, 35_424.0, 45.0),
            row(Mode::On, 3, 32_960.0, 49.0),
        ];
        let on_requests: u64 = rows
            .iter()
            .filter(|r| r.mode == Mode::On)
            .map(|r| r.requests)
            .sum();
        let served = on_requests + 1 + 10;
        let input = ReportInput {
            machine: "2 CPUs".into(),
            command: "cargo xtask bench-tracing".into(),
            seconds: 8,
            conns: 16,
            threads: 2,
            rounds: 3,
            warmup: 2,
            delay: 1000,
            queue: None,
            batch: Some(256),
            verify_requests: 1000,
            skipped: Some("Redis does not answer".into()),
            verified: vec![Verified {
                scenario: Scenario::Hop,
                sent: 1001,
                roles: vec![
                    (Role::ApiGateway, counted(1001, 2002, 0, 0), 2002),
                    (Role::Product, counted(1001, 1001, 0, 0), 1001),
                ],
                received: Tally {
                    spans: 3003,
                    bytes: 999_999,
                    ..Tally::default()
                },
            }],
            measured: vec![hop_measured(vec![
                (Role::ApiGateway, counted(served, served * 2, 0, 0)),
                (Role::Product, counted(served, served, 0, 0)),
            ])],
            rows,
        };
        let (text, problems) = report(&input);
        assert!(problems.is_empty(), "{problems:#?}");
        assert!(
            text.contains(
                "| off | 35,424 | 0.40 ms | 0.87 ms | 34,925 / 36,109 / 35,424 | 44.8 µs | 0 |"
            ),
            "{text}"
        );
        assert!(text.contains("| on vs off | -7.0% | +0.00 ms | +0.18 ms | | +3.5 µs (+8%) | |"));
        assert!(text.contains("queue\n2048 (default), batch 256."));
        assert!(text.contains("| hop | 1,001 | product | 1,001 | 1,001 | 1.00 | 1,001 |"));
        assert!(text.contains("| all | "));
        assert!(text.contains("(expected 3) |"));
        assert!(text.contains("were in flight when wrk stopped"));
        assert!(text.contains(
            "nginx received 2 export requests, all answered 200, 0.2 MB of bodies (0 bytes per exported span; 333 in the sink's check)"
        ), "{text}");
        assert!(text.contains(
            "no verdict on the search path: scenario \"search\" was not measured (Redis does not answer)"
        ));
        assert!(text.trim_end().ends_with(
            "worst case, one hop on the in-memory catalog (3 spans per search, least work per span): overhead 7.0% of req/s, +3.5 µs CPU per request (+8%)"
        ));
    }

    #[test]
    fn errors_in_any_run_are_problems() {
        let mut r = row(Mode::On, 0, 100.0, 1.0);
        r.non2xx = 3;
        let input = ReportInput {
            machine: String::new(),
            command: String::new(),
            seconds: 1,
            conns: 1,
            threads: 1,
            rounds: 1,
            warmup: 0,
            delay: 1000,
            queue: None,
            batch: None,
            verify_requests: 1,
            skipped: None,
            rows: vec![r],
            verified: vec![],
            measured: vec![],
        };
        let (_, problems) = report(&input);
        assert_eq!(
            problems,
            ["hop, warm-up, tracing on: 3 non-2xx answers, 0 socket errors (connect/read/write/timeout)"]
        );
    }
}
