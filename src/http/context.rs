//! What every handler of one role can reach: its name, metrics, faults, tracer and
//! dependencies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::domain::Secret;
use crate::faults::shared::Control;
use crate::faults::{FaultSwitch, Faults};
use crate::role::Role;
use crate::stores::{CartStore, PoolUsage, ProductStore, SessionStore};
use crate::telemetry::{Instruments, Tracer};

use crate::telemetry::metrics::Metrics;

/// Something a role needs to serve; `/readyz` and `ecommerce_dependency_up` check each.
#[derive(Clone)]
pub enum Dependency {
    CartData(CartStore),
    SessionData(SessionStore),
    ProductData(ProductStore),
    /// Another role, at this URL: the api-gateway for its callers, each upstream for the
    /// api-gateway.
    Service(Role, String),
}

impl Dependency {
    /// Writes acknowledged without a replica (Redis stores).
    pub fn unreplicated_writes(&self) -> u64 {
        match self {
            Dependency::CartData(s) => s.unreplicated_writes(),
            Dependency::SessionData(s) => s.unreplicated_writes(),
            _ => 0,
        }
    }

    /// Whether it is one of the role's stores (not a service it calls).
    pub fn is_store(&self) -> bool {
        !matches!(self, Dependency::Service(..))
    }

    /// Whether it is a store with replicas (Redis), whose unreplicated writes count.
    pub fn has_replicas(&self) -> bool {
        matches!(self, Dependency::CartData(_) | Dependency::SessionData(_))
    }

    /// Connection pool usage by server; none for in-memory stores.
    pub fn pool_usage(&self) -> Vec<(&'static str, PoolUsage)> {
        match self {
            Dependency::CartData(s) => s.pool_usage(),
            Dependency::SessionData(s) => s.pool_usage(),
            Dependency::ProductData(s) => s.pool_usage(),
            Dependency::Service(..) => Vec::new(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Dependency::CartData(_) => "cart-data",
            Dependency::SessionData(_) => "session-data",
            Dependency::ProductData(_) => "product-data",
            Dependency::Service(role, _) => role.as_str(),
        }
    }
}

/// The dependencies of one worker (each worker has its own store connections).
pub struct Dependencies(pub Vec<Dependency>);

/// Whether this process still wants traffic: from start-up until a SIGTERM begins its
/// drain. Shared by every role and listener of the process.
#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
}

impl Lifecycle {
    /// From now on `/readyz` answers 503 and every response closes its connection, so
    /// that load balancers and pooled callers move to other processes.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// Shared by all workers of a role.
pub struct RoleContext {
    pub role: Role,
    /// Metrics and tracer, which the role's spans record into too.
    pub instruments: Arc<Instruments>,
    /// Shared by the roles of the process.
    pub faults: Arc<FaultSwitch>,
    /// The fault state the process follows (the shop's, or its own), shared likewise.
    pub fault_control: Arc<Control>,
    /// Allows `PUT /faults`; absent, the faults stay as started.
    pub admin_token: Option<Secret>,
    /// Wrong admin tokens by client, shared by the role's listeners.
    pub admin_guesses: super::admin::Guesses,
    /// The process's: whether it is draining.
    pub lifecycle: Arc<Lifecycle>,
}

impl RoleContext {
    pub fn new(role: Role, faults: Arc<FaultSwitch>, tracer: Tracer) -> Self {
        RoleContext {
            role,
            instruments: Arc::new(Instruments::new(tracer)),
            fault_control: Arc::new(Control::local(
                faults.clone(),
                Faults::default(),
                role.as_str().into(),
            )),
            faults,
            admin_token: None,
            admin_guesses: Default::default(),
            lifecycle: Default::default(),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.instruments.metrics
    }

    pub fn tracer(&self) -> &Tracer {
        &self.instruments.tracer
    }
}
