//! The shop as processes ([`Topology`]): one process of the `ecommerce` binary per role.
//!
//! Every role of a `Settings` runs as its own process of the `ecommerce` binary, started,
//! watched, replaced and stopped, each step within a bound. A tool may also leave its
//! processes running when it exits ([`Topology::detach`], with [`PidFiles`] that say
//! where they are) and find them again in a later invocation ([`Topology::adopt`]), to
//! stop or replace them like its own.
//!
//! Nothing here asserts: the tests and the tools that run the production topology on one
//! machine share it, and each decides what a failure means (retry, panic, report).
//! Every process is started with [`ecommerce::cli::serve_command`], the one description
//! of how a role process is wired (the inverse of the CLI's parsing), so its command line
//! says exactly what its `Settings` say.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ecommerce::config::Settings;
use ecommerce::role::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod pid_files;

use pid_files::{option_value, Known};
pub use pid_files::{PidFiles, Recorded};

/// The environment variable that names the binary to run instead of the one Cargo built
/// (the same name `scripts/topology.sh` and the chart tests read).
pub const BINARY_VAR: &str = "ECOMMERCE_BIN";

/// How long one health or identity request may take: a port held by something that
/// accepts and never answers must not stall a start.
const PROBE_WITHIN: Duration = Duration::from_secs(2);
/// Between two looks at a process that is starting or stopping.
const POLL: Duration = Duration::from_millis(20);
/// Between two rounds of `/readyz` requests.
const READY_POLL: Duration = Duration::from_millis(200);
/// How long a process that is not our child may take to vanish after SIGKILL.
const KILLED_WITHIN: Duration = Duration::from_secs(5);

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

/// One role process. Dropping one this program started kills it at once and reaps it,
/// unless its topology was detached; one it adopted is left running. The PID file of a
/// process that is gone is removed with it.
pub struct RoleProcess {
    id: ProcessId,
    role: Role,
    /// What it was started with, to start its replacement alike.
    settings: Settings,
    output: Output,
    handle: Handle,
    pid: u32,
    /// Where its PID is recorded, when its topology keeps [`PidFiles`].
    pid_file: Option<PathBuf>,
}

/// How a process is held.
enum Handle {
    /// Started here: its PID stays its own until it is reaped, and its status is known.
    Child(Child),
    /// Found through its PID file: signalled by PID, watched through `/proc`.
    Adopted(Known),
    /// Let go ([`Topology::detach`]): it runs on, and nothing here touches it again.
    Released,
}

/// Whether a process runs, and how it ended if it did not.
enum Liveness {
    Running,
    /// The status is known for a child only (an adopted process's parent collects it).
    Exited(Option<ExitStatus>),
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
        self.pid
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

    /// The file its PID is recorded in, if its topology keeps [`PidFiles`].
    pub fn pid_file(&self) -> Option<&std::path::Path> {
        self.pid_file.as_deref()
    }

    /// Whether it still runs (a process that exited is noticed here, and reaped).
    pub fn is_running(&mut self) -> bool {
        matches!(self.liveness(), Ok(Liveness::Running))
    }

    /// The status its `/readyz` answers (on its admin listener when it has one), `None`
    /// when nothing answers within the probe's bound.
    pub async fn readiness(&self) -> Option<u16> {
        let address = probe_address(self.admin_listen().unwrap_or(self.listen()));
        get(&address, "/readyz")
            .await
            .ok()
            .map(|(status, _)| status)
    }

    fn liveness(&mut self) -> io::Result<Liveness> {
        match &mut self.handle {
            Handle::Child(child) => Ok(match child.try_wait()? {
                None => Liveness::Running,
                Some(status) => Liveness::Exited(Some(status)),
            }),
            Handle::Adopted(known) if known.alive() => Ok(Liveness::Running),
            Handle::Adopted(_) | Handle::Released => Ok(Liveness::Exited(None)),
        }
    }

    /// SIGTERM (the process drains its in-flight requests), then SIGKILL if it still runs
    /// after `within`.
    async fn terminate(&mut self, within: Duration) -> Result<Stopped, Error> {
        self.signal_stop()?;
        self.reap(Instant::now() + within).await
    }

    /// Sends SIGTERM, unless it has exited already.
    fn signal_stop(&mut self) -> Result<(), Error> {
        // The pid of a child not yet reaped cannot have been reused, nor that of an
        // adopted process whose start time is still the one it was adopted with: the
        // signal reaches this process.
        if let Liveness::Running = self.liveness().map_err(|e| self.failed(e))? {
            send(self.pid, libc::SIGTERM).map_err(|e| self.failed(e))?;
        }
        Ok(())
    }

    /// Waits until it exits, or kills it at `deadline`.
    async fn reap(&mut self, deadline: Instant) -> Result<Stopped, Error> {
        let (status, killed) = loop {
            if let Liveness::Exited(status) = self.liveness().map_err(|e| self.failed(e))? {
                break (status, false);
            }
            if Instant::now() >= deadline {
                break (self.kill().await?, true);
            }
            tokio::time::sleep(POLL).await;
        };
        Ok(Stopped {
            role: self.role,
            pid: self.pid,
            status,
            killed,
        })
    }

    /// SIGKILL, and the wait for it to take effect.
    async fn kill(&mut self) -> Result<Option<ExitStatus>, Error> {
        if let Handle::Child(child) = &mut self.handle {
            let status = child.kill().and_then(|()| child.wait());
            return status.map(Some).map_err(|e| self.failed(e));
        }
        send(self.pid, libc::SIGKILL).map_err(|e| self.failed(e))?;
        let deadline = Instant::now() + KILLED_WITHIN;
        while self.is_running() {
            if Instant::now() >= deadline {
                let still = io::Error::new(io::ErrorKind::TimedOut, "still running after SIGKILL");
                return Err(self.failed(still));
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(None)
    }

    fn failed(&self, source: io::Error) -> Error {
        Error::Stop {
            role: self.role,
            pid: self.pid,
            source,
        }
    }
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        // Drop cannot wait for a drain: a process left behind is worse than one cut short.
        let gone = match &mut self.handle {
            Handle::Child(child) => {
                let _ = child.kill();
                child.wait().is_ok()
            }
            // Not started here: stopped on request only (a tool that looked, or failed
            // half-way, must not take the shop down).
            Handle::Adopted(known) => !known.alive(),
            Handle::Released => false,
        };
        // A file naming a process that may still run stays, for a later stop to find.
        if let (true, Some(path)) = (gone, &self.pid_file) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    pub role: Role,
    pub pid: u32,
    /// Known for a process this program started (an adopted one's parent collects it).
    pub status: Option<ExitStatus>,
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
///
/// A tool that leaves the shop running when it exits records where its processes are,
/// and a later invocation finds them again:
///
/// ```no_run
/// # async fn example(binary: std::path::PathBuf, settings: ecommerce::config::Settings) -> Result<(), support::processes::Error> {
/// use support::processes::{Output, PidFiles, Topology};
///
/// let pids = PidFiles::new("target/topology/pids");
/// let mut shop = Topology::new(&binary, settings.clone())
///     .own_process_groups()
///     .pid_files(pids.clone());
/// shop.start_all(|_| Output::Discard).await?;
/// shop.detach(); // the processes run on; their PID files stay
///
/// // Later, in another process:
/// let mut shop = Topology::new(&binary, settings).pid_files(pids.clone());
/// shop.adopt(|_| Output::Discard)?;
/// shop.stop_all().await?; // and each PID file goes with its process
/// # Ok(()) }
/// ```
pub struct Topology {
    binary: PathBuf,
    settings: Settings,
    env: Vec<(String, String)>,
    ready_within: Duration,
    stop_within: Duration,
    own_process_groups: bool,
    pid_files: Option<PidFiles>,
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
            own_process_groups: false,
            pid_files: None,
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

    /// Starts each process in a process group of its own, so that the Ctrl-C of the
    /// terminal a tool runs in reaches the tool (which stops them in order), not the
    /// processes directly. For tools: a test's processes share its group, so that an
    /// interrupted test run takes them along.
    pub fn own_process_groups(mut self) -> Topology {
        self.own_process_groups = true;
        self
    }

    /// Records each process's PID in `files` from the moment it is started (a replacement
    /// overwrites its predecessor's), and removes the file once the process is gone.
    pub fn pid_files(mut self, files: PidFiles) -> Topology {
        self.pid_files = Some(files);
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The processes running (or exited, not yet noticed), in the order started.
    pub fn processes(&self) -> &[RoleProcess] {
        &self.processes
    }

    pub fn processes_mut(&mut self) -> &mut [RoleProcess] {
        &mut self.processes
    }

    /// Starts one process for every role of the settings, each at its `listen` address
    /// with its output where `output` says, and returns once every one is healthy and
    /// answers as itself. Services start before the roles that call them. On an error
    /// the processes already started keep running until the topology is stopped or
    /// dropped.
    pub async fn start_all(
        &mut self,
        mut output: impl FnMut(Role) -> Output,
    ) -> Result<Vec<ProcessId>, Error> {
        let mut roles = self.settings.roles.clone();
        roles.sort_by_key(|role| std::cmp::Reverse(callers_first(*role)));
        let mut ids = Vec::new();
        for role in roles {
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
        let pid = child.id();
        let process = &mut self.processes[index];
        process.handle = Handle::Child(child);
        process.pid = pid;
        if let Some(path) = &process.pid_file {
            pid_files::write_pid(path, pid).map_err(|source| Error::PidFile {
                path: path.clone(),
                source,
            })?;
        }
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

    /// Kills every process this topology started at once and reaps it, without a drain
    /// (what dropping the topology does); adopted ones are let go.
    pub fn kill_all(&mut self) {
        self.processes.clear();
    }

    /// Lets every process run on after this topology is gone (their PID files stay), for
    /// a tool that returns with the shop running; [`Topology::adopt`] finds them again.
    pub fn detach(mut self) {
        for process in &mut self.processes {
            process.handle = Handle::Released;
        }
    }

    /// Takes over the processes this topology's [`PidFiles`] record that still run as
    /// the role their file names, to stop (or replace) them like its own; `output` says
    /// where a replacement's output goes. Each is taken with the topology's settings,
    /// but its own `--listen` and `--admin-listen` as its command line shows them.
    /// Returns the records of processes that are gone (or were never ours), whose files
    /// are left for the caller to remove.
    pub fn adopt(
        &mut self,
        mut output: impl FnMut(Role) -> Output,
    ) -> Result<Vec<Recorded>, Error> {
        let Some(files) = &self.pid_files else {
            return Ok(Vec::new());
        };
        let records = files.read().map_err(|source| Error::PidFiles {
            dir: files.dir().to_path_buf(),
            source,
        })?;
        let mut gone = Vec::new();
        for record in records {
            let Some((known, args)) = record.pid.and_then(|pid| Known::identify(pid, record.role))
            else {
                gone.push(record);
                continue;
            };
            let mut settings = self.settings.clone();
            if let Some(listen) = option_value(&args, "--listen") {
                settings.listen.insert(record.role, listen);
            }
            match option_value(&args, "--admin-listen") {
                Some(admin) => settings.admin_listen.insert(record.role, admin),
                None => settings.admin_listen.remove(&record.role),
            };
            let id = ProcessId(self.next_id);
            self.next_id += 1;
            self.processes.push(RoleProcess {
                id,
                role: record.role,
                settings,
                output: output(record.role),
                handle: Handle::Adopted(known),
                pid: known.pid,
                pid_file: Some(record.path),
            });
        }
        Ok(gone)
    }

    /// `Err` naming the first process that has exited.
    pub fn check_running(&mut self) -> Result<(), Error> {
        let ids: Vec<ProcessId> = self.processes.iter().map(|p| p.id).collect();
        self.check_running_among(&ids)
    }

    /// Waits until every process's `/readyz` answers 200 (it has started and is not
    /// draining; its stores and peers are its own business), within `within`. A process that exits meanwhile ends the wait.
    pub async fn wait_until_ready(&mut self, within: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + within;
        loop {
            self.check_running()?;
            let mut pending = Vec::new();
            for process in &self.processes {
                match process.readiness().await {
                    Some(200) => {}
                    other => pending.push((process.role, other)),
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::NotReady { pending, within });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    fn index(&self, id: ProcessId) -> Result<usize, Error> {
        self.processes
            .iter()
            .position(|p| p.id == id)
            .ok_or(Error::NoSuchProcess(id))
    }

    /// Spawns a process and makes it the topology's at once (its PID recorded, when the
    /// topology keeps PID files), so that a failure later still stops it.
    fn launch(
        &mut self,
        role: Role,
        settings: Settings,
        output: Output,
    ) -> Result<ProcessId, Error> {
        let child = self.spawn(role, &settings, &output)?;
        let id = ProcessId(self.next_id);
        self.next_id += 1;
        let pid = child.id();
        self.processes.push(RoleProcess {
            id,
            role,
            settings,
            output,
            handle: Handle::Child(child),
            pid,
            pid_file: None,
        });
        if let Some(files) = &self.pid_files {
            // The first slot no process of this topology holds.
            let held: Vec<&PathBuf> = self
                .processes
                .iter()
                .filter_map(|p| p.pid_file.as_ref())
                .collect();
            let slot = (0..)
                .find(|n| !held.contains(&&files.path(role, *n)))
                .unwrap_or_default();
            let written = files
                .write(role, slot, pid)
                .map_err(|source| Error::PidFile {
                    path: files.path(role, slot),
                    source,
                });
            // On an error the process is dropped, which kills it: nothing could find it.
            let path = written.inspect_err(|_| {
                self.processes.pop();
            })?;
            if let Some(process) = self.processes.last_mut() {
                process.pid_file = Some(path);
            }
        }
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
        let mut process = Command::new(&self.binary);
        process
            .args(command.args)
            .envs(command.env)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            // A role reads no input; a tool's terminal keeps its own.
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        if self.own_process_groups {
            process.process_group(0);
        }
        process.spawn().map_err(|source| Error::Spawn {
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
            let liveness = process.liveness().map_err(|e| process.failed(e))?;
            if let Liveness::Exited(status) = liveness {
                return Err(Error::Exited {
                    role: process.role,
                    pid: process.pid,
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

fn send(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, signal) } == 0 {
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
        // A probe is synthetic traffic, and says so as the k6 journey does: a role traces
        // its `/`, and whoever counts the shop's spans can tell these from shoppers'.
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nbaggage: synthetic_request=true\r\n\
             Connection: close\r\n\r\n"
        );
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
    #[error("{role} (pid {pid}) exited{}", .status.map(|s| format!(" ({s})")).unwrap_or_default())]
    Exited {
        role: Role,
        pid: u32,
        /// Known for a process this program started.
        status: Option<ExitStatus>,
    },
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
    #[error("not ready within {within:?}: {}", not_ready(.pending))]
    NotReady {
        /// Each role not ready yet, with what its `/readyz` answered (`None`: nothing).
        pending: Vec<(Role, Option<u16>)>,
        within: Duration,
    },
    #[error("cannot record a PID in {path}")]
    PidFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the PID files in {dir}")]
    PidFiles {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// `cart (503), product (no answer)`.
fn not_ready(pending: &[(Role, Option<u16>)]) -> String {
    pending
        .iter()
        .map(|(role, status)| match status {
            Some(status) => format!("{role} ({status})"),
            None => format!("{role} (no answer)"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
