//! One fault state for the whole shop: the desired faults (with an optional end), a game-day
//! scenario and the synthetic traffic level, kept where every process reads it
//! (`--fault-state redis://...`, or `rediss://...` over TLS) or, without one, in this
//! process alone.
//!
//! Every process polls the state once a second and applies the faults it says are live
//! *now*, so a change reaches every replica within two seconds, a process that starts
//! later starts with it, and timed faults and scenario steps switch by themselves in each
//! process with no single process running them. Polling (a GET of two small keys per
//! second per process) was chosen over pub/sub: it needs no subscription that could miss a
//! message while a connection is down, and a restarted process or a Redis that came back
//! needs no resynchronisation. A process that cannot read the state keeps its last known
//! faults and serves on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{FaultSwitch, Faults};
use crate::tls::{RedisConnectError, RedisServer, Trust};

/// How often every process reads the state.
pub const POLL: Duration = Duration::from_secs(1);
/// A process not heard from for this long is no longer listed.
const PROCESS_GONE_MS: u64 = 5_000;
/// The longest a timed fault, a scenario step or its start may be.
const LONGEST: Duration = Duration::from_secs(24 * 3600);
/// The synthetic traffic level's bounds (1 is the normal load).
pub const TRAFFIC_LEVELS: std::ops::RangeInclusive<f64> = 0.0..=10.0;

const STATE_KEY: &str = "ecommerce:faults:state";
const VERSION_KEY: &str = "ecommerce:faults:version";
const PROCESSES_KEY: &str = "ecommerce:faults:processes";

/// The whole shop's desired fault state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The faults on (`NAME[=VALUE]`), outside a scenario.
    #[serde(default)]
    pub faults: Vec<String>,
    /// When `faults` switch themselves off (unix ms), if they do.
    #[serde(default)]
    pub until_ms: Option<u64>,
    /// A game day: while it runs, its steps decide the faults.
    #[serde(default)]
    pub scenario: Option<Scenario>,
    /// The synthetic traffic wanted, 1 being the normal load.
    #[serde(default = "normal_traffic")]
    pub traffic_level: f64,
}

fn normal_traffic() -> f64 {
    1.0
}

impl Default for State {
    fn default() -> Self {
        State {
            faults: Vec::new(),
            until_ms: None,
            scenario: None,
            traffic_level: normal_traffic(),
        }
    }
}

/// Faults switched on at offsets from a start, each for a while.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub started_ms: u64,
    pub steps: Vec<Step>,
    /// When it was aborted, if it was.
    #[serde(default)]
    pub aborted_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// From the scenario's start.
    pub at_ms: u64,
    pub for_ms: u64,
    pub faults: Vec<String>,
}

impl Scenario {
    pub fn ends_ms(&self) -> u64 {
        let last = self.steps.iter().map(|s| s.at_ms + s.for_ms).max();
        self.started_ms + last.unwrap_or(0)
    }

    /// `running`, `done` or `aborted` at `now`.
    pub fn state(&self, now_ms: u64) -> &'static str {
        match self.aborted_ms {
            Some(_) => "aborted",
            None if now_ms < self.ends_ms() => "running",
            None => "done",
        }
    }

    /// The window of step `step`, in unix ms.
    pub fn window(&self, step: &Step) -> (u64, u64) {
        let start = self.started_ms + step.at_ms;
        (start, start + step.for_ms)
    }
}

impl State {
    /// The faults live at `now`: a running scenario's active steps, else `faults` until
    /// their end.
    pub fn live(&self, now_ms: u64) -> Vec<String> {
        if let Some(scenario) = self
            .scenario
            .as_ref()
            .filter(|s| s.state(now_ms) == "running")
        {
            let mut live: Vec<String> = Vec::new();
            for step in &scenario.steps {
                let (start, end) = scenario.window(step);
                if (start..end).contains(&now_ms) {
                    live.extend(step.faults.iter().cloned());
                }
            }
            return live;
        }
        match self.until_ms {
            Some(until) if now_ms >= until => Vec::new(),
            _ => self.faults.clone(),
        }
    }
}

/// `30s`, `10m`, `1h30m`, `500ms`: a positive duration of at most a day.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration like 30s, 10m, 1h30m (at most 24h)");
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(part);
        rest = &rest[unit..];
    }
    if total.is_zero() && !text.trim().starts_with('0') || total > LONGEST {
        return Err(bad());
    }
    Ok(total)
}

/// The faults of `specs`, each checked: the first that does not parse is the error.
/// `bind-localhost` decides a bind at start and is never live.
pub fn check_faults(specs: &[String]) -> Result<Faults, String> {
    let faults = Faults::parse(specs)?;
    if faults.bind_localhost {
        return Err(
            "bind-localhost decides where the api-gateway binds, at start: it cannot be switched live (restart the api-gateway with --fault bind-localhost)"
                .into(),
        );
    }
    Ok(faults)
}

/// What a process reports of itself: what it applied, and when it last looked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub service: String,
    pub instance: String,
    pub faults: Vec<String>,
    pub version: u64,
    pub seen: u64,
}

/// Why the shared state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the fault state is unreachable")]
    Unreachable(#[source] RedisConnectError),
    #[error("the fault state holds something unreadable")]
    Corrupt(#[source] serde_json::Error),
}

/// Where the state lives.
enum Store {
    /// This process alone (no `--fault-state`).
    Local(Mutex<Local>),
    Redis {
        server: RedisServer,
        /// How a `rediss://` server is trusted.
        tls: Arc<rustls::ClientConfig>,
        connection: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    },
}

#[derive(Default)]
struct Local {
    version: u64,
    state: State,
}

/// Writes a state and gives it the next version, in one step.
const WRITE_SCRIPT: &str = r"
local version = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1])
return version
";

/// The fault state as one process sees and changes it, and the loop that applies it.
pub struct Control {
    store: Store,
    switch: Arc<FaultSwitch>,
    /// What this process started with: `bind-localhost` stays as it was.
    started: Faults,
    service: String,
    instance: String,
    /// The version applied, and whether the last read worked (for the metric).
    applied: AtomicU64,
    reachable: AtomicBool,
    traffic_bits: AtomicU64,
    /// The last live list applied, so a tick that changes nothing logs nothing.
    last_live: Mutex<Option<Vec<String>>>,
}

impl Control {
    /// The state of this process only, starting as `started` (its `--fault` options).
    pub fn local(switch: Arc<FaultSwitch>, started: Faults, service: String) -> Self {
        let state = State {
            faults: started.active(),
            ..State::default()
        };
        let control = Self::with_store(
            Store::Local(Mutex::new(Local { version: 0, state })),
            switch,
            started,
            service,
        );
        // The switch already holds the state's faults: the first poll changes nothing
        // (and so never undoes a `PUT /faults` that came before it).
        *lock(&control.last_live) = Some(control.started.active());
        control
    }

    /// The state at `url` (`redis://...` or `rediss://...`), shared by every process
    /// given the same one; over TLS it trusts the system's roots, or as [`Self::trusting`]
    /// says.
    pub fn shared(
        url: &str,
        switch: Arc<FaultSwitch>,
        started: Faults,
        service: String,
    ) -> Result<Self, String> {
        let server = RedisServer::parse(url)?;
        let tls = Trust::system().map_err(|e| e.to_string())?.redis();
        Ok(Self::with_store(
            Store::Redis {
                server,
                tls,
                connection: tokio::sync::Mutex::new(None),
            },
            switch,
            started,
            service,
        ))
    }

    /// The same control, reaching a `rediss://` state trusting servers as `tls` says (the
    /// process's one TLS configuration).
    pub fn trusting(mut self, tls: Arc<rustls::ClientConfig>) -> Self {
        if let Store::Redis { tls: trusted, .. } = &mut self.store {
            *trusted = tls;
        }
        self
    }

    fn with_store(
        store: Store,
        switch: Arc<FaultSwitch>,
        started: Faults,
        service: String,
    ) -> Self {
        Control {
            store,
            switch,
            started,
            service,
            instance: instance_id(),
            applied: AtomicU64::new(0),
            reachable: AtomicBool::new(true),
            traffic_bits: AtomicU64::new(normal_traffic().to_bits()),
            last_live: Mutex::new(None),
        }
    }

    /// Whether the state is shared by the whole shop (or this process's alone).
    pub fn is_shared(&self) -> bool {
        matches!(self.store, Store::Redis { .. })
    }

    /// Whether the last read of the state worked.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// The traffic level as last read (no store call: the synthetics ask often).
    pub fn traffic_level(&self) -> f64 {
        f64::from_bits(self.traffic_bits.load(Ordering::Relaxed))
    }

    /// The state and its version.
    pub async fn read(&self) -> Result<(u64, State), StateError> {
        match &self.store {
            Store::Local(local) => {
                let local = lock(local);
                Ok((local.version, local.state.clone()))
            }
            Store::Redis { .. } => {
                let (state, version): (Option<String>, Option<u64>) = self
                    .redis(|mut c| async move {
                        redis::cmd("MGET")
                            .arg(STATE_KEY)
                            .arg(VERSION_KEY)
                            .query_async(&mut c)
                            .await
                    })
                    .await?;
                let state = match state {
                    Some(json) => serde_json::from_str(&json).map_err(StateError::Corrupt)?,
                    None => State::default(),
                };
                Ok((version.unwrap_or(0), state))
            }
        }
    }

    /// Changes the state as `change` says, applies it here at once, and gives it back
    /// with its new version. (Two changes at the same moment: the later one wins whole.)
    pub async fn change(
        &self,
        change: impl FnOnce(&mut State),
    ) -> Result<(u64, State), StateError> {
        let (_, mut state) = self.read().await?;
        change(&mut state);
        let version = match &self.store {
            Store::Local(local) => {
                let mut local = lock(local);
                local.version += 1;
                local.state = state.clone();
                local.version
            }
            Store::Redis { .. } => {
                let json = serde_json::to_string(&state).map_err(StateError::Corrupt)?;
                self.redis(|mut c| async move {
                    redis::Script::new(WRITE_SCRIPT)
                        .key(STATE_KEY)
                        .key(VERSION_KEY)
                        .arg(json)
                        .invoke_async(&mut c)
                        .await
                })
                .await?
            }
        };
        self.apply(version, &state, now_ms());
        Ok((version, state))
    }

    /// The processes following the state (this one alone without a shared state).
    pub async fn processes(&self) -> Result<Vec<Process>, StateError> {
        let me = self.me(now_ms());
        let Store::Redis { .. } = &self.store else {
            return Ok(vec![me]);
        };
        let entries: BTreeMap<String, String> = self
            .redis(|mut c| async move {
                redis::cmd("HGETALL")
                    .arg(PROCESSES_KEY)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let now = now_ms();
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (instance, json) in entries {
            match serde_json::from_str::<Process>(&json) {
                Ok(p) if now.saturating_sub(p.seen) <= PROCESS_GONE_MS => live.push(p),
                _ => gone.push(instance),
            }
        }
        if !gone.is_empty() {
            let _: Result<(), StateError> = self
                .redis(|mut c| async move {
                    redis::cmd("HDEL")
                        .arg(PROCESSES_KEY)
                        .arg(gone)
                        .query_async(&mut c)
                        .await
                })
                .await;
        }
        live.sort_by(|a, b| (&a.service, &a.instance).cmp(&(&b.service, &b.instance)));
        Ok(live)
    }

    /// Reads the state every [`POLL`] and applies it, for as long as the process runs.
    pub async fn follow(self: Arc<Self>) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.poll_once().await;
        }
    }

    /// One read and apply (and, when shared, one report of this process).
    pub async fn poll_once(&self) {
        let now = now_ms();
        match self.read().await {
            Ok((version, state)) => {
                if !self.reachable.swap(true, Ordering::Relaxed) {
                    log::warn!("msg=\"fault state reachable again\"");
                }
                self.apply(version, &state, now);
                if self.is_shared() {
                    let _ = self.report(now).await;
                }
            }
            Err(e) => {
                if self.reachable.swap(false, Ordering::Relaxed) {
                    log::warn!(
                        "msg=\"fault state unreachable: keeping the last known faults\" error={:?}",
                        chain(&e)
                    );
                }
            }
        }
    }

    /// Applies the faults live at `now` (unknown ones, from a newer shop, are skipped
    /// with a warning).
    fn apply(&self, version: u64, state: &State, now: u64) {
        self.applied.store(version, Ordering::Relaxed);
        self.traffic_bits
            .store(state.traffic_level.to_bits(), Ordering::Relaxed);
        let live = state.live(now);
        let mut last = lock(&self.last_live);
        if last.as_ref() == Some(&live) {
            return;
        }
        let mut faults = Faults {
            bind_localhost: self.started.bind_localhost,
            ..Faults::default()
        };
        for spec in &live {
            if let Err(why) = faults.enable(spec) {
                log::warn!(
                    "msg=\"fault state names a fault this process cannot apply\" reason={why:?}"
                );
            }
        }
        if let Err(why) = self.switch.replace(faults) {
            log::warn!("msg=\"fault state not applied\" reason={why:?}");
            return;
        }
        log::warn!(
            "msg=\"faults switched\" source=state version={version} faults={:?}",
            self.switch.get().active().join(",")
        );
        *last = Some(live);
    }

    fn me(&self, now: u64) -> Process {
        Process {
            service: self.service.clone(),
            instance: self.instance.clone(),
            faults: self.switch.get().active(),
            version: self.applied.load(Ordering::Relaxed),
            seen: now,
        }
    }

    async fn report(&self, now: u64) -> Result<(), StateError> {
        let json = serde_json::to_string(&self.me(now)).map_err(StateError::Corrupt)?;
        let instance = self.instance.clone();
        self.redis(|mut c| async move {
            redis::cmd("HSET")
                .arg(PROCESSES_KEY)
                .arg(instance)
                .arg(json)
                .query_async(&mut c)
                .await
        })
        .await
    }

    /// Runs `command` on the state's Redis, connecting first when there is no connection
    /// (and dropping a connection that failed, so the next call connects anew).
    async fn redis<T, F, Fut>(&self, command: F) -> Result<T, StateError>
    where
        F: FnOnce(redis::aio::MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let Store::Redis {
            server,
            tls,
            connection,
        } = &self.store
        else {
            unreachable!("only a shared state is in Redis");
        };
        let mut slot = connection.lock().await;
        let connected = match slot.as_ref() {
            Some(c) => c.clone(),
            None => {
                let second = Some(Duration::from_secs(1));
                let c = server
                    .connect(tls, second, second)
                    .await
                    .map_err(StateError::Unreachable)?;
                *slot = Some(c.clone());
                c
            }
        };
        drop(slot);
        let result = command(connected).await;
        if result.is_err() {
            *connection.lock().await = None;
        }
        result.map_err(|e| StateError::Unreachable(e.into()))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Now, in unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// This process among the shop's: its host (a pod's name on Kubernetes) and PID.
fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn durations_read_like_go_and_stay_within_a_day() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "10", "m", "5 minutes", "-1s", "25h", "1d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timed_faults_are_live_until_their_end() {
        let state = State {
            faults: specs(&["payment-failure=0.5"]),
            until_ms: Some(10_000),
            ..State::default()
        };
        assert_eq!(state.live(9_999), ["payment-failure=0.5"]);
        assert!(state.live(10_000).is_empty());
    }

    #[test]
    fn a_running_scenario_decides_the_faults_step_by_step() {
        let scenario = Scenario {
            started_ms: 1_000,
            steps: vec![
                Step {
                    at_ms: 0,
                    for_ms: 5_000,
                    faults: specs(&["payment-latency=800"]),
                },
                Step {
                    at_ms: 3_000,
                    for_ms: 4_000,
                    faults: specs(&["cart-data-outage"]),
                },
            ],
            aborted_ms: None,
        };
        let state = State {
            faults: specs(&["basic-bug"]),
            scenario: Some(scenario.clone()),
            ..State::default()
        };
        assert_eq!(state.live(1_000), ["payment-latency=800"]);
        assert_eq!(
            state.live(4_500),
            ["payment-latency=800", "cart-data-outage"]
        );
        assert_eq!(state.live(6_500), ["cart-data-outage"]);
        assert_eq!(scenario.ends_ms(), 8_000);
        assert_eq!(scenario.state(7_999), "running");
        // Once it is over (or aborted), the faults outside it are live again.
        assert_eq!(state.live(8_000), ["basic-bug"]);
        let aborted = State {
            scenario: Some(Scenario {
                aborted_ms: Some(2_000),
                ..scenario
            }),
            ..state
        };
        assert_eq!(aborted.live(4_500), ["basic-bug"]);
    }

    #[test]
    fn bind_localhost_is_never_live() {
        assert!(check_faults(&specs(&["bind-localhost"])).is_err());
        assert!(check_faults(&specs(&["payment-failure=2"])).is_err());
        assert!(check_faults(&specs(&["payment-failure=0.2"])).is_ok());
    }

    #[actix_web::test]
    async fn a_first_poll_keeps_what_a_role_switched_before_it() {
        let started = Faults::parse(["basic-bug"]).unwrap();
        let switch = Arc::new(FaultSwitch::new(started.clone()));
        let control = Control::local(switch.clone(), started, "product".into());

        switch
            .replace(Faults::parse(["payment-failure=1"]).unwrap())
            .unwrap();
        control.poll_once().await;

        assert_eq!(switch.get().active(), ["payment-failure=1"]);
    }

    #[actix_web::test]
    async fn a_local_state_applies_changes_at_once_and_ends_timed_faults_by_itself() {
        let switch = Arc::new(FaultSwitch::new(Faults::default()));
        let control = Control::local(switch.clone(), Faults::default(), "payment".into());

        let (version, _) = control
            .change(|s| {
                s.faults = specs(&["payment-failure=1"]);
                s.until_ms = Some(now_ms() + 300);
            })
            .await
            .unwrap();

        assert_eq!(version, 1);
        assert_eq!(switch.get().payment_failure, Some(1.0));
        tokio::time::sleep(Duration::from_millis(400)).await;
        control.poll_once().await;
        assert_eq!(switch.get().payment_failure, None);
        let processes = control.processes().await.unwrap();
        assert_eq!(processes.len(), 1);
        assert_eq!(processes[0].version, 1);
        assert!(!control.is_shared());
    }
}
