//! `cargo xtask topology`: the production topology on one machine, every role of the shop
//! its own process of the release binary, wired as in a deployment (web-gateway ->
//! api-gateway -> services; checkout -> api-gateway), on 127.0.0.1.
//!
//! The roles are `Role::ALL`, their settings one `Settings` wired by
//! `support::processes::wire` as the tests wire theirs (`config`), and every process is
//! started, recorded in its PID file, found again by a later call and stopped by
//! `support::processes::Topology`: this module only decides when, and says what happens.
//!
//! What comes next, and where it goes:
//! - Several processes of one role: after `start_all`, one `Topology::start(role, ...)`
//!   per extra process. Its PID file (`<role>.<n>.pid`) follows by itself, `status`
//!   prints a row per process and `stop` stops whatever the PID files name, so only
//!   `start` changes (a `--processes cart=3` option, a log `<role>.<n>.log` each). With
//!   the shop able to bind with SO_REUSEPORT (`--reuse-port`, a `Settings` field that
//!   `serve_command` passes on) they share the role's address; until then `customize`
//!   gives each its own.
//! - Replacing one process under load: a `replace` command that adopts the running shop
//!   (`Topology::adopt`, as `stop` does) and calls `Topology::replace(id)`. Today that
//!   stops the process before starting the next (the port is the role's, so calls are
//!   refused in between); with `--reuse-port` the successor starts first and the old
//!   process stops once the new one is ready: a start-then-stop variant of `replace` in
//!   `support::processes`.
//! - A local Prometheus beside the shop: one more process this tool starts after
//!   `start_all` and stops with the roles, its scrape targets written from
//!   `Topology::processes()` (each `admin_listen()`, else `listen()`), its PID file in
//!   the same folder.

use std::error::Error as StdError;
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use clap::Subcommand;
use ecommerce::config::{listen_address, Secret, Settings};
use ecommerce::role::Role;
use support::processes::{self, Output, PidFiles, Topology};
use tokio::signal::unix::{signal, Signal, SignalKind};

pub(crate) mod config;

use crate::stores;
use config::{Common, ConfigError, Launch, State, Stores};

/// How often `run` looks whether every role still runs.
const WATCH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
#[command(after_long_help = config::ENVIRONMENT)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Start every role, wait until each is ready, and return with them running.
    Start(StartArgs),
    /// Stop exactly what `start` started: SIGTERM, then SIGKILL after STOP_TIMEOUT.
    Stop,
    /// Which roles are running; fails unless every one is.
    Status,
    /// Start, wait for Ctrl-C or SIGTERM, then stop.
    Run(StartArgs),
}

#[derive(Debug, clap::Args)]
struct StartArgs {
    /// Where the shop keeps its data.
    #[arg(long, value_enum, default_value_t = Stores::Memory)]
    stores: Stores,
}

pub fn run(args: Args) -> Result<(), Box<dyn StdError>> {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::Runtime)
        .and_then(|runtime| runtime.block_on(dispatch(args.action)));
    outcome.map_err(|e| Causes::of(&e).into())
}

async fn dispatch(action: Action) -> Result<(), Failure> {
    let env = |name: &str| std::env::var(name).ok();
    let cwd = std::env::current_dir().map_err(Failure::Runtime)?;
    let common = Common::from_env(&workspace_root(), &cwd, &env)?;
    match action {
        Action::Start(args) => {
            let launch = Launch::from_env(&cwd, &env)?;
            let mut signals = Signals::new().map_err(Failure::Runtime)?;
            let topology = start(&common, &launch, args.stores, &mut signals).await?;
            topology.detach();
            Ok(())
        }
        Action::Stop => stop(&common).await,
        Action::Status => status(&common, &env).await,
        Action::Run(args) => {
            let launch = Launch::from_env(&cwd, &env)?;
            run_until_signalled(&common, &launch, args.stores).await
        }
    }
}

/// Starts every role and waits until each is ready. On a failure, or SIGINT/SIGTERM
/// meanwhile, it stops what it started.
async fn start(
    common: &Common,
    launch: &Launch,
    stores: Stores,
    signals: &mut Signals,
) -> Result<Topology, Failure> {
    let settings = config::settings(launch, stores)?;
    let files = PidFiles::new(common.pid_dir());
    if first_running(&files, &settings)?.is_some() {
        return Err(Failure::AlreadyRunning {
            dir: common.dir.clone(),
        });
    }
    for role in Role::ALL {
        let address = &settings.listen[&role];
        if stores::answers(address.clone()).await {
            return Err(Failure::PortInUse {
                address: address.clone(),
                role,
            });
        }
    }
    let binary = binary(launch).await?;
    fs::create_dir_all(&common.dir).map_err(|source| Failure::State {
        path: common.dir.clone(),
        source,
    })?;
    if stores == Stores::Real {
        stores::prepare(
            &binary,
            (&launch.redis_url, &launch.postgres_url),
            &common.dir,
            "topology",
        )
        .await?;
    }
    // The state of an earlier start whose processes are gone.
    forget_state(common)?;
    let secret = match &launch.session_secret {
        Some(secret) => secret.clone(),
        None => Secret::random().expose().to_string(),
    };
    let state = State {
        stores: Some(stores),
        base_port: Some(launch.base_port),
        binary: Some(binary.clone()),
        started: Some(config::utc_timestamp(SystemTime::now())),
    };
    write(&common.state_file(), state.render())?;
    for role in Role::ALL {
        // Each start's log begins empty (a replacement's would continue it).
        write(&common.log(role), String::new())?;
    }

    let delay = launch.payment_delay;
    say(format!(
        "starting {} roles of {} (stores: {stores}, payment delay {}-{} ms)",
        Role::ALL.len(),
        binary.display(),
        delay.min_ms,
        delay.max_ms
    ));
    let mut topology = Topology::new(&binary, settings)
        .env("RUST_LOG", &launch.rust_log)
        .env("ECOMMERCE_SESSION_SECRET", secret)
        .own_process_groups()
        .pid_files(files)
        .ready_within(launch.ready_timeout)
        .stop_within(common.stop_timeout);
    let began = Instant::now();
    let started = tokio::select! {
        started = async {
            topology.start_all(|role| Output::File(common.log(role))).await?;
            let left = launch.ready_timeout.saturating_sub(began.elapsed());
            topology.wait_until_ready(left).await
        } => started.map_err(Some),
        () = signals.recv() => Err(None),
    };
    if let Err(why) = started {
        if let Some(error) = &why {
            show_logs(error, common);
        }
        // What it started goes, whatever else failed.
        if let Err(e) = stop_topology(&mut topology, common).await {
            warn(format!("cleaning up: {}", Causes::of(&e)));
        }
        return Err(why.map_or(Failure::Interrupted, Failure::Start));
    }

    say(format!(
        "ready: the shop is at http://127.0.0.1:{}/",
        launch.base_port
    ));
    report(&mut topology, Some(stores), launch.base_port).await;
    say(format!(
        "logs in {}/<role>.log; stop with: cargo xtask topology stop",
        common.dir.display()
    ));
    Ok(topology)
}

/// Stops what the PID files name.
async fn stop(common: &Common) -> Result<(), Failure> {
    let files = PidFiles::new(common.pid_dir());
    if !files.dir().exists() {
        say(format!(
            "nothing to stop (no state in {})",
            common.dir.display()
        ));
        return forget_state(common);
    }
    let state = read_state(common);
    let settings = config::wired(state.base_port.unwrap_or(8080));
    let mut topology = Topology::new(state_binary(&state), settings)
        .pid_files(files)
        .stop_within(common.stop_timeout);
    topology
        .adopt(|role| Output::File(common.log(role)))
        .map_err(Failure::Processes)?;
    stop_topology(&mut topology, common).await
}

/// Stops every process of `topology` (callers first), checks that nothing the PID files
/// name still runs, and removes the state; the logs stay.
async fn stop_topology(topology: &mut Topology, common: &Common) -> Result<(), Failure> {
    let mut targets: Vec<(Role, u32)> = topology
        .processes()
        .iter()
        .map(|p| (p.role(), p.pid()))
        .collect();
    targets.sort();
    if !targets.is_empty() {
        let roles: Vec<String> = targets.iter().map(|(r, _)| r.to_string()).collect();
        let pids: Vec<String> = targets.iter().map(|(_, p)| p.to_string()).collect();
        say(format!(
            "stopping {} (SIGTERM to {})",
            roles.join(" "),
            pids.join(" ")
        ));
    }
    let stopped = topology.stop_all().await.map_err(Failure::Stop)?;
    let killed: Vec<String> = stopped
        .iter()
        .filter(|s| s.killed)
        .map(|s| s.role.to_string())
        .collect();
    if !killed.is_empty() {
        warn(format!(
            "still running after {}s: {}: SIGKILL",
            common.stop_timeout.as_secs_f64(),
            killed.join(" ")
        ));
    }
    let files = PidFiles::new(common.pid_dir());
    if let Some((role, pid)) = first_running(&files, topology.settings())? {
        return Err(Failure::StillRunning { role, pid });
    }
    forget_state(common)?;
    say(format!("stopped; logs kept in {}", common.dir.display()));
    Ok(())
}

async fn status(common: &Common, env: &impl Fn(&str) -> Option<String>) -> Result<(), Failure> {
    let state = read_state(common);
    let base_port = match state.base_port {
        Some(port) => port,
        None => config::base_port(env)?,
    };
    let mut topology = Topology::new(state_binary(&state), config::wired(base_port))
        .pid_files(PidFiles::new(common.pid_dir()));
    topology
        .adopt(|_| Output::Discard)
        .map_err(Failure::Processes)?;
    let running = report(&mut topology, state.stores, base_port).await;
    if running == Role::ALL.len() {
        Ok(())
    } else {
        Err(Failure::NotAllRunning {
            running,
            total: Role::ALL.len(),
        })
    }
}

async fn run_until_signalled(
    common: &Common,
    launch: &Launch,
    stores: Stores,
) -> Result<(), Failure> {
    let mut signals = Signals::new().map_err(Failure::Runtime)?;
    let mut topology = start(common, launch, stores, &mut signals).await?;
    say(format!(
        "running; Ctrl-C (or SIGTERM to {}) stops it",
        std::process::id()
    ));
    loop {
        tokio::select! {
            () = signals.recv() => {
                println!();
                return stop_topology(&mut topology, common).await;
            }
            () = tokio::time::sleep(WATCH_EVERY) => {
                if let Err(error) = topology.check_running() {
                    if let processes::Error::Exited { role, .. } = &error {
                        let log = common.log(*role);
                        warn(format!("{role} stopped unexpectedly; its log ({}):", log.display()));
                        tail(&log, 20);
                    }
                    stop_topology(&mut topology, common).await?;
                    return Err(Failure::RoleStopped(error));
                }
            }
        }
    }
}

/// Prints a row per running process (and one per role without any: stopped) and returns
/// how many roles run.
async fn report(topology: &mut Topology, stores: Option<Stores>, base_port: u16) -> usize {
    println!("{}", row("ROLE", "PID", "STATE", "ADDRESS", "READYZ"));
    let mut running = 0;
    for role in Role::ALL {
        let mut rows = 0;
        for process in topology.processes_mut() {
            if process.role() != role || !process.is_running() {
                continue;
            }
            let ready = match process.readiness().await {
                Some(status) => status.to_string(),
                // As curl writes it.
                None => "000".to_string(),
            };
            let pid = process.pid().to_string();
            println!(
                "{}",
                row(role.as_str(), &pid, "running", process.listen(), &ready)
            );
            rows += 1;
        }
        if rows > 0 {
            running += 1;
        } else {
            let address = listen_address("127.0.0.1", base_port, role);
            println!("{}", row(role.as_str(), "-", "stopped", &address, "-"));
        }
    }
    let stores = stores
        .map(|s| format!(" (stores: {s})"))
        .unwrap_or_default();
    say(format!(
        "{running} of {} roles running{stores}",
        Role::ALL.len()
    ));
    running
}

fn row(role: &str, pid: &str, state: &str, address: &str, ready: &str) -> String {
    format!("  {role:<12} {pid:<8} {state:<7} {address:<22} {ready}")
}

/// A process the PID files name that runs as the role its file says.
fn first_running(files: &PidFiles, settings: &Settings) -> Result<Option<(Role, u32)>, Failure> {
    // Adopted only to look: a topology lets adopted processes be when it is dropped.
    let mut look = Topology::new("ecommerce", settings.clone()).pid_files(files.clone());
    look.adopt(|_| Output::Discard)
        .map_err(Failure::Processes)?;
    Ok(look.processes().first().map(|p| (p.role(), p.pid())))
}

/// The binary to run: ECOMMERCE_BIN, else the release build, built now.
async fn binary(launch: &Launch) -> Result<PathBuf, Failure> {
    if let Some(path) = &launch.binary {
        let executable =
            fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        return if executable {
            Ok(path.clone())
        } else {
            Err(Failure::NotExecutable(path.clone()))
        };
    }
    warn("building the release binary (cargo build --release)");
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Its output is a tool's chatter: to stderr, as everything but our own report.
    let stdout = io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_or_else(|_| Stdio::inherit(), Stdio::from);
    let status = tokio::process::Command::new(cargo)
        .args(["build", "--release", "--quiet"])
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(stdout)
        .status()
        .await
        .map_err(Failure::BuildSpawn)?;
    if !status.success() {
        return Err(Failure::Build(status));
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    Ok(target.join("release").join("ecommerce"))
}

/// The repository's root (this package lives in `xtask/` under it).
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn read_state(common: &Common) -> State {
    fs::read_to_string(common.state_file())
        .map(|text| State::parse(&text))
        .unwrap_or_default()
}

fn state_binary(state: &State) -> PathBuf {
    state
        .binary
        .clone()
        .unwrap_or_else(|| PathBuf::from("ecommerce"))
}

/// Removes the PID files and the state file (not the logs).
fn forget_state(common: &Common) -> Result<(), Failure> {
    PidFiles::new(common.pid_dir())
        .remove_all()
        .map_err(|source| Failure::State {
            path: common.pid_dir(),
            source,
        })?;
    match fs::remove_file(common.state_file()) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Failure::State {
            path: common.state_file(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn write(path: &Path, text: String) -> Result<(), Failure> {
    fs::write(path, text).map_err(|source| Failure::State {
        path: path.to_path_buf(),
        source,
    })
}

/// The logs that say why a start failed.
fn show_logs(error: &processes::Error, common: &Common) {
    match error {
        processes::Error::Exited { role, .. } => {
            let log = common.log(*role);
            warn(format!(
                "{role} exited during start; its log ({}):",
                log.display()
            ));
            tail(&log, 20);
        }
        processes::Error::NotReady { .. } | processes::Error::NotHealthy { .. } => {
            for role in Role::ALL {
                eprintln!("--- {role}.log");
                tail(&common.log(role), 5);
            }
        }
        _ => {}
    }
}

/// The last `lines` lines of `path`, on stderr.
fn tail(path: &Path, lines: usize) {
    if let Ok(text) = fs::read_to_string(path) {
        let all: Vec<&str> = text.lines().collect();
        for line in &all[all.len().saturating_sub(lines)..] {
            eprintln!("{line}");
        }
    }
}

pub(crate) fn say(message: impl fmt::Display) {
    println!("topology: {message}");
}

fn warn(message: impl fmt::Display) {
    eprintln!("topology: {message}");
}

/// SIGINT and SIGTERM, handled from the start: neither ends this process before it has
/// stopped what it started.
pub(crate) struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    pub(crate) fn new() -> io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot set up (runtime, signals, working directory)")]
    Runtime(#[source] io::Error),
    #[error("already running (state in {}): cargo xtask topology stop first", .dir.display())]
    AlreadyRunning { dir: PathBuf },
    #[error("{address} ({role}) is in use: stop what listens there, or set BASE_PORT")]
    PortInUse { address: String, role: Role },
    #[error("ECOMMERCE_BIN={} is not an executable", .0.display())]
    NotExecutable(PathBuf),
    #[error("cannot run cargo build --release")]
    BuildSpawn(#[source] io::Error),
    #[error("cargo build --release failed ({0})")]
    Build(ExitStatus),
    #[error("cannot write {}", .path.display())]
    State {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Stores(#[from] stores::StoresError),
    #[error(transparent)]
    Processes(processes::Error),
    #[error("start failed; stopped what had started")]
    Start(#[source] processes::Error),
    #[error("interrupted; stopped what had started")]
    Interrupted,
    #[error("stop failed")]
    Stop(#[source] processes::Error),
    #[error("{role} (PID {pid}) is still running")]
    StillRunning { role: Role, pid: u32 },
    #[error("only {running} of {total} roles are running")]
    NotAllRunning { running: usize, total: usize },
    #[error("a role stopped unexpectedly; stopped the others")]
    RoleStopped(#[source] processes::Error),
}

/// An error and its causes on one line, `a: b: c`: what `main` prints (it prints an
/// error's own message only).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Causes(String);

impl Causes {
    pub(crate) fn of(error: &dyn StdError) -> Causes {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Causes(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    type Cli = crate::testing::Cli<Args>;

    fn parse(argv: &[&str]) -> Result<Action, String> {
        let mut full = vec!["topology"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full)
            .map(|cli| cli.args.action)
            .map_err(|e| e.to_string())
    }

    fn stores_of(action: Result<Action, String>) -> Option<Stores> {
        match action.unwrap() {
            Action::Start(a) | Action::Run(a) => Some(a.stores),
            _ => None,
        }
    }

    #[test]
    fn the_commands_and_their_one_option_parse() {
        assert_eq!(stores_of(parse(&["start"])), Some(Stores::Memory));
        assert_eq!(
            stores_of(parse(&["start", "--stores", "real"])),
            Some(Stores::Real)
        );
        assert_eq!(
            stores_of(parse(&["run", "--stores=real"])),
            Some(Stores::Real)
        );
        assert_eq!(stores_of(parse(&["run"])), Some(Stores::Memory));
        assert!(matches!(parse(&["stop"]), Ok(Action::Stop)));
        assert!(matches!(parse(&["status"]), Ok(Action::Status)));
    }

    #[test]
    fn bad_commands_and_options_are_refused_with_the_valid_ones() {
        let err = parse(&["start", "--stores", "disk"]).unwrap_err();
        assert!(err.contains("memory") && err.contains("real"), "{err}");
        assert!(parse(&["restart"]).is_err());
        assert!(parse(&["stop", "--stores", "real"]).is_err());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn the_help_documents_the_environment() {
        let err = parse(&["--help"]).unwrap_err();
        for name in [
            "BASE_PORT",
            "TOPOLOGY_DIR",
            "ECOMMERCE_BIN",
            "STOP_TIMEOUT",
            "pids/<role>.pid",
        ] {
            assert!(err.contains(name), "{name} missing from:\n{err}");
        }
    }

    #[test]
    fn status_rows_line_up_under_their_header() {
        let header = row("ROLE", "PID", "STATE", "ADDRESS", "READYZ");
        let line = row("web-gateway", "4242", "running", "127.0.0.1:8080", "200");
        assert_eq!(
            header,
            "  ROLE         PID      STATE   ADDRESS                READYZ"
        );
        assert_eq!(
            line,
            "  web-gateway  4242     running 127.0.0.1:8080         200"
        );
        assert_eq!(header.find("READYZ"), line.find("200"));
    }

    #[test]
    fn a_failure_reads_as_one_line_with_its_causes() {
        let failure = Failure::State {
            path: "/t/topology.env".into(),
            source: io::Error::new(io::ErrorKind::PermissionDenied, "permission denied"),
        };
        assert_eq!(
            Causes::of(&failure).to_string(),
            "cannot write /t/topology.env: permission denied"
        );
        let port = Failure::PortInUse {
            address: "127.0.0.1:8082".into(),
            role: Role::Cart,
        };
        assert_eq!(
            port.to_string(),
            "127.0.0.1:8082 (cart) is in use: stop what listens there, or set BASE_PORT"
        );
    }
}
