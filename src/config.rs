//! Settings: everything a role needs to start, built from the CLI (or directly by tests).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::role::Role;
use crate::stores::StoreUrl;

/// Everything the shop's roles are configured with. Only the CLI reads the environment;
/// tests build this directly.
#[derive(Debug, Clone)]
pub struct Settings {
    pub roles: Vec<Role>,
    /// Where each role listens (`HOST:PORT`; port 0 picks a free one).
    pub listen: BTreeMap<Role, String>,
    /// How web-gateway and checkout reach the api-gateway; `None` wires it automatically
    /// (to the api-gateway of this process, else the default local port).
    pub api_gateway_url: Option<String>,
    /// Where the api-gateway sends each service; absent ones are wired like the above.
    pub upstreams: BTreeMap<Role, String>,
    pub cart_data: StoreUrl,
    pub cart_data_replica: Option<StoreUrl>,
    pub session_data: StoreUrl,
    pub session_data_replica: Option<StoreUrl>,
    pub product_data: StoreUrl,
    pub session_secret: Secret,
    pub content_source: Option<String>,
    pub payment_delay: DelayRange,
    pub faults: Faults,
    pub cart_ttl: Duration,
    pub session_ttl: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Worker threads per role; 0 means one per CPU.
    pub workers: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
}

impl Settings {
    /// Defaults of a local run of `roles`, every role on 127.0.0.1 at `base_port` plus
    /// its offset (or on a free port each when `base_port` is 0).
    pub fn local(roles: Vec<Role>, base_port: u16) -> Self {
        let listen = roles
            .iter()
            .map(|r| (*r, listen_address("127.0.0.1", base_port, *r)))
            .collect();
        Settings {
            roles,
            listen,
            api_gateway_url: None,
            upstreams: BTreeMap::new(),
            cart_data: StoreUrl::Memory,
            cart_data_replica: None,
            session_data: StoreUrl::Memory,
            session_data_replica: None,
            product_data: StoreUrl::Memory,
            session_secret: Secret::random(),
            content_source: None,
            payment_delay: DelayRange::DEFAULT,
            faults: Faults::default(),
            cart_ttl: Duration::from_secs(24 * 3600),
            session_ttl: Duration::from_secs(30 * 60),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            workers: 0,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// `host:port` of `role` when the roles of one process share a base port.
pub fn listen_address(host: &str, base_port: u16, role: Role) -> String {
    let port = if base_port == 0 {
        0
    } else {
        base_port.saturating_add(role.offset())
    };
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret {
    value: String,
    pub generated: bool,
}

impl Secret {
    pub fn new(value: String) -> Self {
        Secret {
            value,
            generated: false,
        }
    }

    pub fn random() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Secret {
            value: hex::encode(bytes),
            generated: true,
        }
    }

    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// The simulated payment processing time, in milliseconds, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayRange {
    pub min_ms: u64,
    pub max_ms: u64,
}

impl DelayRange {
    pub const DEFAULT: DelayRange = DelayRange {
        min_ms: 500,
        max_ms: 1000,
    };
    /// The longest delay accepted, so a typo cannot hang payments for hours.
    pub const LIMIT_MS: u64 = 60_000;
}

impl std::str::FromStr for DelayRange {
    type Err = String;

    /// `MIN-MAX` or a single `N` (both in ms).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || format!("'{s}' is not MIN-MAX milliseconds (e.g. 500-1000, or 0)");
        let (min, max) = s.split_once('-').unwrap_or((s, s));
        let min: u64 = min.trim().parse().map_err(|_| err())?;
        let max: u64 = max.trim().parse().map_err(|_| err())?;
        if min > max || max > Self::LIMIT_MS {
            return Err(err());
        }
        Ok(DelayRange {
            min_ms: min,
            max_ms: max,
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_settings_put_roles_on_consecutive_ports() {
        let s = Settings::local(Role::ALL.to_vec(), 9000);
        assert_eq!(s.listen[&Role::WebGateway], "127.0.0.1:9000");
        assert_eq!(s.listen[&Role::Product], "127.0.0.1:9006");
        let s = Settings::local(vec![Role::Cart], 0);
        assert_eq!(s.listen[&Role::Cart], "127.0.0.1:0");
        assert_eq!(listen_address("::1", 8080, Role::Cart), "[::1]:8082");
    }

    #[test]
    fn delay_ranges_parse() {
        assert_eq!("500-1000".parse(), Ok(DelayRange::DEFAULT));
        assert_eq!(
            "0".parse(),
            Ok(DelayRange {
                min_ms: 0,
                max_ms: 0
            })
        );
        for bad in ["", "10-5", "a-b", "1-999999"] {
            assert!(bad.parse::<DelayRange>().is_err(), "{bad:?} accepted");
        }
    }

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
    fn secrets_stay_hidden() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(Secret::random().generated);
    }
}
