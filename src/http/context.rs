//! What every handler of one role can reach: its name, metrics, faults and dependencies.

use std::sync::Arc;

use crate::config::Faults;
use crate::role::Role;
use crate::stores::{CartStore, ProductStore, SessionStore};

use super::metrics::Metrics;

/// Something a role needs to serve; `/readyz` checks each.
#[derive(Clone)]
pub enum Dependency {
    CartData(CartStore),
    SessionData(SessionStore),
    ProductData(ProductStore),
    ApiGateway(String),
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

    pub fn name(&self) -> &'static str {
        match self {
            Dependency::CartData(_) => "cart-data",
            Dependency::SessionData(_) => "session-data",
            Dependency::ProductData(_) => "product-data",
            Dependency::ApiGateway(_) => "api-gateway",
        }
    }
}

/// The dependencies of one worker (each worker has its own store connections).
pub struct Dependencies(pub Vec<Dependency>);

/// Shared by all workers of a role.
pub struct RoleContext {
    pub role: Role,
    pub metrics: Metrics,
    pub faults: Arc<Faults>,
}

impl RoleContext {
    pub fn new(role: Role, faults: Arc<Faults>) -> Self {
        let metrics = Metrics::new(role);
        for fault in faults.active() {
            metrics.set("ecommerce_fault_active", &[("fault", &fault)], 1.0);
        }
        RoleContext {
            role,
            metrics,
            faults,
        }
    }
}
