//! The fault scenarios of SPEC section 7: which are on, parsed from `NAME[=VALUE]`, and the
//! switch a running process reads them from (set at start, changed by `PUT /faults`).

pub mod catalog;
pub mod shared;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::domain::{DelayRange, ProductId};
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
    /// Extra time of every product-data operation, spent in the store (a slow query).
    pub product_data_slow_ms: Option<u64>,
    /// Extra time of every cart-data operation, spent before its command.
    pub cart_data_latency_ms: Option<u64>,
    /// The upstream whose calls the api-gateway drops (502), and the share it drops.
    pub upstream_drop: Option<(Role, f64)>,
    /// The one product the product role fails (500) on.
    pub product_failure: Option<ProductId>,
    /// The role that keeps a core busy while the fault is on.
    pub cpu_hog: Option<Role>,
}

impl Faults {
    pub const NAMES: [&'static str; 11] = [
        "basic-bug",
        "bind-localhost",
        "payment-failure=<ratio>",
        "payment-latency=<ms>",
        "cart-data-outage",
        "memory-leak=<role>",
        "product-data-slow=<ms>",
        "cart-data-latency=<ms>",
        "upstream-drop=<upstream>:<ratio>",
        "product-failure=<product-id>",
        "cpu-hog=<role>",
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
                let ratio =
                    ratio(v.unwrap_or("1")).ok_or_else(|| bad_value("a ratio from 0 to 1"))?;
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
            ("product-data-slow", v) => {
                let ms = extra_ms(v).ok_or_else(|| bad_value("milliseconds from 1 to 60000"))?;
                self.product_data_slow_ms = Some(ms);
            }
            ("cart-data-latency", v) => {
                let ms = extra_ms(v).ok_or_else(|| bad_value("milliseconds from 1 to 60000"))?;
                self.cart_data_latency_ms = Some(ms);
            }
            ("upstream-drop", v) => {
                let upstreams = Role::UPSTREAMS.map(Role::as_str).join(", ");
                let (upstream, share) = v.and_then(|v| v.split_once(':')).ok_or_else(|| {
                    bad_value(&format!(
                        "<upstream>:<ratio> (upstream one of {upstreams}; ratio from 0 to 1)"
                    ))
                })?;
                let upstream = Role::upstream(upstream.trim()).ok_or_else(|| {
                    bad_value(&format!("an upstream before the ':', one of {upstreams}"))
                })?;
                let share =
                    ratio(share).ok_or_else(|| bad_value("a ratio from 0 to 1 after the ':'"))?;
                self.upstream_drop = Some((upstream, share));
            }
            ("product-failure", v) => {
                let id = ProductId::parse(v.unwrap_or_default()).map_err(|_| {
                    bad_value("a product id (1-64 characters of A-Z, a-z, 0-9, _ and -)")
                })?;
                self.product_failure = Some(id);
            }
            ("cpu-hog", v) => {
                let roles = Role::ALL.map(Role::as_str).join(", ");
                let role = v
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| bad_value(&format!("a role, one of {roles}")))?;
                self.cpu_hog = Some(role);
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
        if let Some(ms) = self.product_data_slow_ms {
            out.push(format!("product-data-slow={ms}"));
        }
        if let Some(ms) = self.cart_data_latency_ms {
            out.push(format!("cart-data-latency={ms}"));
        }
        if let Some((upstream, share)) = self.upstream_drop {
            out.push(format!("upstream-drop={upstream}:{share}"));
        }
        if let Some(id) = &self.product_failure {
            out.push(format!("product-failure={id}"));
        }
        if let Some(role) = self.cpu_hog {
            out.push(format!("cpu-hog={role}"));
        }
        out
    }

    /// The time the product-data-slow fault adds to each product-data operation.
    pub fn product_data_delay(&self) -> Duration {
        Duration::from_millis(self.product_data_slow_ms.unwrap_or(0))
    }

    /// The time the cart-data-latency fault adds to each cart-data operation.
    pub fn cart_data_delay(&self) -> Duration {
        Duration::from_millis(self.cart_data_latency_ms.unwrap_or(0))
    }
}

/// A share from 0 to 1.
fn ratio(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
}

/// Milliseconds a fault adds to an operation: more than none, at most a minute.
fn extra_ms(value: Option<&str>) -> Option<u64> {
    value?
        .parse::<u64>()
        .ok()
        .filter(|ms| (1..=DelayRange::LIMIT_MS).contains(ms))
}

/// The faults of a running process, read by every request, switchable at run time.
#[derive(Debug, Default)]
pub struct FaultSwitch {
    current: RwLock<Arc<Faults>>,
    /// The cpu-hog fault's thread, while one burns: lowering the flag stops it.
    hog: Mutex<Option<Arc<AtomicBool>>>,
}

impl FaultSwitch {
    pub fn new(faults: Faults) -> Self {
        FaultSwitch {
            current: RwLock::new(Arc::new(faults)),
            hog: Mutex::default(),
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
        if faults.cpu_hog != current.cpu_hog {
            self.stop_hog();
        }
        *current = Arc::new(faults);
        Ok(())
    }

    /// The cpu-hog fault, as a request of `role` meets it: the first such request starts
    /// one thread that keeps a core busy until the fault goes off. Lazily, so that only a
    /// process serving `role` burns, whatever faults it was handed.
    pub fn hog_cpu(&self, role: Role) {
        // The faults' lock first, as in `replace`, so the two cannot interleave: no
        // thread starts after the fault went off.
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        let mut hog = self.hog.lock().unwrap_or_else(|e| e.into_inner());
        if current.cpu_hog != Some(role) || hog.is_some() {
            return;
        }
        let burning = Arc::new(AtomicBool::new(true));
        let flag = burning.clone();
        match std::thread::Builder::new()
            .name(CPU_HOG_THREAD.into())
            .spawn(move || burn_cpu(&flag))
        {
            Ok(_) => *hog = Some(burning),
            Err(e) => log::warn!(
                "msg=\"cpu-hog fault: no thread to burn on\" error={:?}",
                e.kind()
            ),
        }
    }

    fn stop_hog(&self) {
        let mut hog = self.hog.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(burning) = hog.take() {
            burning.store(false, Ordering::Relaxed);
        }
    }
}

impl Drop for FaultSwitch {
    /// The faults go with the process's roles (a test's shop, say): so does their thread.
    fn drop(&mut self) {
        self.stop_hog();
    }
}

/// The name of the cpu-hog fault's thread (as `top -H` and `/proc/<pid>/task` show it).
pub const CPU_HOG_THREAD: &str = "cpu-hog";

/// Busy work on one core until `burning` is lowered: checked every few hundred
/// microseconds, so the core is free again at once.
fn burn_cpu(burning: &AtomicBool) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    while burning.load(Ordering::Relaxed) {
        for _ in 0..100_000 {
            // A step of a linear congruential generator: cheap, and not optimized away.
            state = std::hint::black_box(
                state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407),
            );
        }
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
    fn the_newer_faults_parse_and_show_as_written() {
        let f = Faults::parse([
            "product-data-slow=300",
            "cart-data-latency = 60000",
            "upstream-drop=cart:0.25",
            "product-failure=OLJCESPC7Z",
            "cpu-hog=product",
        ])
        .unwrap();

        assert_eq!(f.product_data_delay(), Duration::from_millis(300));
        assert_eq!(f.cart_data_delay(), Duration::from_secs(60));
        assert_eq!(f.upstream_drop, Some((Role::Cart, 0.25)));
        assert_eq!(
            f.product_failure,
            Some(ProductId::parse("OLJCESPC7Z").unwrap())
        );
        assert_eq!(f.cpu_hog, Some(Role::Product));
        assert_eq!(
            f.active(),
            [
                "product-data-slow=300",
                "cart-data-latency=60000",
                "upstream-drop=cart:0.25",
                "product-failure=OLJCESPC7Z",
                "cpu-hog=product",
            ]
        );
        assert_eq!(
            Faults::parse(f.active()).unwrap(),
            f,
            "active() parses back"
        );
        assert_eq!(Faults::default().product_data_delay(), Duration::ZERO);
        let edges = Faults::parse(["upstream-drop=payment:0", "upstream-drop=product:1"]);
        assert_eq!(edges.unwrap().upstream_drop, Some((Role::Product, 1.0)));
    }

    #[test]
    fn bad_values_of_the_newer_faults_say_what_each_needs() {
        let cases = [
            ("product-data-slow=0", "milliseconds from 1 to 60000"),
            ("product-data-slow=60001", "milliseconds from 1 to 60000"),
            ("product-data-slow", "milliseconds from 1 to 60000"),
            ("cart-data-latency=fast", "milliseconds from 1 to 60000"),
            ("cart-data-latency=-5", "milliseconds from 1 to 60000"),
            ("upstream-drop=cart", "<upstream>:<ratio>"),
            ("upstream-drop", "<upstream>:<ratio>"),
            (
                "upstream-drop=web-gateway:1",
                "cart, checkout, content, payment, product",
            ),
            ("upstream-drop=basket:1", "an upstream before the ':'"),
            (
                "upstream-drop=cart:1.5",
                "a ratio from 0 to 1 after the ':'",
            ),
            ("upstream-drop=cart:", "a ratio from 0 to 1"),
            ("product-failure", "a product id"),
            ("product-failure=../etc", "a product id"),
            ("cpu-hog", "a role, one of web-gateway"),
            ("cpu-hog=all", "a role"),
        ];
        for (spec, needs) in cases {
            let err = Faults::parse([spec]).unwrap_err();
            let name = spec.split('=').next().unwrap();
            assert!(err.starts_with(&format!("fault '{name}' needs ")), "{err}");
            assert!(err.contains(needs), "{spec}: {err}");
            assert!(err.ends_with(&format!("got '{spec}'")), "{err}");
        }
    }

    /// Threads of this process named as the cpu-hog fault's.
    fn hog_threads() -> usize {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return 0;
        };
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == CPU_HOG_THREAD)
            .count()
    }

    #[test]
    fn cpu_hog_burns_for_its_role_only_and_stops_when_switched_off() {
        let switch = FaultSwitch::new(Faults::parse(["cpu-hog=cart"]).unwrap());
        let burning = || switch.hog.lock().unwrap().clone();

        switch.hog_cpu(Role::Product);
        assert!(burning().is_none(), "another role's request starts nothing");
        switch.hog_cpu(Role::Cart);
        let flag = burning().expect("a cart request starts the thread");
        switch.hog_cpu(Role::Cart);
        assert!(
            Arc::ptr_eq(&flag, &burning().unwrap()),
            "one thread, not two"
        );
        switch
            .replace(Faults::parse(["cpu-hog=cart", "basic-bug"]).unwrap())
            .unwrap();
        assert!(
            flag.load(Ordering::Relaxed),
            "other faults leave it burning"
        );
        switch.replace(Faults::default()).unwrap();

        assert!(!flag.load(Ordering::Relaxed));
        assert!(burning().is_none());
        switch.hog_cpu(Role::Cart);
        assert!(burning().is_none(), "nothing starts once the fault is off");
        if std::path::Path::new("/proc/self/task").exists() {
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while hog_threads() > 0 {
                assert!(std::time::Instant::now() < deadline, "the thread goes on");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    #[test]
    fn a_dropped_switch_stops_its_hog() {
        let switch = FaultSwitch::new(Faults::parse(["cpu-hog=payment"]).unwrap());
        switch.hog_cpu(Role::Payment);
        let flag = switch.hog.lock().unwrap().clone().unwrap();

        drop(switch);

        assert!(!flag.load(Ordering::Relaxed));
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
