//! Embedded in-memory stores for the single-process local mode: carts and sessions that
//! expire like their Redis twins, and the catalog built into the binary.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{
    Cart, Claim, Count, Restore, SearchPage, StoreError, CLAIM_STALE, MAX_CART_LINES, ORDER_TTL,
};
use crate::catalog::Product;
use crate::domain::{AttemptKey, OrderId, ProductId, Quantity, SessionId};

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

/// An order record: the lines a checkout attempt claimed, then its receipt.
struct Order {
    order_id: String,
    lines: Cart,
    state: OrderState,
}

enum OrderState {
    Pending { claimed_at: Instant },
    Paid { receipt: String },
}

/// Carts and order records under one lock, so a claim moves lines in one step.
struct Tables {
    carts: Expiring<Cart>,
    orders: Expiring<Order>,
}

pub struct MemoryCarts {
    tables: Mutex<Tables>,
}

fn order_key(sid: &SessionId, key: &AttemptKey) -> String {
    format!("{sid}:{key}")
}

impl MemoryCarts {
    pub fn new(ttl: Duration) -> Self {
        MemoryCarts {
            tables: Mutex::new(Tables {
                carts: Expiring::new(ttl),
                orders: Expiring::new(ORDER_TTL),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave a cart half-written (every update
        // is one map operation), so a poisoned lock is still safe to use.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn lines(&self, sid: &SessionId) -> Cart {
        self.lock()
            .carts
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
        let mut tables = self.lock();
        let carts = &mut tables.carts;
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
        self.lock().carts.remove(sid.as_str());
    }

    /// Moves the cart's lines to the order record of attempt `key` (see `CartStore::claim`).
    pub fn claim(&self, sid: &SessionId, key: &AttemptKey, order_id: &OrderId) -> Claim {
        let tables = &mut *self.lock();
        let now = Instant::now();
        if let Some(order) = tables.orders.get_mut(&order_key(sid, key)) {
            return match &mut order.state {
                OrderState::Paid { receipt } => Claim::Paid {
                    receipt: receipt.clone(),
                },
                OrderState::Pending { claimed_at } if now - *claimed_at < CLAIM_STALE => {
                    Claim::Pending {
                        order_id: order.order_id.clone(),
                    }
                }
                OrderState::Pending { claimed_at } => {
                    *claimed_at = now;
                    Claim::Claimed {
                        order_id: order.order_id.clone(),
                        lines: order.lines.clone(),
                    }
                }
            };
        }
        let lines = tables
            .carts
            .get_mut(sid.as_str())
            .cloned()
            .unwrap_or_default();
        if lines.is_empty() {
            return Claim::Empty;
        }
        tables.carts.remove(sid.as_str());
        let order = Order {
            order_id: order_id.to_string(),
            lines: lines.clone(),
            state: OrderState::Pending { claimed_at: now },
        };
        tables.orders.insert(&order_key(sid, key), order);
        Claim::Claimed {
            order_id: order_id.to_string(),
            lines,
        }
    }

    /// Puts a pending order's lines back (see `CartStore::restore`).
    pub fn restore(&self, sid: &SessionId, key: &AttemptKey) -> Restore {
        let tables = &mut *self.lock();
        let okey = order_key(sid, key);
        let lines = match tables.orders.get_mut(&okey) {
            None => return Restore::Nothing,
            Some(Order {
                state: OrderState::Paid { .. },
                ..
            }) => return Restore::Paid,
            Some(order) => std::mem::take(&mut order.lines),
        };
        tables.orders.remove(&okey);
        let mut cart = tables
            .carts
            .get_mut(sid.as_str())
            .cloned()
            .unwrap_or_default();
        for (id, quantity) in lines {
            cart.entry(id).or_insert(quantity);
        }
        tables.carts.insert(sid.as_str(), cart);
        Restore::Restored
    }

    /// Marks the order of attempt `key` paid, keeping its receipt.
    pub fn complete(&self, sid: &SessionId, key: &AttemptKey, receipt: &str) {
        let tables = &mut *self.lock();
        let okey = order_key(sid, key);
        let state = OrderState::Paid {
            receipt: receipt.to_string(),
        };
        match tables.orders.get_mut(&okey) {
            Some(order) => order.state = state,
            None => tables.orders.insert(
                &okey,
                Order {
                    order_id: String::new(),
                    lines: Cart::new(),
                    state,
                },
            ),
        }
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
    /// Each product's name and description in lowercase, in the same order, so a search
    /// lowercases only its query.
    searchable: Vec<(String, Option<String>)>,
}

impl MemoryCatalog {
    pub fn new(mut products: Vec<Product>) -> Self {
        products.sort_by(Product::display_order);
        let by_id = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let searchable = products
            .iter()
            .map(|p| {
                (
                    p.name.to_lowercase(),
                    p.description.as_deref().map(str::to_lowercase),
                )
            })
            .collect();
        MemoryCatalog {
            products,
            by_id,
            searchable,
        }
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

    /// As PostgreSQL answers: the first `limit` matches in display order, counted as
    /// `count` says; the empty query counts the whole catalog.
    pub fn search(&self, query: &str, limit: usize, count: Count) -> SearchPage {
        if query.is_empty() {
            let results = self.products.iter().take(limit).cloned().collect();
            return SearchPage::exact(self.products.len(), results);
        }
        let needle = query.to_lowercase();
        let mut matches = self
            .searchable
            .iter()
            .zip(&self.products)
            .filter(|((name, description), _)| {
                name.contains(&needle)
                    || description.as_deref().is_some_and(|d| d.contains(&needle))
            })
            .map(|(_, product)| product);
        let results: Vec<Product> = matches.by_ref().take(limit).cloned().collect();
        let cap = count.cap(limit);
        let more = (cap + 1).saturating_sub(results.len());
        let counted = results.len() + matches.take(more).count();
        SearchPage::capped(counted, cap, results)
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
    use crate::stores::{Relation, SEARCH_COUNT_CAP};

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

    fn key(s: &str) -> AttemptKey {
        AttemptKey::parse(s).unwrap()
    }

    #[test]
    fn a_claim_moves_the_lines_once_and_a_restore_puts_them_back() {
        let carts = MemoryCarts::new(Duration::from_secs(60));
        carts.set(&sid("s"), &pid("a"), qty(2)).unwrap();
        let order = OrderId::random();
        let first = carts.claim(&sid("s"), &key("k"), &order);
        assert!(matches!(first, Claim::Claimed { ref lines, .. } if lines["a"] == 2));
        assert!(carts.lines(&sid("s")).is_empty());
        assert!(matches!(
            carts.claim(&sid("s"), &key("k"), &OrderId::random()),
            Claim::Pending { ref order_id } if *order_id == order.to_string()
        ));
        assert!(matches!(
            carts.claim(&sid("s"), &key("other"), &OrderId::random()),
            Claim::Empty
        ));
        // A line set during checkout stays as the shopper set it.
        carts.set(&sid("s"), &pid("b"), qty(1)).unwrap();
        carts.set(&sid("s"), &pid("a"), qty(7)).unwrap();
        assert!(matches!(
            carts.restore(&sid("s"), &key("k")),
            Restore::Restored
        ));
        let cart = carts.lines(&sid("s"));
        assert_eq!((cart["a"], cart["b"]), (7, 1));
        assert!(matches!(
            carts.restore(&sid("s"), &key("k")),
            Restore::Nothing
        ));
    }

    #[test]
    fn a_paid_order_answers_its_receipt_and_is_never_restored() {
        let carts = MemoryCarts::new(Duration::from_secs(60));
        carts.set(&sid("s"), &pid("a"), qty(1)).unwrap();
        carts.claim(&sid("s"), &key("k"), &OrderId::random());
        carts.complete(&sid("s"), &key("k"), "{\"paid\":1}");
        assert!(matches!(
            carts.claim(&sid("s"), &key("k"), &OrderId::random()),
            Claim::Paid { ref receipt } if receipt == "{\"paid\":1}"
        ));
        assert!(matches!(carts.restore(&sid("s"), &key("k")), Restore::Paid));
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
        let page = catalog.search("TEA", 2, Count::UpToCap);
        assert_eq!(page.results.len(), 2);
        assert!(page.total > 2);
        assert_eq!(page.relation, Relation::Eq);
        assert_eq!(catalog.search("100%", 10, Count::UpToCap).total, 0);
        assert_eq!(catalog.documents(&[pid("f95e2475"), pid("nope")]).len(), 1);
    }

    #[test]
    fn catalog_search_counts_up_to_the_cap_except_for_the_empty_query() {
        let many = |n: usize, name: &str| -> Vec<Product> {
            let template = parse_csv(BUILTIN_CSV).unwrap().remove(0);
            (0..n)
                .map(|i| Product {
                    id: format!("p{i:05}"),
                    name: format!("{name} {i}"),
                    ..template.clone()
                })
                .collect()
        };
        let at_cap = MemoryCatalog::new(many(SEARCH_COUNT_CAP, "Zzyzx"));
        let past_cap = MemoryCatalog::new(many(SEARCH_COUNT_CAP + 1, "Zzyzx"));

        let exact = at_cap.search("zzyzx", 6, Count::UpToCap);
        let capped = past_cap.search("ZZYZX", 6, Count::UpToCap);
        let everything = past_cap.search("", 6, Count::UpToCap);
        let suggested = past_cap.search("zZyZx", 6, Count::PastPage);
        let empty_suggestion = past_cap.search("", 6, Count::PastPage);

        assert_eq!(
            (exact.total, exact.relation, exact.results.len()),
            (SEARCH_COUNT_CAP, Relation::Eq, 6)
        );
        assert_eq!(
            (capped.total, capped.relation, capped.results.len()),
            (SEARCH_COUNT_CAP, Relation::Gte, 6)
        );
        assert_eq!(
            (everything.total, everything.relation),
            (SEARCH_COUNT_CAP + 1, Relation::Eq)
        );
        assert_eq!(capped.results, everything.results, "best rated first");
        assert_eq!(
            (suggested.total, suggested.relation, &suggested.results),
            (6, Relation::Gte, &capped.results),
            "suggestions count past their page only"
        );
        assert_eq!(empty_suggestion.total, SEARCH_COUNT_CAP + 1);
    }
}
