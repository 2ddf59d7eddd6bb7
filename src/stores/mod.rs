//! The shop's stores (cart-data, session-data, product-data) behind one type each, with
//! the backends a URL selects.

/// A deadpool pool's status as `PoolUsage` (the Redis and PostgreSQL pools come from two
/// deadpool versions, with alike but distinct status types).
macro_rules! pool_usage {
    ($status:expr) => {{
        let status = $status;
        $crate::stores::PoolUsage {
            open: status.size,
            in_use: status.size.saturating_sub(status.available),
            max: status.max_size,
            waiting: status.waiting,
        }
    }};
}

pub mod memory;
pub mod postgres;
pub mod redis;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{BoxStream, StreamExt};

use crate::catalog::Product;
use crate::domain::{AttemptKey, OrderId, ProductId, Quantity, SessionId};
use crate::telemetry::span::{Call, Outcome, Peer};
use crate::tls::Trust;

/// The most lines one cart may hold, so traffic generators cannot grow a store unbounded.
pub const MAX_CART_LINES: usize = 100;

/// How long an order record (the lines a checkout attempt claimed, then its receipt) is
/// kept: a repeat of the attempt within this time answers the same order.
pub const ORDER_TTL: Duration = Duration::from_secs(24 * 3600);

/// A claim whose checkout has not finished after this long is abandoned (its process
/// died): a repeat of the attempt takes it over. Far beyond any checkout's own time
/// limits, so a live checkout is never taken over.
pub const CLAIM_STALE: Duration = Duration::from_secs(120);

/// A cart's lines: product id to quantity, in id order.
pub type Cart = BTreeMap<String, u16>;

/// What claiming a cart for a checkout attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The lines are this attempt's to charge (moved out of the cart in one step).
    Claimed { order_id: String, lines: Cart },
    /// Another request of the same attempt holds them and has not finished.
    Pending { order_id: String },
    /// The attempt was paid: its receipt, to answer again.
    Paid { receipt: String },
    /// No order for this attempt, and nothing in the cart.
    Empty,
}

/// What giving a claim back found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    /// The lines are back in the cart (a line the shopper set meanwhile is kept as set).
    Restored,
    /// The order was paid; nothing moves.
    Paid,
    /// No such order.
    Nothing,
}

/// Why a store operation did not happen. The text is what a client is told; the cause
/// under it goes to the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or answered with an error; the role answers 503.
    #[error("{store} is unavailable")]
    Unavailable {
        store: &'static str,
        #[source]
        cause: Failure,
    },
    /// Only reads can be served (the primary is down, a replica answers).
    #[error("{store} is read-only: the primary is unreachable; reads are served by the replica, changes are refused")]
    ReadOnly {
        store: &'static str,
        #[source]
        cause: Failure,
    },
    #[error("A cart holds at most {MAX_CART_LINES} lines")]
    CartFull,
}

/// What went wrong between a role and a store server, as its client library said.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("no connection")]
    RedisPool(#[source] redis::PoolError),
    #[error("redis")]
    Redis(#[source] ::redis::RedisError),
    #[error("no connection")]
    PostgresPool(#[source] deadpool_postgres::PoolError),
    #[error("postgres")]
    Postgres(#[source] tokio_postgres::Error),
    /// The schema is missing or older than this version: `ecommerce migrate` has not run
    /// against this database.
    #[error("the products table does not exist or is out of date: run `ecommerce migrate`")]
    NotMigrated(#[source] tokio_postgres::Error),
    /// A stored value the shop would never have written.
    #[error("a stored value is invalid")]
    Corrupt(#[source] crate::domain::Invalid),
    #[error("timed out")]
    TimedOut,
    /// The primary failed, and then its replica too.
    #[error("primary: {}; replica", crate::telemetry::logfmt::chain(.primary))]
    BothSides {
        primary: Box<Failure>,
        #[source]
        replica: Box<Failure>,
    },
}

impl From<redis::PoolError> for Failure {
    fn from(e: redis::PoolError) -> Self {
        Failure::RedisPool(e)
    }
}

impl From<::redis::RedisError> for Failure {
    fn from(e: ::redis::RedisError) -> Self {
        Failure::Redis(e)
    }
}

impl From<deadpool_postgres::PoolError> for Failure {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Failure::PostgresPool(e)
    }
}

/// Where a store lives, parsed from its option: `memory`, `redis://...` (`rediss://...`
/// over TLS) or `postgres://...` (TLS as its `sslmode` says).
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
///
/// Each operation takes `extra` longer than it would (the cart-data-latency fault;
/// `Duration::ZERO` for none): waited before its command, within its span and timeout.
#[derive(Clone)]
pub enum CartStore {
    Memory(Arc<memory::MemoryCarts>),
    Redis(redis::RedisCarts),
}

impl CartStore {
    pub fn memory(ttl: Duration) -> Self {
        CartStore::Memory(Arc::new(memory::MemoryCarts::new(ttl)))
    }

    /// The store that `url` (and `replica`) name, reached over TLS as `trust` says.
    pub fn connect(
        url: &StoreUrl,
        replica: Option<&StoreUrl>,
        ttl: Duration,
        trust: &Trust,
    ) -> Result<Self, String> {
        Ok(match redis_pair("cart-data", url, replica, trust)? {
            Some(pair) => CartStore::Redis(redis::RedisCarts::new(pair, ttl)),
            None => CartStore::memory(ttl),
        })
    }

    /// This store for another worker thread: the memory store is shared, a Redis store
    /// gets pools of its own.
    pub fn for_worker(&self) -> Self {
        match self {
            CartStore::Memory(m) => CartStore::Memory(m.clone()),
            CartStore::Redis(r) => CartStore::Redis(r.for_worker()),
        }
    }

    pub async fn lines(&self, sid: &SessionId, extra: Duration) -> Result<Cart, StoreError> {
        match self {
            CartStore::Memory(m) => CART_DATA.run("HGETALL", extra, || Ok(m.lines(sid))).await,
            CartStore::Redis(r) => r.lines(sid, extra).await,
        }
    }

    /// Sets one line (quantity 0 removes it) and returns the cart as it now is.
    pub async fn set(
        &self,
        sid: &SessionId,
        id: &ProductId,
        quantity: Quantity,
        extra: Duration,
    ) -> Result<Cart, StoreError> {
        match self {
            CartStore::Memory(m) => {
                CART_DATA
                    .run("EVALSHA", extra, || m.set(sid, id, quantity))
                    .await
            }
            CartStore::Redis(r) => r.set(sid, id, quantity, extra).await,
        }
    }

    pub async fn remove(
        &self,
        sid: &SessionId,
        id: &ProductId,
        extra: Duration,
    ) -> Result<Cart, StoreError> {
        self.set(sid, id, Quantity::new(0).expect("0 is a quantity"), extra)
            .await
    }

    pub async fn clear(&self, sid: &SessionId, extra: Duration) -> Result<(), StoreError> {
        match self {
            CartStore::Memory(m) => {
                CART_DATA
                    .run("DEL", extra, || {
                        m.clear(sid);
                        Ok(())
                    })
                    .await
            }
            CartStore::Redis(r) => r.clear(sid, extra).await,
        }
    }

    /// Claims the cart for checkout attempt `key` in one atomic step: its lines move to
    /// the attempt's order record (numbered `order_id`, kept for [`ORDER_TTL`]), so that
    /// a concurrent or repeated checkout finds nothing left to pay, or the attempt's own
    /// record. Lines added afterwards stay in the cart for a later order.
    pub async fn claim(
        &self,
        sid: &SessionId,
        key: &AttemptKey,
        order_id: &OrderId,
        extra: Duration,
    ) -> Result<Claim, StoreError> {
        match self {
            CartStore::Memory(m) => {
                CART_DATA
                    .run("EVALSHA", extra, || Ok(m.claim(sid, key, order_id)))
                    .await
            }
            CartStore::Redis(r) => r.claim(sid, key, order_id, extra).await,
        }
    }

    /// Gives the lines of an unpaid claim back to the cart and forgets the claim, so that
    /// the attempt may be tried again.
    pub async fn restore(
        &self,
        sid: &SessionId,
        key: &AttemptKey,
        extra: Duration,
    ) -> Result<Restore, StoreError> {
        match self {
            CartStore::Memory(m) => {
                CART_DATA
                    .run("EVALSHA", extra, || Ok(m.restore(sid, key)))
                    .await
            }
            CartStore::Redis(r) => r.restore(sid, key, extra).await,
        }
    }

    /// Records that attempt `key` was paid, with the receipt its repeats answer.
    pub async fn complete(
        &self,
        sid: &SessionId,
        key: &AttemptKey,
        receipt: &str,
        extra: Duration,
    ) -> Result<(), StoreError> {
        match self {
            CartStore::Memory(m) => {
                CART_DATA
                    .run("HSET", extra, || {
                        m.complete(sid, key, receipt);
                        Ok(())
                    })
                    .await
            }
            CartStore::Redis(r) => r.complete(sid, key, receipt, extra).await,
        }
    }

    pub async fn health(&self) -> Result<Health, StoreError> {
        match self {
            CartStore::Memory(_) => Ok(Health::Up),
            CartStore::Redis(r) => r.pair().health().await,
        }
    }

    /// Writes acknowledged while the replica was down.
    pub fn unreplicated_writes(&self) -> u64 {
        match self {
            CartStore::Memory(_) => 0,
            CartStore::Redis(r) => r.pair().unreplicated_writes(),
        }
    }

    /// Connection pool usage by server (`primary`, `replica`); none in memory.
    pub fn pool_usage(&self) -> Vec<(&'static str, PoolUsage)> {
        match self {
            CartStore::Memory(_) => Vec::new(),
            CartStore::Redis(r) => r.pair().pool_usage(),
        }
    }
}

/// session-data: one key per session with a sliding TTL.
#[derive(Clone)]
pub enum SessionStore {
    Memory(Arc<memory::MemorySessions>),
    Redis(redis::RedisSessions),
}

impl SessionStore {
    pub fn memory(ttl: Duration) -> Self {
        SessionStore::Memory(Arc::new(memory::MemorySessions::new(ttl)))
    }

    /// The store that `url` (and `replica`) name, reached over TLS as `trust` says.
    pub fn connect(
        url: &StoreUrl,
        replica: Option<&StoreUrl>,
        ttl: Duration,
        trust: &Trust,
    ) -> Result<Self, String> {
        Ok(match redis_pair("session-data", url, replica, trust)? {
            Some(pair) => SessionStore::Redis(redis::RedisSessions::new(pair, ttl)),
            None => SessionStore::memory(ttl),
        })
    }

    pub fn for_worker(&self) -> Self {
        match self {
            SessionStore::Memory(m) => SessionStore::Memory(m.clone()),
            SessionStore::Redis(r) => SessionStore::Redis(r.for_worker()),
        }
    }

    pub fn unreplicated_writes(&self) -> u64 {
        match self {
            SessionStore::Memory(_) => 0,
            SessionStore::Redis(r) => r.pair().unreplicated_writes(),
        }
    }

    pub fn pool_usage(&self) -> Vec<(&'static str, PoolUsage)> {
        match self {
            SessionStore::Memory(_) => Vec::new(),
            SessionStore::Redis(r) => r.pair().pool_usage(),
        }
    }

    /// Extends a live session; false when it does not exist (or has expired).
    pub async fn touch(&self, sid: &SessionId) -> Result<bool, StoreError> {
        match self {
            SessionStore::Memory(m) => Ok(m.touch(sid)),
            SessionStore::Redis(r) => r.touch(sid).await,
        }
    }

    pub async fn create(&self, sid: &SessionId) -> Result<(), StoreError> {
        match self {
            SessionStore::Memory(m) => {
                m.create(sid);
                Ok(())
            }
            SessionStore::Redis(r) => r.create(sid).await,
        }
    }

    pub async fn health(&self) -> Result<Health, StoreError> {
        match self {
            SessionStore::Memory(_) => Ok(Health::Up),
            SessionStore::Redis(r) => r.pair().health().await,
        }
    }
}

/// product-data: the catalog.
///
/// Each query takes `extra` longer than it would (the product-data-slow fault;
/// `Duration::ZERO` for none): on PostgreSQL waited in the database, on the connection
/// that then runs the query, within its span and timeout.
#[derive(Clone)]
pub enum ProductStore {
    Memory(Arc<memory::MemoryCatalog>),
    Postgres(postgres::PostgresCatalog),
}

/// A search counts its matches exactly up to this many and stops there, so that its cost
/// does not grow with the catalog: a page then says "at least this many"
/// ([`Relation::Gte`]). The empty query's total is the catalog's size, known without
/// counting, and always exact.
///
/// Counting reads rows until one more than the cap matched: for a term in a quarter of the
/// catalog 400 rows at 100, 4,000 at 1,000, which made a common search 3.7x slower (770
/// against 2,800 searches a second at 1,000,000 products, BENCHMARKS.md). At 100 it is
/// still a full page of the largest size.
pub const SEARCH_COUNT_CAP: usize = 100;

/// How far a search counts its matches: up to [`SEARCH_COUNT_CAP`] (`/search`), or only
/// whether there are more than its page shows (`/suggestions`: a list under a search box
/// shows no count, and one statement then reads the page and the row past it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    UpToCap,
    PastPage,
}

impl Count {
    /// The largest total a page of `limit` results reports exactly.
    pub fn cap(self, limit: usize) -> usize {
        match self {
            Count::UpToCap => SEARCH_COUNT_CAP,
            Count::PastPage => limit,
        }
    }
}

/// How a search's `total` relates to the number of matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// `total` is every match.
    Eq,
    /// Counting stopped at its cap (see [`Count`]): there are more matches than `total`.
    Gte,
}

impl Relation {
    /// The spelling of `meta.page.total_results_relation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Eq => "eq",
            Relation::Gte => "gte",
        }
    }
}

/// One page of search results and how many matched in all (see [`Relation`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub total: usize,
    pub relation: Relation,
    pub results: Vec<Product>,
}

impl SearchPage {
    /// A page whose matches were counted up to one past `cap`: `counted` past the cap is
    /// reported as the cap, at least.
    pub fn capped(counted: usize, cap: usize, results: Vec<Product>) -> SearchPage {
        let (total, relation) = if counted > cap {
            (cap, Relation::Gte)
        } else {
            (counted, Relation::Eq)
        };
        SearchPage {
            total,
            relation,
            results,
        }
    }

    /// A page of a search whose total is known exactly, however large.
    pub fn exact(total: usize, results: Vec<Product>) -> SearchPage {
        SearchPage {
            total,
            relation: Relation::Eq,
            results,
        }
    }
}

/// The whole catalog as a store reads it: batches of products, best rated first; a
/// failure part-way is the last item.
pub type Batches = BoxStream<'static, Result<Vec<Product>, StoreError>>;

impl ProductStore {
    pub fn memory(products: Vec<Product>) -> Self {
        ProductStore::Memory(Arc::new(memory::MemoryCatalog::new(products)))
    }

    /// The store that `url` names; `memory` is the catalog built into the binary. TLS
    /// (the URL's `sslmode`) trusts as `trust` says.
    pub fn connect(url: &StoreUrl, trust: &Trust) -> Result<Self, String> {
        match url {
            StoreUrl::Memory => {
                let products = crate::catalog::parse_csv(crate::catalog::BUILTIN_CSV)
                    .map_err(|e| e.to_string())?;
                Ok(ProductStore::memory(products))
            }
            StoreUrl::Postgres(url) => Ok(ProductStore::Postgres(postgres::PostgresCatalog::new(
                url, trust,
            )?)),
            StoreUrl::Redis(_) => {
                Err("product-data is kept in PostgreSQL (postgres://...) or memory".into())
            }
        }
    }

    pub fn for_worker(&self) -> Self {
        match self {
            ProductStore::Memory(m) => ProductStore::Memory(m.clone()),
            ProductStore::Postgres(p) => ProductStore::Postgres(p.for_worker()),
        }
    }

    pub fn pool_usage(&self) -> Vec<(&'static str, PoolUsage)> {
        match self {
            ProductStore::Memory(_) => Vec::new(),
            ProductStore::Postgres(p) => vec![("primary", p.pool_usage())],
        }
    }

    /// Every product, best rated first, in batches as the store reads them: what is held
    /// at once does not grow with the catalog (see [`postgres::PostgresCatalog::catalog`]).
    pub async fn catalog(&self, extra: Duration) -> Result<Batches, StoreError> {
        match self {
            ProductStore::Memory(m) => {
                let all = PRODUCT_DATA
                    .run("SELECT", extra, || Ok(m.documents(&[])))
                    .await?;
                Ok(futures_util::stream::once(std::future::ready(Ok(all))).boxed())
            }
            ProductStore::Postgres(p) => p.catalog(extra).await,
        }
    }

    /// The products with these ids (all products when `ids` is empty), best rated first.
    pub async fn documents(
        &self,
        ids: &[ProductId],
        extra: Duration,
    ) -> Result<Vec<Product>, StoreError> {
        match self {
            ProductStore::Memory(m) => {
                PRODUCT_DATA
                    .run("SELECT", extra, || Ok(m.documents(ids)))
                    .await
            }
            ProductStore::Postgres(p) => p.documents(ids, extra).await,
        }
    }

    /// Products whose name or description contains `query` (any case), best rated first:
    /// the first `limit`, and their number counted as `count` says (the empty query: the
    /// catalog's size).
    pub async fn search(
        &self,
        query: &str,
        limit: usize,
        count: Count,
        extra: Duration,
    ) -> Result<SearchPage, StoreError> {
        match self {
            ProductStore::Memory(m) => {
                PRODUCT_DATA
                    .run("SELECT", extra, || Ok(m.search(query, limit, count)))
                    .await
            }
            ProductStore::Postgres(p) => p.search(query, limit, count, extra).await,
        }
    }

    pub async fn get(
        &self,
        id: &ProductId,
        extra: Duration,
    ) -> Result<Option<Product>, StoreError> {
        match self {
            ProductStore::Memory(m) => PRODUCT_DATA.run("SELECT", extra, || Ok(m.get(id))).await,
            ProductStore::Postgres(p) => p.get(id, extra).await,
        }
    }

    pub async fn health(&self) -> Result<Health, StoreError> {
        match self {
            ProductStore::Memory(_) => Ok(Health::Up),
            ProductStore::Postgres(p) => p.health().await,
        }
    }
}

/// The host and port of a store server, from its URL (for spans; never the password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: Option<u16>,
}

impl Server {
    /// `scheme://[user[:password]@]host[:port][/...]`; the first host of a list.
    pub fn of(url: &str) -> Server {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let first = hosts.split(',').next().unwrap_or_default();
        let (host, port) = match first.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, port.parse().ok()),
            _ => (first, None),
        };
        Server {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
        }
    }
}

/// Connections of a store's pools: open ones, those lent out, the most allowed, and
/// callers waiting for one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub open: usize,
    pub in_use: usize,
    pub max: usize,
    pub waiting: usize,
}

impl std::iter::Sum for PoolUsage {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(PoolUsage::default(), |a, b| PoolUsage {
            open: a.open + b.open,
            in_use: a.in_use + b.in_use,
            max: a.max + b.max,
            waiting: a.waiting + b.waiting,
        })
    }
}

/// Starts the span of one store operation on `server`.
fn store_call(
    peer: Peer,
    operation: &'static str,
    store: &'static str,
    server: Option<&Server>,
    side: &'static str,
) -> Call {
    let mut call = Call::start(peer, operation, || format!("{operation} {store}").into());
    call.attribute("db.namespace", || store.into());
    call.attribute("ecommerce.store.side", || side.into());
    if let Some(server) = server {
        call.attribute("server.address", || server.host.clone().into());
        if let Some(port) = server.port {
            call.attribute("server.port", || i64::from(port).into());
        }
    }
    call
}

/// The server an embedded store stands in for, as its operations' spans name it.
struct StandIn {
    peer: Peer,
    /// The span's `db.namespace`, as the server's spans have it.
    namespace: &'static str,
    store: &'static str,
    /// The server's client gives up on an operation after this long.
    timeout: Duration,
}

const CART_DATA: StandIn = StandIn {
    peer: Peer::Redis,
    namespace: "cart-data",
    store: "cart-data",
    timeout: redis::OP_TIMEOUT,
};

const PRODUCT_DATA: StandIn = StandIn {
    peer: Peer::Postgres,
    namespace: "products",
    store: "product-data",
    timeout: postgres::OP_TIMEOUT,
};

impl StandIn {
    /// Runs `op` on the embedded store `extra` later. A fault that slows the store shows
    /// and fails as it would on the server: a client span and metric of `operation` while
    /// slowed, and a timeout once `extra` reaches the server's operation timeout.
    async fn run<T>(
        &self,
        operation: &'static str,
        extra: Duration,
        op: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if extra.is_zero() {
            return op();
        }
        let call = store_call(self.peer, operation, self.namespace, None, "memory");
        let result = if extra < self.timeout {
            tokio::time::sleep(extra).await;
            op()
        } else {
            tokio::time::sleep(self.timeout).await;
            Err(StoreError::Unavailable {
                store: self.store,
                cause: Failure::TimedOut,
            })
        };
        finish_store_call(call, &result);
        result
    }
}

/// Ends a store operation's span with its result.
fn finish_store_call<T, E: std::error::Error + 'static>(call: Call, result: &Result<T, E>) {
    match result {
        Ok(_) => call.finish(Outcome::Ok),
        Err(e) => call.finish(Outcome::Failed(
            "store",
            &crate::telemetry::logfmt::chain(e),
        )),
    }
}

/// The Redis primary and replica a Redis store's URLs name; `None` for `memory`.
fn redis_pair(
    store: &'static str,
    url: &StoreUrl,
    replica: Option<&StoreUrl>,
    trust: &Trust,
) -> Result<Option<redis::RedisPair>, String> {
    match url {
        StoreUrl::Memory => Ok(None),
        StoreUrl::Redis(primary) => {
            redis::RedisPair::new(store, primary, redis_replica(replica)?, trust.redis()).map(Some)
        }
        StoreUrl::Postgres(_) => Err(format!("{store} is kept in Redis (redis://...) or memory")),
    }
}

/// A replica's Redis URL; only Redis stores have replicas.
fn redis_replica(replica: Option<&StoreUrl>) -> Result<Option<&str>, String> {
    match replica {
        None => Ok(None),
        Some(StoreUrl::Redis(url)) => Ok(Some(url)),
        Some(_) => Err("a replica is a redis://... or rediss://... URL".into()),
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
    fn servers_come_from_urls_without_credentials() {
        let server = Server::of("redis://:pw@cart-data:6380/0");
        assert_eq!(
            server,
            Server {
                host: "cart-data".into(),
                port: Some(6380)
            }
        );
        let server = Server::of("postgres://u:p@[::1]/products?sslmode=disable");
        assert_eq!(
            server,
            Server {
                host: "::1".into(),
                port: None
            }
        );
    }

    #[actix_web::test]
    async fn a_slowed_embedded_store_answers_later_and_gives_up_like_its_server() {
        let products = ProductStore::connect(&StoreUrl::Memory, &Trust::system().unwrap()).unwrap();
        let id = ProductId::parse("f95e2475").unwrap();
        let started = std::time::Instant::now();

        let found = products.get(&id, Duration::from_millis(50)).await.unwrap();
        let took = started.elapsed();
        let impatient = StandIn {
            timeout: Duration::from_millis(20),
            ..CART_DATA
        };
        let gave_up = impatient
            .run("DEL", Duration::from_secs(60), || Ok(()))
            .await;

        assert_eq!(found.map(|p| p.id), Some(id.to_string()));
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(matches!(
            gave_up,
            Err(StoreError::Unavailable {
                store: "cart-data",
                cause: Failure::TimedOut
            })
        ));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_count_past_the_cap_is_the_cap_at_least() {
        let page = |counted, count: Count| {
            let page = SearchPage::capped(counted, count.cap(6), Vec::new());
            (page.total, page.relation.as_str())
        };

        assert_eq!(page(0, Count::UpToCap), (0, "eq"));
        let cap = SEARCH_COUNT_CAP;
        assert_eq!(page(cap, Count::UpToCap), (cap, "eq"));
        assert_eq!(page(cap + 1, Count::UpToCap), (cap, "gte"));
        assert_eq!(page(6, Count::PastPage), (6, "eq"));
        assert_eq!(page(7, Count::PastPage), (6, "gte"));
        let whole = SearchPage::exact(5 * SEARCH_COUNT_CAP, Vec::new());
        assert_eq!(whole.relation, Relation::Eq);
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(redact("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }
}
