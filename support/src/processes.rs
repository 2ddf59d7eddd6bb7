//! The shop as processes ([`Topology`]): one process of the `ecommerce` binary per role.
//!
//! Every role of a `Settings` runs as its own process of the `ecommerce` binary, started,
//! watched, replaced and stopped, each step within a bound.
//!
//! Nothing here asserts: the tests and the tools that run the production topology on one
//! machine share it, and each decides what a failure means (retry, panic, report).
//! Every process is started with [`ecommerce::cli::serve_command`], the one description
//! of how a role process is wired (the inverse of the CLI's parsing), so its command line
//! says exactly what its `Settings` say.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ecommerce::config::Settings;
use ecommerce::role::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The environment variable that names the binary to run instead of the one Cargo built
/// (the same name `scripts/topology.sh` and the chart tests read).
pub const BINARY_VAR: &str = "ECOMMERCE_BIN";

/// How long one health or identity request may take: a port held by something that
/// accepts and never answers must not stall a start.
const PROBE_WITHIN: Duration = Duration::from_secs(2);
/// Between two looks at a process that is starting or stopping.
const POLL: Duration = Duration::from_millis(20);

/// The `ecommerce` binary: the file `ECOMMERCE_BIN` names, else the one Cargo builds
/// next to the running executable (as assert_cmd finds it: a test runs from
/// `target/<profile>/deps/`, a tool from `target/<profile>/`). Cargo builds the binary
/// before the root package's integration tests; other callers build it first.
pub fn binary() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os(BINARY_VAR) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::Binary {
                path,
                hint: "the file ECOMMERCE_BIN names does not exist",
            })
        };
    }
    let mut dir = std::env::current_exe()
        .map_err(Error::CurrentExe)?
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("ecommerce{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Binary {
            path,
            hint: "build it first (`cargo build`; `cargo test` builds it for the root \
                   package's integration tests), or name one in ECOMMERCE_BIN",
        })
    }
}

/// `settings` wired for a topology of processes: each role listening at its URL in `urls`
/// (and its admin listener at its URL in `admin_urls`), the web-gateway and checkout
/// calling the api-gateway there and the api-gateway forwarding to the services there,
/// unless `settings` already name other URLs for them.
pub fn wire(
    settings: &Settings,
    urls: &BTreeMap<Role, String>,
    admin_urls: &BTreeMap<Role, String>,
) -> Settings {
    let address = |url: &String| url.trim_start_matches("http://").to_string();
    let mut wired = settings.clone();
    wired.listen = urls.iter().map(|(r, u)| (*r, address(u))).collect();
    wired.admin_listen = admin_urls.iter().map(|(r, u)| (*r, address(u))).collect();
    wired.api_gateway_url = settings
        .api_gateway_url
        .clone()
        .or_else(|| urls.get(&Role::ApiGateway).cloned());
    for upstream in Role::UPSTREAMS {
        if let Some(url) = urls.get(&upstream) {
            wired
                .upstreams
                .entry(upstream)
                .or_insert_with(|| url.clone());
        }
    }
    wired
}

/// Where a role process's stdout and stderr go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Where this process's own go (a terminal, a test's output).
    Inherit,
    Discard,
    /// Both appended to this file, created when missing (so a replaced process's log
    /// follows its predecessor's).
    File(PathBuf),
}

impl Output {
    fn stdio(&self) -> io::Result<(Stdio, Stdio)> {
        Ok(match self {
            Output::Inherit => (Stdio::inherit(), Stdio::inherit()),
            Output::Discard => (Stdio::null(), Stdio::null()),
            Output::File(path) => {
                let file = OpenOptions::new().create(true).append(true).open(path)?;
                (file.try_clone()?.into(), file.into())
            }
        })
    }
}

/// Names one process of a [`Topology`]; it keeps naming the process that replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessId(usize);

/// One role process. Dropping it kills it at once (and reaps it).
pub struct RoleProcess {
    id: ProcessId,
    role: Role,
    /// What it was started with, to start its replacement alike.
    settings: Settings,
    output: Output,
    child: Child,
}

impl RoleProcess {
    pub fn id(&self) -> ProcessId {
        self.id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The operating system's id of the running process (it changes on replacement).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where it serves the shop (`host:port`).
    pub fn listen(&self) -> &str {
        &self.settings.listen[&self.role]
    }

    /// Where it serves `/metrics`, `/readyz` and `/faults` apart from the shop, if it does.
    pub fn admin_listen(&self) -> Option<&str> {
        self.settings
            .admin_listen
            .get(&self.role)
            .map(String::as_str)
    }

    /// SIGTERM (the process drains its in-flight requests), then SIGKILL if it still runs
    /// after `within`.
    async fn terminate(&mut self, within: Duration) -> Result<Stopped, Error> {
        self.signal_stop()?;
        self.reap(Instant::now() + within).await
    }

    /// Sends SIGTERM, unless it has exited already.
    fn signal_stop(&mut self) -> Result<(), Error> {
        // The pid of a process not yet reaped cannot have been reused: the signal reaches
        // this process.
        if self.child.try_wait().map_err(|e| self.failed(e))?.is_none() {
            signal_term(self.child.id()).map_err(|e| self.failed(e))?;
        }
        Ok(())
    }

    /// Waits until it exits, or kills it at `deadline`.
    async fn reap(&mut self, deadline: Instant) -> Result<Stopped, Error> {
        let (status, killed) = loop {
            if let Some(status) = self.child.try_wait().map_err(|e| self.failed(e))? {
                break (status, false);
            }
            if Instant::now() >= deadline {
                self.child.kill().map_err(|e| self.failed(e))?;
                break (self.child.wait().map_err(|e| self.failed(e))?, true);
            }
            tokio::time::sleep(POLL).await;
        };
        Ok(Stopped {
            role: self.role,
            status,
            killed,
        })
    }

    fn failed(&self, source: io::Error) -> Error {
        Error::Stop {
            role: self.role,
            pid: self.child.id(),
            source,
        }
    }
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        // Drop cannot wait for a drain: a process left behind is worse than one cut short.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    pub role: Role,
    pub status: ExitStatus,
    /// It was still running `stop_within` after SIGTERM, and was killed.
    pub killed: bool,
}

/// Role processes of one shop, all from one binary and one `Settings`.
///
/// ```no_run
/// # async fn example(settings: ecommerce::config::Settings) -> Result<(), support::processes::Error> {
/// use ecommerce::role::Role;
/// use support::processes::{binary, Output, Topology};
///
/// // `settings` name every role's address (see `wire`).
/// let mut shop = Topology::new(binary()?, settings).env("RUST_LOG", "info");
/// shop.start_all(|role| Output::File(format!("target/{role}.log").into())).await?;
/// let cart = shop.processes().iter().find(|p| p.role() == Role::Cart).unwrap().id();
/// shop.replace(cart).await?; // one process restarted, the others serving on
/// shop.stop_all().await?;
/// # Ok(()) }
/// ```
pub struct Topology {
    binary: PathBuf,
    settings: Settings,
    env: Vec<(String, String)>,
    ready_within: Duration,
    stop_within: Duration,
    processes: Vec<RoleProcess>,
    next_id: usize,
}

impl Topology {
    /// Processes of `binary` serving as `settings` say; `settings.listen` must name an
    /// address for every role started (see [`wire`]). Nothing runs yet.
    pub fn new(binary: impl Into<PathBuf>, settings: Settings) -> Topology {
        // A process drains for up to its shutdown timeout; past that and a margin, it is
        // stuck.
        let stop_within = settings.shutdown_timeout + Duration::from_secs(5);
        Topology {
            binary: binary.into(),
            settings,
            env: Vec::new(),
            ready_within: Duration::from_secs(10),
            stop_within,
            processes: Vec::new(),
            next_id: 0,
        }
    }

    /// An environment variable for every process (`RUST_LOG`, say), besides the ones
    /// `serve_command` sets and the caller's own, which they inherit.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Topology {
        self.env.push((name.into(), value.into()));
        self
    }

    /// How long a start may take until every process it started is healthy (10 s).
    pub fn ready_within(mut self, bound: Duration) -> Topology {
        self.ready_within = bound;
        self
    }

    /// How long a process may drain after SIGTERM before it is killed (its settings'
    /// shutdown timeout and 5 s).
    pub fn stop_within(mut self, bound: Duration) -> Topology {
        self.stop_within = bound;
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The processes running (or exited, not yet noticed), in the order started.
    pub fn processes(&self) -> &[RoleProcess] {
        &self.processes
    }

    /// Starts one process for every role of the settings, each at its `listen` address
    /// with its output where `output` says, and returns once every one is healthy and
    /// answers as itself. On an error the processes already started keep running until
    /// the topology is stopped or dropped.
    pub async fn start_all(
        &mut self,
        mut output: impl FnMut(Role) -> Output,
    ) -> Result<Vec<ProcessId>, Error> {
        let mut ids = Vec::new();
        for role in self.settings.roles.clone() {
            ids.push(self.launch(role, self.settings.clone(), output(role))?);
        }
        self.wait_ready(&ids).await?;
        Ok(ids)
    }

    /// Starts one more process of `role`, with the topology's settings adjusted by
    /// `customize` (another `listen` address for a second process of a role, say), and
    /// returns once it is healthy and answers as itself. A process that does not get
    /// there is killed: its caller has no id to stop it by.
    pub async fn start(
        &mut self,
        role: Role,
        customize: impl FnOnce(&mut Settings),
        output: Output,
    ) -> Result<ProcessId, Error> {
        let mut settings = self.settings.clone();
        customize(&mut settings);
        let id = self.launch(role, settings, output)?;
        if let Err(e) = self.wait_ready(&[id]).await {
            let index = self.index(id)?;
            // Dropping it kills it.
            self.processes.remove(index);
            return Err(e);
        }
        Ok(id)
    }

    /// Stops process `id` (SIGTERM, SIGKILL after `stop_within`), starts the same command
    /// again at the same address, and returns once the new one is healthy. Calls that
    /// reach the address in between are refused: that gap is what a replacement costs.
    pub async fn replace(&mut self, id: ProcessId) -> Result<Stopped, Error> {
        let index = self.index(id)?;
        let stopped = self.processes[index].terminate(self.stop_within).await?;
        let process = &self.processes[index];
        let child = self.spawn(process.role, &process.settings, &process.output)?;
        self.processes[index].child = child;
        self.wait_ready(&[id]).await?;
        Ok(stopped)
    }

    /// Stops process `id`: SIGTERM, then SIGKILL if it still runs after `stop_within`.
    pub async fn stop(&mut self, id: ProcessId) -> Result<Stopped, Error> {
        let index = self.index(id)?;
        let stopped = self.processes[index].terminate(self.stop_within).await;
        // Removed whatever happened: dropping it kills it if the signal could not.
        self.processes.remove(index);
        stopped
    }

    /// Stops every process: SIGTERM to all, callers first (the gateways, then the
    /// services that call others, then the rest) so that little new work reaches a
    /// service that is draining; SIGKILL to those still running after `stop_within`.
    pub async fn stop_all(&mut self) -> Result<Vec<Stopped>, Error> {
        let mut processes = std::mem::take(&mut self.processes);
        processes.sort_by_key(|p| (callers_first(p.role), p.id));
        // Every signal first, then every wait, so that one bound holds for all.
        let mut first_error = None;
        for process in &mut processes {
            if let Err(e) = process.signal_stop() {
                first_error.get_or_insert(e);
            }
        }
        let deadline = Instant::now() + self.stop_within;
        let mut stopped = Vec::new();
        for process in &mut processes {
            match process.reap(deadline).await {
                Ok(s) => stopped.push(s),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(stopped),
        }
    }

    /// Kills every process at once and reaps it, without a drain (what dropping the
    /// topology does).
    pub fn kill_all(&mut self) {
        self.processes.clear();
    }

    /// `Err` naming the first process that has exited.
    pub fn check_running(&mut self) -> Result<(), Error> {
        let ids: Vec<ProcessId> = self.processes.iter().map(|p| p.id).collect();
        self.check_running_among(&ids)
    }

    fn index(&self, id: ProcessId) -> Result<usize, Error> {
        self.processes
            .iter()
            .position(|p| p.id == id)
            .ok_or(Error::NoSuchProcess(id))
    }

    /// Spawns a process and makes it the topology's at once, so that a failure later
    /// still stops it.
    fn launch(
        &mut self,
        role: Role,
        settings: Settings,
        output: Output,
    ) -> Result<ProcessId, Error> {
        let child = self.spawn(role, &settings, &output)?;
        let id = ProcessId(self.next_id);
        self.next_id += 1;
        self.processes.push(RoleProcess {
            id,
            role,
            settings,
            output,
            child,
        });
        Ok(id)
    }

    fn spawn(&self, role: Role, settings: &Settings, output: &Output) -> Result<Child, Error> {
        if !settings.listen.contains_key(&role) {
            return Err(Error::NoAddress(role));
        }
        let command = ecommerce::cli::serve_command(settings, role);
        let (stdout, stderr) = output.stdio().map_err(|source| Error::Output {
            role,
            output: output.clone(),
            source,
        })?;
        Command::new(&self.binary)
            .args(command.args)
            .envs(command.env)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            // A role reads no input; a tool's terminal keeps its own.
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| Error::Spawn {
                role,
                binary: self.binary.clone(),
                source,
            })
    }

    /// Waits until each of `ids` answers `/healthz` and, on `/`, names its own role (a
    /// port another process took between choosing and binding it answers as something
    /// else, or not at all), all within `ready_within`. A process that exits meanwhile
    /// (one that lost its port exits at once) ends the wait.
    async fn wait_ready(&mut self, ids: &[ProcessId]) -> Result<(), Error> {
        let deadline = Instant::now() + self.ready_within;
        for id in ids {
            let process = &self.processes[self.index(*id)?];
            let (role, address) = (process.role, probe_address(process.listen()));
            loop {
                self.check_running_among(ids)?;
                let healthy = matches!(get(&address, "/healthz").await, Ok((200, _)));
                if healthy {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::NotHealthy {
                        role,
                        within: self.ready_within,
                    });
                }
                tokio::time::sleep(POLL).await;
            }
            // The web-gateway's `/` is the shop's page, not a role's self-description.
            if role != Role::WebGateway {
                let (_, body) = get(&address, "/")
                    .await
                    .map_err(|source| Error::Identity { role, source })?;
                let info: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| Error::Identity {
                        role,
                        source: io::Error::new(io::ErrorKind::InvalidData, e),
                    })?;
                if info["service"] != role.as_str() {
                    return Err(Error::Impostor {
                        role,
                        answered: info["service"].to_string(),
                    });
                }
            }
        }
        self.check_running_among(ids)
    }

    fn check_running_among(&mut self, ids: &[ProcessId]) -> Result<(), Error> {
        for process in self.processes.iter_mut().filter(|p| ids.contains(&p.id)) {
            let exited = process.child.try_wait().map_err(|source| Error::Stop {
                role: process.role,
                pid: process.child.id(),
                source,
            })?;
            if let Some(status) = exited {
                return Err(Error::Exited {
                    role: process.role,
                    status,
                });
            }
        }
        Ok(())
    }
}

/// The order `stop_all` signals in: gateways, then services that call others, then the
/// rest.
fn callers_first(role: Role) -> u8 {
    if !Role::UPSTREAMS.contains(&role) {
        0
    } else if role.calls_api_gateway() {
        1
    } else {
        2
    }
}

fn signal_term(pid: u32) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Where to reach a listener: one bound to every interface is reached on loopback.
fn probe_address(listen: &str) -> String {
    if let Some(port) = listen.strip_prefix("0.0.0.0:") {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = listen.strip_prefix("[::]:") {
        format!("[::1]:{port}")
    } else {
        listen.to_string()
    }
}

/// `GET path` on a fresh connection: the status and the whole body, within
/// [`PROBE_WITHIN`]. Plain tokio, so that it runs on whatever runtime the caller has.
async fn get(address: &str, path: &str) -> io::Result<(u16, Vec<u8>)> {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await?;
        parse_answer(&bytes)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP answer"))
    };
    tokio::time::timeout(PROBE_WITHIN, exchange)
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer from {address} within {PROBE_WITHIN:?}"),
            )
        })?
}

fn parse_answer(bytes: &[u8]) -> Option<(u16, Vec<u8>)> {
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..split]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = &bytes[split + 4..];
    let chunked = head.lines().skip(1).any(|line| {
        line.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Some((status, body))
}

/// A chunked body's data; `None` when it is cut short or malformed.
fn dechunk(mut bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = bytes.windows(2).position(|w| w == b"\r\n")?;
        let size_line = std::str::from_utf8(&bytes[..end]).ok()?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(bytes.get(end + 2..end + 2 + size)?);
        bytes = bytes.get(end + 2 + size + 2..)?;
    }
}

/// Why a process could not be found, started, watched or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no ecommerce binary at {path}: {hint}")]
    Binary { path: PathBuf, hint: &'static str },
    #[error("cannot tell where the running executable is")]
    CurrentExe(#[source] io::Error),
    #[error("{0} has no listen address in the settings")]
    NoAddress(Role),
    #[error("{role}'s output ({output:?}) cannot be opened")]
    Output {
        role: Role,
        output: Output,
        #[source]
        source: io::Error,
    },
    #[error("{role} did not start ({binary})")]
    Spawn {
        role: Role,
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{role} exited ({status})")]
    Exited { role: Role, status: ExitStatus },
    #[error("{role} did not become healthy within {within:?}")]
    NotHealthy { role: Role, within: Duration },
    #[error("{role} did not say what it is on /")]
    Identity {
        role: Role,
        #[source]
        source: io::Error,
    },
    #[error("{role}'s port answers as {answered}")]
    Impostor { role: Role, answered: String },
    #[error("{role} (pid {pid}) could not be signalled or waited for")]
    Stop {
        role: Role,
        pid: u32,
        #[source]
        source: io::Error,
    },
    #[error("no process {0:?} in this topology")]
    NoSuchProcess(ProcessId),
}
