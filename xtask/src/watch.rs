//! `cargo xtask watch`: the production topology on one machine (every role its own
//! process, wired as `cargo xtask topology` wires it) with a local Prometheus beside it
//! that scrapes every role as the chart's Prometheus would and evaluates the chart's
//! rules, and an OTLP sink the roles send their spans to; `--check` plays the k6 journey
//! with faults switched at run time and checks that the chart's dashboards and rules find
//! what they need there.
//!
//! Each role serves `/metrics` on an admin listener of its own (`--admin-listen`, as in
//! the chart), and its scrape job is named after the role. With real stores, cart-data
//! and session-data get a Redis replica, as the chart deploys one. Everything started is
//! stopped by PID on the way out (Ctrl-C, SIGTERM, the end of the check), and the
//! temporary folder (Prometheus's configuration, rules and data) removed; the logs stay
//! in `target/watch/`.

use std::collections::HashSet;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ecommerce::config::{Secret, Settings};
use ecommerce::role::Role;
use ecommerce::stores::StoreUrl;
use support::otlp::{self, Collector, Received, Verdict};
use support::processes::{self, Output, Topology};
use support::stub::Stub;

mod check;
mod dashboards;
mod prometheus;
mod promql;
mod replica;

use crate::otlp_sink::Tally;
use crate::procs::{self, Owned};
use crate::shop;
use crate::stores;
use crate::tools;
use crate::topology::config::{self, Common, ConfigError, Launch, Stores};
use crate::topology::{Causes, Signals};
use prometheus::{Api, RuleFile, ScrapeTarget};
use replica::Replica;

/// Where Debian's `prometheus` package puts the server.
const PROMETHEUS: &str = "/usr/bin/prometheus";
/// The chart's rules and dashboards, from the repository's root.
const RULES_DIR: &str = "deploy/helm/ecommerce/rules";
const DASHBOARDS_DIR: &str = "deploy/helm/ecommerce/dashboards";
/// How often the plain run looks whether everything still runs.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long every scrape target may take to be up once Prometheus is ready.
const TARGETS_UP_WITHIN: Duration = Duration::from_secs(20);
/// The most trace ids the sink remembers (16 bytes each).
const MAX_TRACE_IDS: usize = 4_000_000;

const ENVIRONMENT: &str = "\
Prints the shop's and Prometheus's URLs and runs until Ctrl-C or SIGTERM, then stops
everything it started. With --check it plays the k6 journey instead (remote-writing k6's
metrics into Prometheus) while switching faults at run time (payment-failure and
memory-leak on payment, then cart-data-outage on cart), then checks, over the run:
  - every role's scrape target is up;
  - every query of every panel of deploy/helm/ecommerce/dashboards/*.json returns a series;
  - every metric the rules of deploy/helm/ecommerce/rules/*.yaml read exists (or is
    recorded by one of them), and every rule evaluates;
  - exemplars of http_server_request_duration_seconds_bucket carry trace ids that the
    OTLP sink received;
  - k6's remote write arrived (k6_http_reqs_total);
and exits 1 when one fails, listing what failed.

Environment (as `cargo xtask topology`'s):
  BASE_PORT         web-gateway's port, the others follow   (8080 when free, else the
                    first free block from 8090); the admin listeners (/metrics, /faults)
                    follow 10 ports above
  PAYMENT_DELAY_MS, REDIS_URL, POSTGRES_URL, SESSION_SECRET, ECOMMERCE_BIN, RUST_LOG,
  WORKERS, READY_TIMEOUT, STOP_TIMEOUT: see `cargo xtask topology --help`
  ADMIN_TOKEN       the roles' admin token for PUT /faults   (random, printed)
  WATCH_DIR         logs: <role>.log, prometheus.log, k6.log (target/watch)
  PROMETHEUS        the Prometheus server                    (/usr/bin/prometheus,
                    installed with apt-get when missing, as root)
  K6                the k6 binary for --check                (scripts/k6/ensure-k6.sh)";

#[derive(Debug, clap::Args)]
#[command(after_long_help = ENVIRONMENT)]
pub struct Args {
    /// Where the shop keeps its data (as `cargo xtask topology`).
    #[arg(long, value_enum, default_value_t = Stores::Memory)]
    stores: Stores,
    /// Play the k6 journey with faults, check the dashboards and rules, stop.
    #[arg(long)]
    check: bool,
    /// With --check: how long the journey plays.
    #[arg(long, value_name = "SECONDS", default_value_t = 75, value_parser = clap::value_parser!(u64).range(10..=600))]
    check_seconds: u64,
    /// With --check: k6's virtual users.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    vus: u32,
    /// Prometheus's port on 127.0.0.1 (0: 9090 when free, else the next free one).
    #[arg(long, env = "PROMETHEUS_PORT", default_value_t = 0)]
    prometheus_port: u16,
}

pub fn run(args: Args) -> Result<(), Box<dyn StdError>> {
    // An actix system: the OTLP sink is an actix server of this process, and the calls to
    // Prometheus and the roles go through awc.
    let outcome = actix_web::rt::System::new().block_on(watch(args));
    outcome.map_err(|e| Causes::of(&e).into())
}

async fn watch(args: Args) -> Result<(), Failure> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let cwd = std::env::current_dir().map_err(Failure::Setup)?;
    let root = tools::root();
    let common = Common::from_env(&root, &cwd, &env)?;
    let launch = Launch::from_env(&cwd, &env)?;
    let logs =
        env("WATCH_DIR").map_or_else(|| root.join("target").join("watch"), |dir| cwd.join(dir));
    let prometheus = env("PROMETHEUS").map_or_else(|| PathBuf::from(PROMETHEUS), |p| cwd.join(p));
    let temp = temp_dir()?;
    let plan = Plan {
        base_port: env("BASE_PORT").map(|_| launch.base_port),
        token: env("ADMIN_TOKEN").unwrap_or_else(|| Secret::random().expose().to_string()),
        root,
        logs,
        temp: temp.clone(),
        prometheus,
        launch,
        common,
    };
    let mut signals = Signals::new().map_err(Failure::Setup)?;
    let mut running = Running::new(temp);
    let outcome = tokio::select! {
        outcome = session(&args, &plan, &mut running) => outcome,
        () = signals.recv() => {
            println!();
            if args.check { Err(Failure::Interrupted) } else { Ok(()) }
        }
    };
    let stopped = running.stop(plan.common.stop_timeout).await;
    outcome.and(stopped)
}

/// What a session is told.
struct Plan {
    root: PathBuf,
    logs: PathBuf,
    temp: PathBuf,
    prometheus: PathBuf,
    /// BASE_PORT, when set.
    base_port: Option<u16>,
    token: String,
    launch: Launch,
    common: Common,
}

/// Starts everything, then runs the check or waits (the caller stops it all).
async fn session(args: &Args, plan: &Plan, running: &mut Running) -> Result<(), Failure> {
    let (prometheus, promtool) = prometheus::ensure(&plan.prometheus, Path::new(PROMETHEUS))?;
    let k6 = if args.check {
        Some(tools::ensure_k6().map_err(Failure::K6)?)
    } else {
        None
    };
    std::fs::create_dir_all(&plan.logs).map_err(|source| Failure::Write {
        path: plan.logs.clone(),
        source,
    })?;
    let binary = match &plan.launch.binary {
        Some(binary) => binary.clone(),
        None => {
            say("building the release binary (cargo build --release)");
            tools::build_release(false).map_err(Failure::Build)?
        }
    };
    let (mut settings, prometheus_port) = settings(args, plan).await?;

    // The rules first: a rule file Prometheus cannot load stops the run before the shop.
    let rules = load_rules(&plan.root.join(RULES_DIR), &plan.temp.join("rules"))?;
    let rule_paths: Vec<PathBuf> = rules.iter().map(|(_, copy)| copy.clone()).collect();
    let rules: Vec<RuleFile> = rules.into_iter().map(|(file, _)| file).collect();
    let config = plan.temp.join("prometheus.yml");
    write(
        &config,
        &prometheus::render_config(&targets(&settings), &rule_paths),
    )?;
    prometheus::check_config(&promtool, &config)?;

    if args.stores == Stores::Real {
        let (redis, postgres) = (&plan.launch.redis_url, &plan.launch.postgres_url);
        stores::prepare(&binary, (redis, postgres), &plan.logs, "watch").await?;
        if let Some(replica) = start_replica(redis, plan, running).await? {
            settings.cart_data_replica = Some(replica.clone());
            settings.session_data_replica = Some(replica);
        }
    }
    let sink = Arc::new(Sink::new());
    let collector: Arc<dyn Collector> = sink.clone();
    let sink_url = running
        .sink
        .insert(Stub::start(move |cfg| otlp::routes(cfg, collector.clone())))
        .url
        .clone();
    start_roles(&binary, &settings, args.stores, plan, &sink_url, running).await?;

    let since = SystemTime::now();
    let server = running.prometheus.insert(prometheus::spawn(
        &prometheus,
        &prometheus::arguments(&config, &plan.temp.join("data"), prometheus_port),
        &plan.logs.join("prometheus.log"),
    )?);
    let pid = server.pid();
    let api = Api::new(prometheus_port);
    if let Err(e) = api.wait_ready(|| server.running()).await {
        eprintln!("{}", procs::tail(&plan.logs.join("prometheus.log"), 10));
        return Err(e.into());
    }
    wait_for_targets(&api).await;
    let rule_count: usize = rules.iter().map(|f| f.rules.len()).sum();
    say(format!(
        "prometheus {} (PID {pid}): every role scraped every {}, {}",
        prometheus.display(),
        prometheus::SCRAPE_INTERVAL,
        if rules.is_empty() {
            format!("no rule files in {RULES_DIR} yet")
        } else {
            format!("{rule_count} rules of {} files in {RULES_DIR}", rules.len())
        }
    ));
    report(plan, &settings, running, &api, &sink_url);

    let Some(k6) = k6 else {
        say(format!(
            "running; Ctrl-C (or SIGTERM to {}) stops everything",
            std::process::id()
        ));
        return keep_running(running, &plan.logs).await;
    };
    let setup = check::Setup {
        root: &plan.root,
        dir: &plan.logs,
        k6: &k6,
        web: format!("http://{}", settings.listen[&Role::WebGateway]),
        admin: settings.admin_listen.clone(),
        token: &plan.token,
        api: &api,
        rules: &rules,
        dashboards: dashboards(&plan.root.join(DASHBOARDS_DIR))?,
        traces: sink.as_ref(),
        since,
        duration: Duration::from_secs(args.check_seconds),
        vus: args.vus,
    };
    summarize(&check::run(&setup).await)
}

/// The roles' settings as `cargo xtask topology` makes them (BASE_PORT, or 8080 when
/// free, else the next free block), with admin listeners 10 ports above; and
/// Prometheus's port.
async fn settings(args: &Args, plan: &Plan) -> Result<(Settings, u16), Failure> {
    let roles = Role::ALL.len() as u16;
    let mut launch = plan.launch.clone();
    launch.base_port = match plan.base_port {
        Some(port) => port,
        None => shop::free_block(8080, roles).map_err(Failure::Ports)?,
    };
    let admin_base = shop::free_block(launch.base_port + 10, roles).map_err(Failure::Ports)?;
    let prometheus_port = match args.prometheus_port {
        // Above the roles' ports, which are not bound yet.
        0 => shop::free_block(9090.max(admin_base + 10), 1).map_err(Failure::Ports)?,
        port => port,
    };
    let mut settings = config::settings(&launch, args.stores)?;
    for role in Role::ALL {
        let address = &settings.listen[&role];
        if stores::answers(address.clone()).await {
            return Err(Failure::PortInUse {
                address: address.clone(),
                role,
            });
        }
    }
    settings.admin_listen = Role::ALL
        .iter()
        .map(|r| (*r, format!("127.0.0.1:{}", admin_base + r.offset())))
        .collect();
    Ok((settings, prometheus_port))
}

/// One scrape target per role, named after it, where it serves `/metrics`.
fn targets(settings: &Settings) -> Vec<ScrapeTarget> {
    Role::ALL
        .iter()
        .map(|role| ScrapeTarget {
            job: role.as_str().to_string(),
            address: settings
                .admin_listen
                .get(role)
                .unwrap_or(&settings.listen[role])
                .clone(),
        })
        .collect()
}

/// A replica of the Redis at `redis`, when `redis-server` is there to run one: its URL.
async fn start_replica(
    redis: &str,
    plan: &Plan,
    running: &mut Running,
) -> Result<Option<StoreUrl>, Failure> {
    let Some(server) = tools::which("redis-server") else {
        warn("no redis-server: cart-data and session-data run without a replica");
        return Ok(None);
    };
    let started = Replica::start(
        &server,
        redis,
        &plan.temp.join("redis-replica"),
        &plan.logs.join("redis-replica.log"),
    )
    .await;
    let replica = running.replica.insert(started.map_err(Failure::Replica)?);
    let url = replica.url.parse().map_err(Failure::ReplicaUrl)?;
    say(format!(
        "cart-data and session-data replica: {} (PID {})",
        ecommerce::stores::redact(&replica.url),
        replica.pid()
    ));
    Ok(Some(url))
}

/// Every role its own process, as `cargo xtask topology` starts them, sending its spans
/// to `sink_url`; returns once each is ready.
async fn start_roles(
    binary: &Path,
    settings: &Settings,
    stores: Stores,
    plan: &Plan,
    sink_url: &str,
    running: &mut Running,
) -> Result<(), Failure> {
    let launch = &plan.launch;
    let secret = match &launch.session_secret {
        Some(secret) => secret.clone(),
        None => Secret::random().expose().to_string(),
    };
    say(format!(
        "starting {} roles of {} (stores: {stores}, spans to {sink_url})",
        Role::ALL.len(),
        binary.display(),
    ));
    for role in Role::ALL {
        // Each start's log begins empty.
        write(&log(&plan.logs, role), "")?;
    }
    let topology = Topology::new(binary, settings.clone())
        .env("RUST_LOG", &launch.rust_log)
        .env("ECOMMERCE_SESSION_SECRET", secret)
        // Through the environment, so that `ps` does not show it.
        .env("ECOMMERCE_ADMIN_TOKEN", &plan.token)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", sink_url)
        .env("OTEL_BSP_SCHEDULE_DELAY", "1000")
        .own_process_groups()
        .ready_within(launch.ready_timeout)
        .stop_within(plan.common.stop_timeout);
    let roles = running.roles.insert(topology);
    let began = Instant::now();
    let started = async {
        roles
            .start_all(|role| Output::File(log(&plan.logs, role)))
            .await?;
        let left = launch.ready_timeout.saturating_sub(began.elapsed());
        roles.wait_until_ready(left).await
    }
    .await;
    if let Err(error) = started {
        for role in Role::ALL {
            eprintln!("--- {}", log(&plan.logs, role).display());
            eprintln!("{}", procs::tail(&log(&plan.logs, role), 5));
        }
        return Err(Failure::Start(error));
    }
    Ok(())
}

/// Prints the check's summary; `Err` naming the checks that failed.
fn summarize(outcomes: &[check::Outcome]) -> Result<(), Failure> {
    println!();
    for outcome in outcomes {
        let verdict = if outcome.passed { "PASS" } else { "FAIL" };
        say(format!(
            "check {:<12} {verdict}  {}",
            outcome.name, outcome.summary
        ));
        for failure in &outcome.failures {
            println!("    {failure}");
        }
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.name)
        .collect();
    if failed.is_empty() {
        say(format!("all {} checks passed", outcomes.len()));
        Ok(())
    } else {
        Err(Failure::Checks {
            failed: failed.join(", "),
        })
    }
}

/// Where each thing is, and how to switch a fault.
fn report(plan: &Plan, settings: &Settings, running: &Running, api: &Api, sink_url: &str) {
    let web = &settings.listen[&Role::WebGateway];
    say("ready:");
    println!("  shop        http://{web}/");
    println!(
        "  prometheus  {}/   (targets: {}/targets, rules: {}/rules)",
        api.base, api.base, api.base
    );
    println!("  otlp sink   {sink_url}/v1/traces   (counts: {sink_url}/stats)");
    println!(
        "  {:<12} {:<8} {:<22} METRICS (scrape job = role)",
        "ROLE", "PID", "ADDRESS"
    );
    if let Some(roles) = &running.roles {
        for process in roles.processes() {
            let admin = process.admin_listen().unwrap_or(process.listen());
            println!(
                "  {:<12} {:<8} {:<22} http://{admin}/metrics",
                process.role().as_str(),
                process.pid(),
                process.listen()
            );
        }
    }
    let payment = &settings.admin_listen[&Role::Payment];
    println!(
        "  faults      curl -X PUT http://{payment}/faults -H 'Authorization: Bearer {}' \\\n              \
         -H 'Content-Type: application/json' -d '{{\"faults\": [\"payment-failure=0.5\"]}}'",
        plan.token
    );
    println!("  logs        {}/", plan.logs.display());
}

/// Waits for a signal (the caller's), watching that everything still runs.
async fn keep_running(running: &mut Running, logs: &Path) -> Result<(), Failure> {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        if let Some(roles) = running.roles.as_mut() {
            if let Err(error) = roles.check_running() {
                if let processes::Error::Exited { role, .. } = &error {
                    let log = log(logs, *role);
                    warn(format!(
                        "{role} stopped unexpectedly; its log ({}):",
                        log.display()
                    ));
                    eprintln!("{}", procs::tail(&log, 20));
                }
                return Err(Failure::RoleStopped(error));
            }
        }
        if running.prometheus.as_mut().is_some_and(|p| !p.running()) {
            eprintln!("{}", procs::tail(&logs.join("prometheus.log"), 20));
            return Err(Failure::PrometheusStopped);
        }
    }
}

/// Waits until Prometheus has scraped every role once; says which are not up.
async fn wait_for_targets(api: &Api) {
    let deadline = Instant::now() + TARGETS_UP_WITHIN;
    loop {
        let down: Vec<String> = match api.targets().await {
            Ok(targets) => Role::ALL
                .iter()
                .filter(|r| {
                    !targets
                        .iter()
                        .any(|t| t.job == r.as_str() && t.health == "up")
                })
                .map(|r| r.to_string())
                .collect(),
            Err(e) => vec![e.to_string()],
        };
        if down.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            warn(format!(
                "not scraped (up) within {}s: {}",
                TARGETS_UP_WITHIN.as_secs(),
                down.join(", ")
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The chart's rule files, read, each with its copy in `copies` (the groups alone), which
/// Prometheus loads.
fn load_rules(dir: &Path, copies: &Path) -> Result<Vec<(RuleFile, PathBuf)>, Failure> {
    let paths = prometheus::rule_paths(dir).map_err(|source| Failure::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    if !paths.is_empty() {
        std::fs::create_dir_all(copies).map_err(|source| Failure::Write {
            path: copies.to_path_buf(),
            source,
        })?;
    }
    let mut files = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| Failure::Read {
            path: path.clone(),
            source,
        })?;
        let file = prometheus::parse_rules(&path, &text).map_err(|source| Failure::Rules {
            path: path.clone(),
            source,
        })?;
        let copy = copies.join(path.file_name().unwrap_or_default());
        write(&copy, &prometheus::render_rules(&file))?;
        files.push((file, copy));
    }
    Ok(files)
}

/// The chart's dashboards, sorted.
fn dashboards(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Failure::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file())
        .collect();
    paths.sort();
    Ok(paths)
}

fn log(logs: &Path, role: Role) -> PathBuf {
    logs.join(format!("{role}.log"))
}

fn write(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text).map_err(|source| Failure::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// A new folder of this run's own under the system's temporary folder.
fn temp_dir() -> Result<PathBuf, Failure> {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let path =
        std::env::temp_dir().join(format!("ecommerce-watch.{}.{nanos:09}", std::process::id()));
    std::fs::create_dir(&path).map_err(|source| Failure::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// What this run started, to stop on the way out.
struct Running {
    temp: PathBuf,
    replica: Option<Replica>,
    sink: Option<Stub>,
    roles: Option<Topology>,
    prometheus: Option<Owned>,
}

impl Running {
    fn new(temp: PathBuf) -> Running {
        Running {
            temp,
            replica: None,
            sink: None,
            roles: None,
            prometheus: None,
        }
    }

    /// Stops the roles (which send their last spans on the way out), Prometheus, the
    /// sink and the replica, each by its PID, and removes the temporary folder.
    async fn stop(&mut self, within: Duration) -> Result<(), Failure> {
        let mut failed = None;
        if let Some(mut roles) = self.roles.take() {
            let pids: Vec<String> = roles
                .processes()
                .iter()
                .map(|p| p.pid().to_string())
                .collect();
            if !pids.is_empty() {
                say(format!(
                    "stopping the roles (SIGTERM to {})",
                    pids.join(" ")
                ));
            }
            if let Err(e) = roles.stop_all().await {
                failed.get_or_insert(Failure::StopRoles(e));
            }
        }
        if let Some(prometheus) = self.prometheus.take() {
            say(format!(
                "stopping prometheus (SIGTERM to {})",
                prometheus.pid()
            ));
            if let Err(e) = prometheus.stop(within) {
                failed.get_or_insert(Failure::StopProcess(e));
            }
        }
        if let Some(sink) = self.sink.take() {
            sink.stop().await;
        }
        if let Some(replica) = self.replica.take() {
            say(format!(
                "stopping the Redis replica (SIGTERM to {})",
                replica.pid()
            ));
            if let Err(e) = replica.stop(within) {
                failed.get_or_insert(Failure::StopProcess(e));
            }
        }
        match std::fs::remove_dir_all(&self.temp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                failed.get_or_insert(Failure::Write {
                    path: self.temp.clone(),
                    source: e,
                });
            }
            _ => say(format!("stopped; removed {}", self.temp.display())),
        }
        failed.map_or(Ok(()), Err)
    }
}

/// The OTLP sink of `cargo xtask otlp-sink` (its counts), which also remembers the ids of
/// the traces it received, to find them in exemplars.
struct Sink {
    tally: Tally,
    traces: Mutex<HashSet<[u8; 16]>>,
}

impl Sink {
    fn new() -> Sink {
        Sink {
            tally: Tally::new(None),
            traces: Mutex::default(),
        }
    }

    fn traces(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 16]>> {
        // A panic elsewhere leaves the set whole: each insert is one statement.
        self.traces.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl check::Traces for Sink {
    /// Whether a trace of this id (32 hex digits) arrived.
    fn seen(&self, id: &str) -> bool {
        trace_id(id).is_some_and(|id| self.traces().contains(&id))
    }

    fn count(&self) -> usize {
        self.traces().len()
    }
}

impl Collector for Sink {
    fn collect(&self, bytes: usize, spans: Vec<Received>) {
        {
            let mut traces = self.traces();
            for span in &spans {
                if traces.len() >= MAX_TRACE_IDS {
                    break;
                }
                if let Ok(id) = <[u8; 16]>::try_from(span.span.trace_id.as_slice()) {
                    traces.insert(id);
                }
            }
        }
        self.tally.collect(bytes, spans);
    }

    fn undecodable(&self, bytes: usize) -> Verdict {
        self.tally.undecodable(bytes)
    }

    fn refused(&self) {
        self.tally.refused();
    }

    fn stats(&self) -> Option<String> {
        self.tally.stats()
    }
}

/// 32 hex digits as the 16 bytes of a trace id.
fn trace_id(hex: &str) -> Option<[u8; 16]> {
    let hex = hex.as_bytes();
    if hex.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        id[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(id)
}

fn say(message: impl fmt::Display) {
    println!("watch: {message}");
}

fn warn(message: impl fmt::Display) {
    eprintln!("watch: {message}");
}

/// Why watching failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot set up (signals, working directory)")]
    Setup(#[source] io::Error),
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no free ports")]
    Ports(#[source] shop::Error),
    #[error("{address} ({role}) is in use: stop what listens there, or set BASE_PORT")]
    PortInUse { address: String, role: Role },
    #[error("cannot build the shop")]
    Build(#[source] tools::Error),
    #[error("no k6 for --check")]
    K6(#[source] tools::Error),
    #[error(transparent)]
    Stores(#[from] stores::StoresError),
    #[error("the stores' replica did not start")]
    Replica(#[source] replica::Error),
    #[error("the replica's URL does not parse: {0}")]
    ReplicaUrl(String),
    #[error("{} is not a rule file Prometheus can load", .path.display())]
    Rules {
        path: PathBuf,
        #[source]
        source: prometheus::RulesError,
    },
    #[error("prometheus")]
    Prometheus(#[from] prometheus::Error),
    #[error("the roles did not start; stopped what had started")]
    Start(#[source] processes::Error),
    #[error("a role stopped unexpectedly; stopped the rest")]
    RoleStopped(#[source] processes::Error),
    #[error("prometheus stopped unexpectedly; stopped the rest")]
    PrometheusStopped,
    #[error("interrupted; stopped what had started")]
    Interrupted,
    #[error("checks failed: {failed}")]
    Checks { failed: String },
    #[error("stopping the roles failed")]
    StopRoles(#[source] processes::Error),
    #[error("stopping failed")]
    StopProcess(#[source] procs::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    type Cli = crate::testing::Cli<Args>;

    #[test]
    fn the_options_default_to_a_memory_shop_and_a_short_check() {
        let args = Cli::try_parse_from(["watch"]).unwrap().args;
        assert_eq!(
            (args.stores, args.check, args.check_seconds, args.vus),
            (Stores::Memory, false, 75, 3)
        );
        let args = Cli::try_parse_from([
            "watch",
            "--stores",
            "real",
            "--check",
            "--check-seconds",
            "60",
            "--vus",
            "2",
        ])
        .unwrap()
        .args;
        assert_eq!(
            (args.stores, args.check, args.check_seconds, args.vus),
            (Stores::Real, true, 60, 2)
        );
        // A check is bounded.
        assert!(Cli::try_parse_from(["watch", "--check-seconds", "3600"]).is_err());
        assert!(Cli::try_parse_from(["watch", "--vus", "0"]).is_err());
    }

    #[test]
    fn trace_ids_are_read_from_hex_in_either_case() {
        use check::Traces;
        let sink = Sink::new();
        let id = [0xab; 16];
        sink.traces().insert(id);
        assert!(sink.seen("abababababababababababababababab"));
        assert!(sink.seen("ABABABABABABABABABABABABABABABAB"));
        assert!(!sink.seen("ab"));
        assert!(!sink.seen("zzababababababababababababababab"));
        assert_eq!(
            trace_id("000102030405060708090a0b0c0d0e0f").unwrap()[15],
            15
        );
    }
}
