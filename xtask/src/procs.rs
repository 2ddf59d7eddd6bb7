//! Processes the tools start themselves (wrk, k6, nginx, a one-process shop), each bounded
//! in time and stopped on the way out, Ctrl-C and SIGTERM included; and what `/proc` says
//! about a process (memory, CPU time, children).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(20);

/// What a bounded command printed, and whether it exited 0.
#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
    pub status: ExitStatus,
}

/// Runs `command` (its stdout and stderr piped, or wherever the caller sent them) and
/// waits for it, killing it when it runs longer than `within`.
pub fn output_within(mut command: Command, within: Duration) -> Result<Output, Error> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command.spawn().map_err(|source| Error::Spawn {
        program: program.clone(),
        source,
    })?;
    // Read both pipes as they fill, so that a chatty child never blocks on a full one.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let _watch = Registered::new(child.id());
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|source| Error::Wait {
            program: program.clone(),
            source,
        })? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout { program, within });
        }
        std::thread::sleep(POLL);
    };
    Ok(Output {
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        success: status.success(),
        status,
    })
}

/// A child process of this tool (nginx, a one-process shop): stopped with SIGTERM, and a
/// SIGKILL after `within`, by [`Owned::stop`]; killed at once when dropped unstopped.
pub struct Owned {
    what: String,
    child: Option<Child>,
    _watch: Registered,
}

impl Owned {
    pub fn spawn(what: &str, mut command: Command) -> Result<Owned, Error> {
        let child = command.spawn().map_err(|source| Error::Spawn {
            program: what.to_string(),
            source,
        })?;
        Ok(Owned {
            what: what.to_string(),
            _watch: Registered::new(child.id()),
            child: Some(child),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether it still runs (not exited, not a zombie).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGTERM, then SIGKILL if it still runs after `within`.
    pub fn stop(mut self, within: Duration) -> Result<ExitStatus, Error> {
        let mut child = self.child.take().expect("stopped once");
        if child.try_wait().ok().flatten().is_none() {
            signal(child.id(), libc::SIGTERM);
        }
        let deadline = Instant::now() + within;
        loop {
            let waited = child.try_wait().map_err(|source| Error::Wait {
                program: self.what.clone(),
                source,
            })?;
            if let Some(status) = waited {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                eprintln!(
                    "xtask: {} (PID {}) ignored SIGTERM: SIGKILL",
                    self.what,
                    child.id()
                );
                let _ = child.kill();
                return child.wait().map_err(|source| Error::Wait {
                    program: self.what.clone(),
                    source,
                });
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The processes this tool has started and not yet reaped, by PID: what a SIGINT or
/// SIGTERM to the tool stops before it exits.
static LIVE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// Keeps a PID in [`LIVE`] while it lives.
pub struct Registered(u32);

impl Registered {
    pub fn new(pid: u32) -> Registered {
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).insert(pid);
        Registered(pid)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

/// On SIGINT or SIGTERM: SIGTERM to every registered process (role processes, nginx,
/// wrk...), up to 15 s for them to exit, SIGKILL to the rest, and exit 130 or 143, as the
/// scripts' traps did. A thread of its own, so that it acts while the tool blocks.
pub fn stop_everything_on_signal(name: &'static str) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let code = runtime.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return None;
            };
            tokio::select! {
                _ = int.recv() => Some(130),
                _ = term.recv() => Some(143),
            }
        });
        let Some(code) = code else { return };
        INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        let pids: Vec<u32> = LIVE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        eprintln!("{name}: interrupted: stopping {} process(es)", pids.len());
        for pid in &pids {
            signal(*pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in pids.iter().filter(|p| alive(**p)) {
            signal(*pid, libc::SIGKILL);
        }
        std::process::exit(code);
    });
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Hands `result` back, unless a signal is stopping everything: then waits for the
/// handler to exit with its status (what the tool was doing failed because its processes
/// were stopped, which is no error of its own).
pub fn unless_interrupted<T>(result: T) -> T {
    while INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(Duration::from_secs(1));
    }
    result
}

fn signal(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours. The PID is
        // one of our children not yet reaped, so it cannot name another process.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Whether `pid` runs (exists and is no zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Stat::parse(&s))
        .is_some_and(|s| s.state != 'Z')
}

/// The fields of `/proc/<pid>/stat` the benches read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub ppid: u32,
    /// User and system CPU time, in clock ticks.
    pub utime: u64,
    pub stime: u64,
}

impl Stat {
    /// Parses a stat line; the command name (in parentheses) may hold spaces and
    /// parentheses itself, so the fields are counted from its last `)`.
    pub fn parse(line: &str) -> Option<Stat> {
        let rest = &line[line.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state, ppid, ... utime is the 14th field of the line, stime the 15th.
        Some(Stat {
            state: fields.first()?.chars().next()?,
            ppid: fields.get(1)?.parse().ok()?,
            utime: fields.get(11)?.parse().ok()?,
            stime: fields.get(12)?.parse().ok()?,
        })
    }

    pub fn of(pid: u32) -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }
}

/// User + system CPU time of `pids` in clock ticks (a process gone counts nothing).
pub fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| Stat::of(*p))
        .map(|s| s.utime + s.stime)
        .sum()
}

/// Clock ticks per second (`getconf CLK_TCK`).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf takes an integer and returns one.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// The processes whose parent is `pid` (nginx's workers).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| Stat::of(*p).is_some_and(|s| s.ppid == pid))
        .collect()
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`); 0 when the process is gone.
pub fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| status_field_kb(&s, field))
        .unwrap_or(0)
}

pub fn status_field_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Resident memory now, in kB.
pub fn rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS")
}

/// Peak resident memory, in kB.
pub fn hwm_kb(pid: u32) -> u64 {
    status_kb(pid, "VmHWM")
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` writes them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The last `lines` lines of a log file, for an error message.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{program} did not start")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} could not be waited for")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} still ran after {within:?}: killed")]
    Timeout { program: String, within: Duration },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_end_of_the_command_name() {
        let line = "4242 (nginx: worker (1)) S 4241 4241 4241 0 -1 4194560 231 0 0 0 \
                    17 5 0 0 20 0 1 0 123 1000 200 18446744073709551615";
        assert_eq!(
            Stat::parse(line),
            Some(Stat {
                state: 'S',
                ppid: 4241,
                utime: 17,
                stime: 5
            })
        );
        assert_eq!(Stat::parse("1 (x) S 0"), None);
    }

    #[test]
    fn status_lines_give_kilobytes() {
        let status = "Name:\tecommerce\nVmHWM:\t   26300 kB\nVmRSS:\t    7800 kB\n";
        assert_eq!(status_field_kb(status, "VmRSS"), Some(7800));
        assert_eq!(status_field_kb(status, "VmHWM"), Some(26300));
        assert_eq!(status_field_kb(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_is_alive_and_has_a_resident_set() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(rss_kb(me) > 0 && hwm_kb(me) >= rss_kb(me));
        assert!(clock_ticks_per_second() > 0);
    }

    #[test]
    fn a_command_past_its_bound_is_killed() {
        let mut sleep = Command::new("sleep");
        sleep.arg("5");
        let started = Instant::now();
        let err = output_within(sleep, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
        let mut echo = Command::new("echo");
        echo.arg("hi").stdout(std::process::Stdio::piped());
        let out = output_within(echo, Duration::from_secs(5)).unwrap();
        assert_eq!((out.stdout.as_str(), out.success), ("hi\n", true));
    }
}
