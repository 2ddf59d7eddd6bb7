//! The shop's stores (cart-data, session-data, product-data) behind one type each, with
//! the backends a URL selects.

pub mod memory;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::Product;
use crate::domain::{ProductId, Quantity, SessionId};

/// The most lines one cart may hold, so traffic generators cannot grow a store unbounded.
pub const MAX_CART_LINES: usize = 100;

/// A cart's lines: product id to quantity, in id order.
pub type Cart = BTreeMap<String, u16>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or answered with an error; the role answers 503.
    #[error("{store} is unavailable: {reason}")]
    Unavailable { store: &'static str, reason: String },
    /// Only reads can be served (the primary is down, a replica answers).
    #[error("{store} is read-only: {reason}")]
    ReadOnly { store: &'static str, reason: String },
    #[error("A cart holds at most {MAX_CART_LINES} lines")]
    CartFull,
}

/// Where a store lives, parsed from its option: `memory`, `redis://...` or `postgres://...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Memory,
    Redis(String),
    Postgres(String),
}

impl std::str::FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "memory" {
            Ok(StoreUrl::Memory)
        } else if s.starts_with("redis://") || s.starts_with("rediss://") {
            Ok(StoreUrl::Redis(s.to_string()))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreUrl::Postgres(s.to_string()))
        } else {
            Err(format!(
                "'{}' is not a store URL (use memory, redis://... or postgres://...)",
                redact(s)
            ))
        }
    }
}

/// A URL with any password replaced, safe for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// How a store is doing, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Up,
    /// Serving, but without its safety net (e.g. a replica is down).
    Degraded(String),
}

/// cart-data: one hash of product id to quantity per session, with a sliding TTL.
#[derive(Clone)]
pub enum CartStore {
    Memory(Arc<memory::MemoryCarts>),
}

impl CartStore {
    pub fn memory(ttl: Duration) -> Self {
        CartStore::Memory(Arc::new(memory::MemoryCarts::new(ttl)))
    }

    pub async fn lines(&self, sid: &SessionId) -> Result<Cart, StoreError> {
        match self {
            CartStore::Memory(m) => Ok(m.lines(sid)),
        }
    }

    /// Sets one line (quantity 0 removes it) and returns the cart as it now is.
    pub async fn set(
        &self,
        sid: &SessionId,
        id: &ProductId,
        quantity: Quantity,
    ) -> Result<Cart, StoreError> {
        match self {
            CartStore::Memory(m) => m.set(sid, id, quantity),
        }
    }

    pub async fn remove(&self, sid: &SessionId, id: &ProductId) -> Result<Cart, StoreError> {
        self.set(sid, id, Quantity::new(0).expect("0 is a quantity"))
            .await
    }

    pub async fn clear(&self, sid: &SessionId) -> Result<(), StoreError> {
        match self {
            CartStore::Memory(m) => {
                m.clear(sid);
                Ok(())
            }
        }
    }

    pub async fn health(&self) -> Result<Health, StoreError> {
        match self {
            CartStore::Memory(_) => Ok(Health::Up),
        }
    }
}

/// session-data: one key per session with a sliding TTL.
#[derive(Clone)]
pub enum SessionStore {
    Memory(Arc<memory::MemorySessions>),
}

impl SessionStore {
    pub fn memory(ttl: Duration) -> Self {
        SessionStore::Memory(Arc::new(memory::MemorySessions::new(ttl)))
    }

    /// Extends a live session; false when it does not exist (or has expired).
    pub async fn touch(&self, sid: &SessionId) -> Result<bool, StoreError> {
        match self {
            SessionStore::Memory(m) => Ok(m.touch(sid)),
        }
    }

    pub async fn create(&self, sid: &SessionId) -> Result<(), StoreError> {
        match self {
            SessionStore::Memory(m) => {
                m.create(sid);
                Ok(())
            }
        }
    }

    pub async fn health(&self) -> Result<Health, StoreError> {
        match self {
            SessionStore::Memory(_) => Ok(Health::Up),
        }
    }
}

/// product-data: the catalog.
#[derive(Clone)]
pub enum ProductStore {
    Memory(Arc<memory::MemoryCatalog>),
}

/// One page of search results and how many matched in all.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub total: usize,
    pub results: Vec<Product>,
}

impl ProductStore {
    pub fn memory(products: Vec<Product>) -> Self {
        ProductStore::Memory(Arc::new(memory::MemoryCatalog::new(products)))
    }

    /// The products with these ids (all products when `ids` is empty), best rated first.
    pub async fn documents(&self, ids: &[ProductId]) -> Result<Vec<Product>, StoreError> {
        match self {
            ProductStore::Memory(m) => Ok(m.documents(ids)),
        }
    }

    /// Products whose name or description contains `query` (any case), best rated first.
    pub async fn search(&self, query: &str, limit: usize) -> Result<SearchPage, StoreError> {
        match self {
            ProductStore::Memory(m) => Ok(m.search(query, limit)),
        }
    }

    pub async fn get(&self, id: &ProductId) -> Result<Option<Product>, StoreError> {
        match self {
            ProductStore::Memory(m) => Ok(m.get(id)),
        }
    }

    pub async fn health(&self) -> Result<Health, StoreError> {
        match self {
            ProductStore::Memory(_) => Ok(Health::Up),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_by_scheme() {
        assert_eq!("memory".parse::<StoreUrl>(), Ok(StoreUrl::Memory));
        assert!(matches!(
            "redis://127.0.0.1:6379/0".parse::<StoreUrl>(),
            Ok(StoreUrl::Redis(_))
        ));
        assert!(matches!(
            "postgres://u@h/db".parse::<StoreUrl>(),
            Ok(StoreUrl::Postgres(_))
        ));
        let err = "mysql://root:hunter2@h/db".parse::<StoreUrl>().unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(redact("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }
}
