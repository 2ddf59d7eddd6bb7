//! `cargo xtask bench-tracing` (was scripts/bench-tracing.sh): what tracing costs. Each
//! scenario runs its roles twice, side by side on 127.0.0.1, identical but for span
//! export, and loads the two in turn:
//!
//! ```text
//! off   no span export (only the W3C traceparent travels)
//! on    spans over OTLP/HTTP protobuf to a local receiver, OTEL_BSP_SCHEDULE_DELAY=1000
//! ```
//!
//! Scenarios (BENCH_SCENARIOS, both by default):
//!
//! ```text
//! search  search, as shoppers reach it: web-gateway -> api-gateway -> product, product-data
//!         on PostgreSQL, session-data on Redis; the request and topology of the "search
//!         for six, via web-gateway" row of `cargo xtask bench`. Six spans per search. The
//!         verdict is on this one: the shop's search path.
//! hop     one hop, in-memory catalog: api-gateway -> product. Three spans per search
//!         around the least work there is per request: the worst case.
//! ```
//!
//! Load: POST /api/v1/product/search {"query":"","page":{"size":6}} to the entry role, roles
//! at RUST_LOG=warn, with wrk (keep-alive, --latency). After an unmeasured warm-up of each,
//! the two are measured in turn, off, on, off, on, ... for ROUNDS rounds, with a pause after
//! every run so that the last export batch is out before the next starts. Per scenario:
//! median req/s, p50 and p99, the overhead ((off - on) / off of the median req/s), CPU per
//! request (user + system time of the scenario's roles over the run and the pause after it,
//! divided by the requests wrk completed), each traced role's spans by outcome from its
//! /metrics, and what the receiver got; then the verdict.
//!
//! The measured rounds' receiver is nginx (one worker, `return 200`, logging status,
//! request length and Content-Length): lean C, because the receiver's CPU comes out of the
//! same cores as the shop's. nginx cannot count spans, so before the rounds a short,
//! unmeasured run proves the span count independently: a separate set of traced roles
//! serves VERIFY_REQUESTS searches (one keep-alive connection) with its spans going to the
//! tests' OTLP receiver (`support::otlp`, in this process), and the spans it decoded must
//! equal what the roles count as exported, and that must be exactly requests × spans per
//! request. After the rounds, each traced role's exported + dropped spans must be exactly
//! the requests it served × its spans per request, dropped at most 1%, failed none, and
//! every answer nginx logged a 200.
//!
//! Exit status: 0 when measured (whatever the verdict); 3 when measured but something is
//! wrong with the figures (each printed as `PROBLEM: ...`); 1 when it could not measure, or
//! when Redis or PostgreSQL do not answer and "search" was asked for (the other scenarios
//! still run and print). Logs, wrk output, nginx's log, metrics and report.md:
//! target/bench-tracing/.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ecommerce::config::Settings;
use ecommerce::role::Role;
use ecommerce::stores::StoreUrl;
use ecommerce::telemetry::settings::Otlp;
use support::otlp::{self, Collector, Received, Verdict};
use support::ports::free_port;
use support::processes;
use support::stub::Stub;

use crate::procs::{self, Owned};
use crate::report;
use crate::shop::{self, Http, Roles};
use crate::stores;
use crate::tools;
use crate::wrk;

mod figures;

pub use figures::{exports_spans, report, Counted, Measured, ReportInput, Row, Tally, Verified};

const NAME: &str = "bench-tracing";
const SEARCH_BODY: &str = r#"{"query":"","page":{"size":6}}"#;
const SEARCH_PATH: &str = "/api/v1/product/search";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which scenarios, in order: search, hop.
    #[arg(long, env = "BENCH_SCENARIOS", default_value = "search hop",
          value_parser = parse_scenarios)]
    pub scenarios: Scenarios,
    /// Seconds of each measured run (1-600).
    #[arg(long, env = "BENCH_SECONDS", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// wrk connections (1-1024).
    #[arg(long, env = "BENCH_CONNS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub conns: u32,
    /// wrk threads (1-64).
    #[arg(long, env = "WRK_THREADS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
    /// off/on rounds per scenario (1-20).
    #[arg(long, env = "ROUNDS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// Unmeasured warm-up of each mode, seconds (0-60).
    #[arg(long, env = "WARMUP_SECONDS", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(0..=60))]
    pub warmup: u64,
    /// Searches of the span-count check, per scenario (1-100000).
    #[arg(long, env = "VERIFY_REQUESTS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub verify_requests: u64,
    /// Worker threads per role (0-64; default: the binary's, one per CPU).
    #[arg(long, env = "WORKERS", value_parser = clap::value_parser!(u64).range(0..=64))]
    pub workers: Option<u64>,
    #[command(flatten)]
    pub stores: stores::StoreUrls,
    /// "on" only: export interval, ms (1-60000).
    #[arg(long, env = "OTEL_BSP_SCHEDULE_DELAY", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub bsp_schedule_delay: u64,
    /// "on" only: the span queue (the binary's default: 2048).
    #[arg(long, env = "OTEL_BSP_MAX_QUEUE_SIZE",
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub bsp_max_queue_size: Option<u64>,
    /// "on" only: spans per export (the binary's default: 512).
    #[arg(long, env = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub bsp_max_export_batch_size: Option<u64>,
}

impl Args {
    pub fn command_line(&self) -> String {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        report::command_line(
            &[
                (
                    "BENCH_SCENARIOS",
                    self.scenarios.to_string(),
                    "search hop".into(),
                ),
                ("BENCH_SECONDS", self.seconds.to_string(), "8".into()),
                ("BENCH_CONNS", self.conns.to_string(), "16".into()),
                ("WRK_THREADS", self.threads.to_string(), "2".into()),
                ("ROUNDS", self.rounds.to_string(), "3".into()),
                ("WARMUP_SECONDS", self.warmup.to_string(), "2".into()),
                (
                    "VERIFY_REQUESTS",
                    self.verify_requests.to_string(),
                    "1000".into(),
                ),
                ("WORKERS", opt(self.workers), String::new()),
                (
                    "OTEL_BSP_SCHEDULE_DELAY",
                    self.bsp_schedule_delay.to_string(),
                    "1000".into(),
                ),
                (
                    "OTEL_BSP_MAX_QUEUE_SIZE",
                    opt(self.bsp_max_queue_size),
                    String::new(),
                ),
                (
                    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                    opt(self.bsp_max_export_batch_size),
                    String::new(),
                ),
            ],
            "cargo xtask bench-tracing",
        )
    }

    /// After each run: the export interval and a second more, so that the last batch is
    /// out (and its cost paid) before the next run starts.
    fn settle(&self) -> Duration {
        Duration::from_millis(self.bsp_schedule_delay + 1000)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    Search,
    Hop,
}

impl Scenario {
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Search => "search",
            Scenario::Hop => "hop",
        }
    }

    /// Its roles, the entry (where the load goes) first.
    pub fn roles(self) -> Vec<Role> {
        match self {
            Scenario::Search => vec![Role::WebGateway, Role::ApiGateway, Role::Product],
            Scenario::Hop => vec![Role::ApiGateway, Role::Product],
        }
    }

    pub fn entry(self) -> Role {
        self.roles()[0]
    }

    /// Spans each of its roles makes per search.
    pub fn spans(self, role: Role) -> u64 {
        match (self, role) {
            // a server and a client span each; product its server span and the query's
            (Scenario::Search, _) => 2,
            (Scenario::Hop, Role::ApiGateway) => 2,
            (Scenario::Hop, _) => 1,
        }
    }

    pub fn spans_per_search(self) -> u64 {
        self.roles().into_iter().map(|r| self.spans(r)).sum()
    }

    fn title(self) -> &'static str {
        match self {
            Scenario::Search => "search, as shoppers reach it",
            Scenario::Hop => "one hop, in-memory catalog (least work per span: the worst case)",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Scenario::Search => {
                "web-gateway → api-gateway → product, product-data on PostgreSQL, session-data \
                 on Redis (the \"search for six, via web-gateway\" request of `cargo xtask bench`)"
            }
            Scenario::Hop => "api-gateway → product, product-data in memory",
        }
    }

    fn spans_text(self) -> &'static str {
        match self {
            Scenario::Search => {
                "web-gateway and api-gateway a server and a client span each, product its \
                 server span and the PostgreSQL query's client span"
            }
            Scenario::Hop => "api-gateway a server and a client span, product its server span",
        }
    }
}

/// The scenarios to run, in order, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenarios(pub Vec<Scenario>);

pub fn parse_scenarios(text: &str) -> Result<Scenarios, String> {
    let mut scenarios = Vec::new();
    for name in text.split_whitespace() {
        let scenario = match name {
            "search" => Scenario::Search,
            "hop" => Scenario::Hop,
            _ => return Err(format!("unknown scenario '{name}' (search, hop)")),
        };
        if scenarios.contains(&scenario) {
            return Err(format!("names '{name}' twice"));
        }
        scenarios.push(scenario);
    }
    if scenarios.is_empty() {
        return Err("names no scenario (search, hop)".into());
    }
    Ok(Scenarios(scenarios))
}

impl std::fmt::Display for Scenarios {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&names.join(" "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    On,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::On => "on",
        }
    }
}

/// The receiver's collector: counts, keeps no span; refuses what does not decode, so
/// that the shop counts it failed.
#[derive(Default)]
struct Counting(Mutex<Tally>);

impl Counting {
    fn tally(&self) -> Tally {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Collector for Counting {
    fn collect(&self, bytes: usize, spans: Vec<Received>) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        t.bytes += bytes as u64;
        t.spans += spans.len() as u64;
        for span in spans {
            *t.spans_by_service.entry(span.service).or_default() += 1;
        }
    }

    fn undecodable(&self, _bytes: usize) -> Verdict {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).undecodable += 1;
        Verdict::Refuse
    }

    fn refused(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).refused += 1;
    }
}

/// The tests' OTLP receiver routes (`support::otlp`) on a loopback port of this process,
/// counting.
struct Sink {
    url: String,
    counting: Arc<Counting>,
    _server: Stub,
}

impl Sink {
    fn start() -> Sink {
        let counting = Arc::new(Counting::default());
        let collector: Arc<dyn Collector> = counting.clone();
        let server = Stub::start(move |cfg| otlp::routes(cfg, collector.clone()));
        Sink {
            url: format!("{}{}", server.url, otlp::TRACES_PATH),
            counting,
            _server: server,
        }
    }
}

pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // The roles see no OTEL_* or ECOMMERCE_* settings but those given here, so both modes
    // run with the same, known settings (cleared before any other thread starts).
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("OTEL_") || name.starts_with("ECOMMERCE_") {
            std::env::remove_var(name.as_ref());
        }
    }
    procs::stop_everything_on_signal(NAME);
    let outcome = procs::unless_interrupted(actix_web::rt::System::new().block_on(bench(args)))?;
    // Everything started is stopped by now.
    if let Some(skipped) = outcome.skipped {
        return Err(format!("SKIPPED: scenario \"search\": {skipped}").into());
    }
    if outcome.problems {
        let work = tools::root().join("target/bench-tracing");
        say(format!(
            "measured, but see PROBLEM above; report in {}/report.md, logs in {}",
            work.display(),
            work.display()
        ));
        std::process::exit(3);
    }
    Ok(())
}

fn say(text: impl std::fmt::Display) {
    println!("{NAME}: {text}");
}

struct Outcome {
    skipped: Option<String>,
    problems: bool,
}

/// One scenario's roles in one mode.
struct RoleSet {
    roles: Roles,
}

struct Bench<'a> {
    args: &'a Args,
    binary: PathBuf,
    work: PathBuf,
    http: Http,
}

impl Bench<'_> {
    /// `scenario`'s roles, exporting spans to `endpoint` (a traces URL) when given.
    fn settings(&self, scenario: Scenario, endpoint: Option<&str>) -> Result<Settings, String> {
        let roles = scenario.roles();
        let mut settings = Settings::local(roles.clone(), 0);
        let urls: BTreeMap<Role, String> = roles
            .iter()
            .map(|r| (*r, format!("http://127.0.0.1:{}", free_port())))
            .collect();
        if scenario == Scenario::Search {
            settings.product_data = self.args.stores.postgres_url.parse::<StoreUrl>()?;
            settings.session_data = self.args.stores.redis_url.parse::<StoreUrl>()?;
        }
        settings.workers = self.args.workers.unwrap_or(0) as usize;
        settings.otlp = endpoint.map(|e| Otlp {
            schedule_delay: Duration::from_millis(self.args.bsp_schedule_delay),
            ..Otlp::to(e)
        });
        Ok(processes::wire(&settings, &urls, &BTreeMap::new()))
    }

    async fn start(
        &self,
        scenario: Scenario,
        mode: &str,
        endpoint: Option<&str>,
    ) -> Result<RoleSet, Box<dyn std::error::Error>> {
        let mut env = Vec::new();
        if endpoint.is_some() {
            if let Some(q) = self.args.bsp_max_queue_size {
                env.push(("OTEL_BSP_MAX_QUEUE_SIZE".to_string(), q.to_string()));
            }
            if let Some(b) = self.args.bsp_max_export_batch_size {
                env.push(("OTEL_BSP_MAX_EXPORT_BATCH_SIZE".to_string(), b.to_string()));
            }
        }
        let settings = self.settings(scenario, endpoint)?;
        let prefix = format!("{}-{mode}-", scenario.as_str());
        let roles = Roles::start(
            &self.binary,
            settings,
            &env,
            &self.work,
            &prefix,
            &self.http,
        )
        .await?;
        Ok(RoleSet { roles })
    }

    fn entry_url(&self, scenario: Scenario, mode: &RoleSet) -> String {
        mode.roles.url(scenario.entry(), SEARCH_PATH)
    }

    /// One search answers with results.
    async fn search_once(
        &self,
        scenario: Scenario,
        mode: &RoleSet,
        name: &str,
    ) -> Result<(), shop::Error> {
        let what = format!(
            "search via the {name} {} of \"{}\" does not answer",
            scenario.entry(),
            scenario.as_str()
        );
        let url = self.entry_url(scenario, mode);
        self.http
            .expect(&what, "POST", &url, Some(SEARCH_BODY), "\"results\"")
            .await
            .map(|_| ())
    }

    /// Each role's /metrics, saved as `<scenario>-<mode>-<role>.metrics` and counted.
    async fn counts(
        &self,
        scenario: Scenario,
        mode: &RoleSet,
        name: &str,
    ) -> Result<Vec<(Role, Counted)>, Box<dyn std::error::Error>> {
        let mut counts = Vec::new();
        for role in scenario.roles() {
            let text = self.http.metrics(&mode.roles.url(role, "/metrics")).await?;
            let file = format!("{}-{name}-{role}.metrics", scenario.as_str());
            std::fs::write(self.work.join(file), &text)?;
            counts.push((role, Counted::of_metrics(&text)));
        }
        Ok(counts)
    }

    /// The span count check of `scenario`, its spans to `receiver`.
    async fn verify(
        &self,
        scenario: Scenario,
        receiver: &Sink,
    ) -> Result<Verified, Box<dyn std::error::Error>> {
        let requests = self.args.verify_requests;
        say(format!(
            "{}: span count check: {requests} searches (one connection) with spans to the test receiver ({})",
            scenario.as_str(),
            receiver.url
        ));
        let mode = self.start(scenario, "check", Some(&receiver.url)).await?;
        let before = receiver.counting.tally();
        self.search_once(scenario, &mode, "check").await?;
        let url = self.entry_url(scenario, &mode);
        // One client, one request at a time: one keep-alive connection.
        let client = Http::new();
        let deadline = Instant::now() + Duration::from_secs(requests / 20 + 60);
        let mut ok = 0;
        for _ in 0..requests {
            if Instant::now() > deadline {
                break;
            }
            if let Ok(a) = client.json("POST", &url, SEARCH_BODY).await {
                ok += u64::from(a.status == 200);
            }
        }
        if ok != requests {
            return Err(format!(
                "span count check of \"{}\": {ok} of {requests} searches answered 200",
                scenario.as_str()
            )
            .into());
        }
        tokio::time::sleep(self.args.settle()).await;
        let counts = self.counts(scenario, &mode, "check").await?;
        let received = receiver.counting.tally().since(&before);
        mode.roles.stop().await?;
        let roles = counts
            .into_iter()
            .map(|(role, counted)| {
                let decoded = received
                    .spans_by_service
                    .get(role.as_str())
                    .copied()
                    .unwrap_or(0);
                (role, counted, decoded)
            })
            .collect();
        Ok(Verified {
            scenario,
            // and the one search that checks the roles answer
            sent: requests + 1,
            roles,
            received,
        })
    }
}

/// nginx as an OTLP/HTTP traces endpoint: reads each body, discards it, answers 200, and
/// logs status, request length and Content-Length.
pub fn nginx_conf(dir: &Path, port: u16) -> String {
    let d = dir.display();
    // $request_length does not count a body that nginx discards (only the request line
    // and headers), so the body's size is logged from Content-Length; the exporter always
    // sends one.
    format!(
        "# Generated by cargo xtask bench-tracing: an OTLP/HTTP traces endpoint that reads each
# body, discards it and answers 200, logging status, request length and body length.
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
  log_format otlp '$status $request_length $content_length';
  access_log {d}/access.log otlp;
  client_body_temp_path {d}/body;
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 16m;
    client_body_buffer_size 1m;
    location = /v1/traces {{ return 200; }}
  }}
}}
"
    )
}

struct Nginx {
    process: Owned,
    dir: PathBuf,
    url: String,
}

impl Nginx {
    fn access_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// CPU ticks of nginx's master and worker(s).
    fn ticks(&self) -> u64 {
        let pid = self.process.pid();
        let mut pids = procs::children(pid);
        pids.push(pid);
        procs::cpu_ticks(&pids)
    }
}

async fn start_nginx(
    nginx: &Path,
    dir: &Path,
    http: &Http,
) -> Result<Nginx, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let port = free_port();
    std::fs::write(dir.join("nginx.conf"), nginx_conf(dir, port))?;
    let log = std::fs::File::create(dir.join("stdout.log"))?;
    let mut command = Command::new(nginx);
    command
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let mut process = Owned::spawn("nginx", command)?;
    for _ in 0..50 {
        if stores::answers(("127.0.0.1", port)).await || !process.running() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("http://127.0.0.1:{port}");
    let traces = format!("{url}/v1/traces");
    let answer = http
        .send("POST", &traces, Some(""), "application/x-protobuf")
        .await;
    match answer {
        Ok(a) if a.status == 200 => Ok(Nginx {
            process,
            dir: dir.to_path_buf(),
            url,
        }),
        other => {
            eprintln!(
                "{}\n{}",
                procs::tail(&dir.join("nginx-error.log"), 20),
                procs::tail(&dir.join("stdout.log"), 20)
            );
            Err(format!(
                "nginx does not answer 200 at {traces} ({})",
                match other {
                    Ok(a) => a.status.to_string(),
                    Err(e) => e.to_string(),
                }
            )
            .into())
        }
    }
}

async fn bench(args: Args) -> Result<Outcome, Box<dyn std::error::Error>> {
    let root = tools::root();
    let work = root.join("target/bench-tracing");
    let nginx_bin = tools::ensure_wrk_and_nginx(NAME)?;
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;

    say("building the release binary (cargo build --release --locked)");
    let binary = tools::build_release(true)?;

    let mut scenarios = args.scenarios.0.clone();
    let mut skipped = None;
    if scenarios.contains(&Scenario::Search) {
        let ready = stores::prepare(
            &binary,
            (&args.stores.redis_url, &args.stores.postgres_url),
            &work,
            NAME,
        )
        .await;
        if let Err(why) = ready {
            eprintln!(
                "{NAME}: SKIPPED: scenario \"search\" (the search path): {why}. Start Redis and \
                 PostgreSQL (or set REDIS_URL, POSTGRES_URL), or run BENCH_SCENARIOS=hop."
            );
            scenarios.retain(|s| *s != Scenario::Search);
            if scenarios.is_empty() {
                return Err("nothing left to measure".into());
            }
            skipped = Some(why.to_string());
        }
    }

    let bench = Bench {
        args: &args,
        binary,
        work: work.clone(),
        http: Http::new(),
    };

    // ---- 1. the span count, proven with the tests' receiver (not measured)
    let receiver = Sink::start();
    let mut verified = Vec::new();
    for scenario in &scenarios {
        verified.push(bench.verify(*scenario, &receiver).await?);
    }
    drop(receiver);

    // ---- 2. the measured receiver: nginx
    let mut nginx = start_nginx(&nginx_bin, &work.join("nginx"), &bench.http).await?;
    let search_lua = work.join("search.lua");
    wrk::write_script(&search_lua, "POST", SEARCH_BODY)?;
    let ticks_per_second = procs::clock_ticks_per_second() as f64;

    // ---- 3. load
    let load_before = procs::load_average();
    let mut rows = Vec::new();
    let mut measured = Vec::new();
    let endpoint = format!("{}/v1/traces", nginx.url);
    for scenario in &scenarios {
        let scenario = *scenario;
        let chain: Vec<&str> = scenario.roles().iter().map(|r| r.as_str()).collect();
        say(format!(
            "{}: starting {} twice: off, and on (spans to {endpoint} every {} ms)",
            scenario.as_str(),
            chain.join(" -> "),
            args.bsp_schedule_delay
        ));
        // What nginx logs from here until these roles are stopped is theirs.
        let from = nginx.access_lines().len();
        let mut off = bench.start(scenario, "off", None).await?;
        let mut on = bench.start(scenario, "on", Some(&endpoint)).await?;
        bench.search_once(scenario, &off, "off").await?;
        bench.search_once(scenario, &on, "on").await?;
        // Tracing is off where it should be, and on where it should be.
        for (mode, name) in [(&off, "off"), (&on, "on")] {
            for role in scenario.roles() {
                let text = bench
                    .http
                    .metrics(&mode.roles.url(role, "/metrics"))
                    .await?;
                match (name, exports_spans(&text)) {
                    ("off", true) => {
                        return Err(format!(
                            "the 'off' {role} of \"{}\" exports spans",
                            scenario.as_str()
                        )
                        .into())
                    }
                    ("on", false) => return Err(format!(
                        "the 'on' {role} shows no ecommerce_telemetry_spans_total: this binary does not export spans"
                    )
                    .into()),
                    _ => {}
                }
            }
        }

        let mut plan = Vec::new();
        if args.warmup > 0 {
            say(format!(
                "{}: warm-up: {}s of each mode (not measured)",
                scenario.as_str(),
                args.warmup
            ));
            plan.push((0, args.warmup));
        }
        for round in 1..=args.rounds {
            plan.push((round, args.seconds));
        }
        let mut announced = false;
        for (round, seconds) in plan {
            if round > 0 && !announced {
                announced = true;
                say(format!(
                    "{}: measuring: {} round(s) of off then on, {}s each, {} connections (wrk -t{}), {:.1}s pause after each run",
                    scenario.as_str(),
                    args.rounds,
                    args.seconds,
                    args.conns,
                    args.threads.min(args.conns),
                    args.settle().as_secs_f64()
                ));
            }
            for mode in [Mode::Off, Mode::On] {
                let set = match mode {
                    Mode::Off => &mut off,
                    Mode::On => &mut on,
                };
                let row = bench
                    .measure(
                        scenario,
                        mode,
                        round,
                        seconds,
                        set,
                        &nginx,
                        &search_lua,
                        ticks_per_second,
                    )
                    .await?;
                rows.push(row);
                // Every role of both modes, and nginx, still run.
                still_running(&mut off, &mut on, &mut nginx)?;
            }
        }
        bench.counts(scenario, &off, "off").await?;
        let on_counts = bench.counts(scenario, &on, "on").await?;
        on.roles.stop().await?;
        off.roles.stop().await?;
        let lines = nginx.access_lines();
        measured.push(Measured {
            scenario,
            on: on_counts,
            nginx_log: lines[from.min(lines.len())..].to_vec(),
        });
    }
    let load_after = procs::load_average();
    nginx.process.stop(Duration::from_secs(15))?;

    // ---- 4. the report
    let machine = machine_line(&args, &scenarios, &nginx_bin, &load_before, &load_after);
    let input = ReportInput {
        machine,
        command: args.command_line(),
        seconds: args.seconds,
        conns: args.conns,
        threads: args.threads,
        rounds: args.rounds,
        warmup: args.warmup,
        delay: args.bsp_schedule_delay,
        queue: args.bsp_max_queue_size,
        batch: args.bsp_max_export_batch_size,
        verify_requests: args.verify_requests,
        skipped: skipped.clone(),
        rows,
        verified,
        measured,
    };
    let (text, problems) = report(&input);
    std::fs::write(work.join("report.md"), &text)?;
    println!();
    println!("{text}");
    for p in &problems {
        println!("PROBLEM: {p}");
    }
    if problems.is_empty() && skipped.is_none() {
        say(format!("report in {}/report.md", work.display()));
    }
    Ok(Outcome {
        skipped,
        problems: !problems.is_empty(),
    })
}

fn still_running(
    off: &mut RoleSet,
    on: &mut RoleSet,
    nginx: &mut Nginx,
) -> Result<(), Box<dyn std::error::Error>> {
    off.roles.check_running()?;
    on.roles.check_running()?;
    if !nginx.process.running() {
        return Err("nginx stopped during the run".into());
    }
    Ok(())
}

impl Bench<'_> {
    /// One bounded wrk run of one mode, the pause after it, printed and returned.
    #[allow(clippy::too_many_arguments)]
    async fn measure(
        &self,
        scenario: Scenario,
        mode: Mode,
        round: u32,
        seconds: u64,
        m: &mut RoleSet,
        nginx: &Nginx,
        script: &Path,
        ticks_per_second: f64,
    ) -> Result<Row, Box<dyn std::error::Error>> {
        let label = if round == 0 {
            "warmup".to_string()
        } else {
            format!("round{round}")
        };
        let out = self.work.join(format!(
            "wrk-{}-{label}-{}.txt",
            scenario.as_str(),
            mode.as_str()
        ));
        let url = self.entry_url(scenario, m);
        let (shop0, ngx0) = (procs::cpu_ticks(&m.roles.pids()), nginx.ticks());
        let result = wrk::Run {
            threads: self.args.threads,
            conns: self.args.conns,
            seconds,
            url: &url,
            script,
            latency: true,
        }
        .measure(&out)?;
        // The same pause after both modes.
        tokio::time::sleep(self.args.settle()).await;
        m.roles.check_running()?;
        let (shop1, ngx1) = (procs::cpu_ticks(&m.roles.pids()), nginx.ticks());
        let shop_cpu_s = shop1.saturating_sub(shop0) as f64 / ticks_per_second;
        let row = Row {
            scenario,
            mode,
            round,
            requests: result.requests,
            rps: result.rps(),
            p50_ms: result.p50_ms(),
            p99_ms: result.p99_ms(),
            non2xx: result.status,
            socket_errors: result.socket_errors(),
            shop_cpu_s,
            receiver_cpu_s: ngx1.saturating_sub(ngx0) as f64 / ticks_per_second,
            cpu_us_per_request: (shop_cpu_s / result.requests.max(1) as f64 * 1e6 * 100.0).round()
                / 100.0,
        };
        println!(
            "{NAME}:   {:<6} {:<8} tracing {:<3} {:>9} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  CPU {:>5.1} us/req  errors {}",
            scenario.as_str(),
            if round == 0 { "warm-up".to_string() } else { format!("round {round}") },
            mode.as_str(),
            report::group(row.rps, 0),
            row.p50_ms,
            row.p99_ms,
            row.cpu_us_per_request,
            row.non2xx + row.socket_errors
        );
        Ok(row)
    }
}

fn machine_line(
    args: &Args,
    scenarios: &[Scenario],
    nginx: &Path,
    load_before: &str,
    load_after: &str,
) -> String {
    let m = report::Machine::read();
    let mut line = format!(
        "{} CPUs ({}), {:.1} GiB, {} {}, {}; wrk {}, {}",
        m.nproc,
        m.model,
        m.memory_gib,
        m.system,
        m.release,
        report::utc_now(),
        tools::wrk_version(),
        tools::nginx_version(nginx)
    );
    if scenarios.contains(&Scenario::Search) {
        line += &format!(
            ", PostgreSQL {}, Redis {}",
            tools::postgres_version(&args.stores.postgres_url),
            tools::redis_version(&args.stores.redis_url)
        );
    }
    line + &format!("; load average before {load_before}, after {load_after}")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    type Cli = crate::testing::Cli<Args>;

    #[test]
    fn scenarios_are_parsed_once_each_and_in_order() {
        assert_eq!(
            parse_scenarios("hop search"),
            Ok(Scenarios(vec![Scenario::Hop, Scenario::Search]))
        );
        assert!(parse_scenarios("search search")
            .unwrap_err()
            .contains("twice"));
        assert!(parse_scenarios("checkout")
            .unwrap_err()
            .contains("unknown scenario"));
        assert!(parse_scenarios("  ").is_err());
        let cli = Cli::try_parse_from(["t", "--scenarios", "hop", "--rounds", "1"]).unwrap();
        assert_eq!(
            cli.args.command_line(),
            "BENCH_SCENARIOS=hop ROUNDS=1 cargo xtask bench-tracing"
        );
        for bad in [
            &["t", "--rounds", "0"][..],
            &["t", "--rounds", "21"],
            &["t", "--warmup", "61"],
            &["t", "--verify-requests", "0"],
            &["t", "--bsp-schedule-delay", "0"],
            &["t", "--workers", "65"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn spans_per_search_are_those_of_the_scenarios_roles() {
        assert_eq!(Scenario::Search.spans_per_search(), 6);
        assert_eq!(Scenario::Hop.spans_per_search(), 3);
        assert_eq!(Scenario::Hop.spans(Role::Product), 1);
        assert_eq!(Scenario::Search.entry(), Role::WebGateway);
        assert_eq!(Scenario::Hop.entry(), Role::ApiGateway);
    }

    #[test]
    fn nginx_answers_exports_and_logs_their_sizes() {
        let conf = nginx_conf(Path::new("/w/nginx"), 4318);
        assert!(conf.contains("log_format otlp '$status $request_length $content_length';"));
        assert!(conf.contains("location = /v1/traces { return 200; }"));
        assert!(conf.contains("listen 127.0.0.1:4318;"));
    }
}
