//! Embedded in-memory stores for the single-process local mode: carts and sessions that
//! expire like their Redis twins, and the catalog built into the binary.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Cart, SearchPage, StoreError, MAX_CART_LINES};
use crate::catalog::Product;
use crate::domain::{ProductId, Quantity, SessionId};

/// How often expired entries are swept, so memory stays bounded by live sessions.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Entries that expire a fixed time after their last use.
struct Expiring<V> {
    ttl: Duration,
    entries: HashMap<String, (V, Instant)>,
    last_sweep: Instant,
}

impl<V> Expiring<V> {
    fn new(ttl: Duration) -> Self {
        Expiring {
            ttl,
            entries: HashMap::new(),
            last_sweep: Instant::now(),
        }
    }

    /// The live value under `key`, its expiry pushed back.
    fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let now = Instant::now();
        self.sweep(now);
        let ttl = self.ttl;
        match self.entries.get_mut(key) {
            Some((value, expires)) if *expires > now => {
                *expires = now + ttl;
                Some(value)
            }
            _ => None,
        }
    }

    fn insert(&mut self, key: &str, value: V) {
        let now = Instant::now();
        self.sweep(now);
        self.entries
            .insert(key.to_string(), (value, now + self.ttl));
    }

    fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.entries.retain(|_, (_, expires)| *expires > now);
            self.last_sweep = now;
        }
    }
}

pub struct MemoryCarts {
    carts: Mutex<Expiring<Cart>>,
}

impl MemoryCarts {
    pub fn new(ttl: Duration) -> Self {
        MemoryCarts {
            carts: Mutex::new(Expiring::new(ttl)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Expiring<Cart>> {
        // A panic while holding the lock cannot leave a cart half-written (every update
        // is one map operation), so a poisoned lock is still safe to use.
        self.carts.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn lines(&self, sid: &SessionId) -> Cart {
        self.lock()
            .get_mut(sid.as_str())
            .cloned()
            .unwrap_or_default()
    }

    pub fn set(
        &self,
        sid: &SessionId,
        id: &ProductId,
        quantity: Quantity,
    ) -> Result<Cart, StoreError> {
        let mut carts = self.lock();
        let mut cart = carts.get_mut(sid.as_str()).cloned().unwrap_or_default();
        if quantity.is_zero() {
            cart.remove(id.as_str());
        } else {
            if !cart.contains_key(id.as_str()) && cart.len() >= MAX_CART_LINES {
                return Err(StoreError::CartFull);
            }
            cart.insert(id.to_string(), quantity.get());
        }
        if cart.is_empty() {
            carts.remove(sid.as_str());
        } else {
            carts.insert(sid.as_str(), cart.clone());
        }
        Ok(cart)
    }

    pub fn clear(&self, sid: &SessionId) {
        self.lock().remove(sid.as_str());
    }
}

pub struct MemorySessions {
    sessions: Mutex<Expiring<()>>,
}

impl MemorySessions {
    pub fn new(ttl: Duration) -> Self {
        MemorySessions {
            sessions: Mutex::new(Expiring::new(ttl)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Expiring<()>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn touch(&self, sid: &SessionId) -> bool {
        self.lock().get_mut(sid.as_str()).is_some()
    }

    pub fn create(&self, sid: &SessionId) {
        self.lock().insert(sid.as_str(), ());
    }
}

/// The catalog in display order, with a lowercase copy of the searchable text.
pub struct MemoryCatalog {
    products: Vec<Product>,
    by_id: HashMap<String, usize>,
}

impl MemoryCatalog {
    pub fn new(mut products: Vec<Product>) -> Self {
        products.sort_by(Product::display_order);
        let by_id = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        MemoryCatalog { products, by_id }
    }

    pub fn documents(&self, ids: &[ProductId]) -> Vec<Product> {
        if ids.is_empty() {
            return self.products.clone();
        }
        let mut positions: Vec<usize> = ids
            .iter()
            .filter_map(|id| self.by_id.get(id.as_str()).copied())
            .collect();
        positions.sort_unstable();
        positions.dedup();
        positions
            .into_iter()
            .map(|i| self.products[i].clone())
            .collect()
    }

    pub fn search(&self, query: &str, limit: usize) -> SearchPage {
        let needle = query.to_lowercase();
        let mut matches = self.products.iter().filter(|p| p.matches(&needle));
        let results: Vec<Product> = matches.by_ref().take(limit).cloned().collect();
        let total = results.len() + matches.count();
        SearchPage { total, results }
    }

    pub fn get(&self, id: &ProductId) -> Option<Product> {
        self.by_id
            .get(id.as_str())
            .map(|&i| self.products[i].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{parse_csv, BUILTIN_CSV};

    fn sid(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
    }
    fn pid(s: &str) -> ProductId {
        ProductId::parse(s).unwrap()
    }
    fn qty(n: u16) -> Quantity {
        Quantity::new(n).unwrap()
    }

    #[test]
    fn carts_set_replace_and_remove_lines() {
        let carts = MemoryCarts::new(Duration::from_secs(60));
        carts.set(&sid("s"), &pid("a"), qty(2)).unwrap();
        let cart = carts.set(&sid("s"), &pid("a"), qty(5)).unwrap();
        assert_eq!(cart.get("a"), Some(&5));
        assert!(carts.set(&sid("s"), &pid("a"), qty(0)).unwrap().is_empty());
        assert!(carts.lines(&sid("other")).is_empty());
    }

    #[test]
    fn carts_refuse_line_101_but_allow_updates() {
        let carts = MemoryCarts::new(Duration::from_secs(60));
        for i in 0..MAX_CART_LINES {
            carts
                .set(&sid("s"), &pid(&format!("p{i}")), qty(1))
                .unwrap();
        }
        assert!(matches!(
            carts.set(&sid("s"), &pid("one-more"), qty(1)),
            Err(StoreError::CartFull)
        ));
        assert!(carts.set(&sid("s"), &pid("p0"), qty(9)).is_ok());
        assert_eq!(carts.lines(&sid("s")).len(), MAX_CART_LINES);
    }

    #[test]
    fn carts_expire_after_their_ttl() {
        let carts = MemoryCarts::new(Duration::from_millis(20));
        carts.set(&sid("s"), &pid("a"), qty(1)).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        assert!(carts.lines(&sid("s")).is_empty());
    }

    #[test]
    fn sessions_exist_once_created() {
        let sessions = MemorySessions::new(Duration::from_secs(60));
        assert!(!sessions.touch(&sid("s")));
        sessions.create(&sid("s"));
        assert!(sessions.touch(&sid("s")));
    }

    #[test]
    fn catalog_search_counts_all_matches_and_pages() {
        let catalog = MemoryCatalog::new(parse_csv(BUILTIN_CSV).unwrap());
        let page = catalog.search("TEA", 2);
        assert_eq!(page.results.len(), 2);
        assert!(page.total > 2);
        assert_eq!(catalog.search("100%", 10).total, 0);
        assert_eq!(catalog.documents(&[pid("f95e2475"), pid("nope")]).len(), 1);
    }
}
