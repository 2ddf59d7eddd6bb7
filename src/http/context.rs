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
    pub fn name(&self) -> &'static str {
        match self {
            Dependency::CartData(_) => "cart-data",
            Dependency::SessionData(_) => "session-data",
            Dependency::ProductData(_) => "product-data",
            Dependency::ApiGateway(_) => "api-gateway",
        }
    }
}

pub struct RoleContext {
    pub role: Role,
    pub metrics: Metrics,
    pub faults: Arc<Faults>,
    pub dependencies: Vec<Dependency>,
}

impl RoleContext {
    pub fn new(role: Role, faults: Arc<Faults>, dependencies: Vec<Dependency>) -> Self {
        let metrics = Metrics::new(role);
        for fault in faults.active() {
            metrics.set("ecommerce_fault_active", &[("fault", &fault)], 1.0);
        }
        RoleContext {
            role,
            metrics,
            faults,
            dependencies,
        }
    }
}
