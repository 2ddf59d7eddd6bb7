//! The fault scenarios of SPEC section 7: which are on, parsed from `NAME[=VALUE]`, and the
//! switch a running process reads them from (set at start, changed by `PUT /faults`).

use std::sync::{Arc, Mutex, RwLock};

use crate::domain::DelayRange;
use crate::role::Role;

/// The fault scenarios switched on (SPEC section 7).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Product search does slow, CPU-heavy work, then fails with 500.
    pub basic_bug: bool,
    /// The api-gateway binds 127.0.0.1 only.
    pub bind_localhost: bool,
    /// The share of payments declined, 0.0..=1.0.
    pub payment_failure: Option<f64>,
    /// Extra payment processing time.
    pub payment_latency_ms: Option<u64>,
    /// cart behaves as if cart-data were unreachable.
    pub cart_data_outage: bool,
    /// The role that keeps a little memory of every request it serves.
    pub memory_leak: Option<Role>,
}

impl Faults {
    pub const NAMES: [&'static str; 6] = [
        "basic-bug",
        "bind-localhost",
        "payment-failure=<ratio>",
        "payment-latency=<ms>",
        "cart-data-outage",
        "memory-leak=<role>",
    ];

    /// The faults `specs` (each `NAME[=VALUE]`; blank ones ignored) switch on.
    pub fn parse<S: AsRef<str>>(specs: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let mut faults = Faults::default();
        for spec in specs {
            let spec = spec.as_ref();
            if !spec.trim().is_empty() {
                faults.enable(spec)?;
            }
        }
        Ok(faults)
    }

    /// Adds one `NAME[=VALUE]`.
    pub fn enable(&mut self, spec: &str) -> Result<(), String> {
        let (name, value) = match spec.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (spec.trim(), None),
        };
        let bad_value = |what: &str| format!("fault '{name}' needs {what}, got '{spec}'");
        match (name, value) {
            ("basic-bug", None) => self.basic_bug = true,
            ("bind-localhost", None) => self.bind_localhost = true,
            ("cart-data-outage", None) => self.cart_data_outage = true,
            ("payment-failure", v) => {
                let ratio = v
                    .unwrap_or("1")
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| bad_value("a ratio from 0 to 1"))?;
                self.payment_failure = Some(ratio);
            }
            ("payment-latency", Some(v)) => {
                let ms = v
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| *ms <= DelayRange::LIMIT_MS)
                    .ok_or_else(|| bad_value("milliseconds up to 60000"))?;
                self.payment_latency_ms = Some(ms);
            }
            ("memory-leak", Some(v)) => {
                self.memory_leak =
                    Some(v.parse().map_err(|e: crate::role::UnknownRole| {
                        format!("fault 'memory-leak': {e}")
                    })?);
            }
            _ => {
                return Err(format!(
                    "unknown fault '{spec}' (valid: {})",
                    Self::NAMES.join(", ")
                ))
            }
        }
        Ok(())
    }

    /// The active faults as `NAME[=VALUE]`, for `/`, logs and metrics.
    pub fn active(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.basic_bug {
            out.push("basic-bug".to_string());
        }
        if self.bind_localhost {
            out.push("bind-localhost".to_string());
        }
        if let Some(r) = self.payment_failure {
            out.push(format!("payment-failure={r}"));
        }
        if let Some(ms) = self.payment_latency_ms {
            out.push(format!("payment-latency={ms}"));
        }
        if self.cart_data_outage {
            out.push("cart-data-outage".to_string());
        }
        if let Some(role) = self.memory_leak {
            out.push(format!("memory-leak={role}"));
        }
        out
    }
}

/// The faults of a running process, read by every request, switchable at run time.
#[derive(Debug, Default)]
pub struct FaultSwitch {
    current: RwLock<Arc<Faults>>,
}

impl FaultSwitch {
    pub fn new(faults: Faults) -> Self {
        FaultSwitch {
            current: RwLock::new(Arc::new(faults)),
        }
    }

    /// The faults on now.
    pub fn get(&self) -> Arc<Faults> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Switches to `faults`. `bind-localhost` decides where the api-gateway binds, at
    /// start: a change to it is refused, and nothing changes.
    pub fn replace(&self, faults: Faults) -> Result<(), String> {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if faults.bind_localhost != current.bind_localhost {
            return Err(format!(
                "bind-localhost is decided when the api-gateway binds its port: restart it {} the fault (it is {} now)",
                if faults.bind_localhost { "with" } else { "without" },
                if current.bind_localhost { "on" } else { "off" },
            ));
        }
        if faults.memory_leak.is_none() {
            release_leak();
        }
        *current = Arc::new(faults);
        Ok(())
    }
}

/// Bytes the memory-leak fault keeps per request, and the most it keeps in all.
const LEAK_PER_REQUEST: usize = 64 * 1024;
const LEAK_LIMIT: usize = 1 << 30;

static LEAKED: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

/// The memory-leak fault: keep a little of every request, up to a limit.
pub fn leak() {
    let mut leaked = LEAKED.lock().unwrap_or_else(|e| e.into_inner());
    if leaked.len() * LEAK_PER_REQUEST < LEAK_LIMIT {
        // Filled, not zeroed, so the pages are really resident.
        leaked.push(vec![0xA5; LEAK_PER_REQUEST].into_boxed_slice());
    }
}

/// What the memory-leak fault holds in this process.
pub fn leaked_bytes() -> usize {
    LEAKED.lock().unwrap_or_else(|e| e.into_inner()).len() * LEAK_PER_REQUEST
}

/// Gives back what the leak kept, so that switching the fault off restores the process.
fn release_leak() {
    let mut leaked = LEAKED.lock().unwrap_or_else(|e| e.into_inner());
    *leaked = Vec::new();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_with_values() {
        let mut f = Faults::default();
        f.enable("payment-failure=0.5").unwrap();
        f.enable("memory-leak=cart").unwrap();
        f.enable("basic-bug").unwrap();
        assert_eq!(f.payment_failure, Some(0.5));
        assert_eq!(f.memory_leak, Some(Role::Cart));
        assert_eq!(
            f.active(),
            ["basic-bug", "payment-failure=0.5", "memory-leak=cart"]
        );
    }

    #[test]
    fn bad_faults_name_the_valid_ones() {
        let mut f = Faults::default();
        assert!(f.enable("payment-failure=2").is_err());
        assert!(f.enable("memory-leak=basket").is_err());
        let err = f.enable("meteor-strike").unwrap_err();
        assert!(err.contains("basic-bug"), "{err}");
    }

    #[test]
    fn a_switch_changes_faults_but_not_where_a_port_is_bound() {
        let switch = FaultSwitch::new(Faults::parse(["basic-bug"]).unwrap());
        switch
            .replace(Faults::parse(["payment-latency=5"]).unwrap())
            .unwrap();
        assert_eq!(switch.get().active(), ["payment-latency=5"]);
        let err = switch
            .replace(Faults::parse(["bind-localhost"]).unwrap())
            .unwrap_err();
        assert!(err.contains("restart"), "{err}");
        assert_eq!(switch.get().active(), ["payment-latency=5"]);
    }
}
