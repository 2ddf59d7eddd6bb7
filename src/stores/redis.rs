//! cart-data and session-data on Redis: pooled connections, atomic cart updates, reads
//! from the replica while the primary is down, and writes acknowledged only once the
//! replica has them (while it is connected).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use redis::aio::MultiplexedConnection;
use redis::{self, AsyncCommands, Script};

use super::{
    finish_store_call, redact, store_call, Cart, Claim, Failure, Health, PoolUsage, Restore,
    Server, StoreError, CLAIM_STALE, MAX_CART_LINES, ORDER_TTL,
};
use crate::domain::{AttemptKey, OrderId, ProductId, Quantity, SessionId};
use crate::telemetry::logfmt;
use crate::telemetry::span::Peer;
use crate::tls::{RedisConnectError, RedisServer};

/// How long one store operation may take in all (pool wait, connect, command).
pub(super) const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a write waits for the replica to confirm it.
const WAIT_REPLICA_MS: u64 = 250;
/// While the replica is known to be down, how often a write checks whether it is back.
const REPLICA_RECHECK: Duration = Duration::from_secs(1);
const POOL_SIZE: usize = 16;

/// Which server of a pair serves a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Primary,
    Replica,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Primary => "primary",
            Side::Replica => "replica",
        }
    }
}

/// A primary and an optional replica of one store, with what is known about their health.
#[derive(Clone)]
pub struct RedisPair {
    store: &'static str,
    primary: Pool,
    replica: Option<Pool>,
    /// Where the primary and replica are, parsed once, and how TLS to them is trusted.
    targets: Arc<(RedisServer, Option<RedisServer>)>,
    tls: Arc<rustls::ClientConfig>,
    /// Host and port of each, for spans.
    servers: Arc<(Server, Option<Server>)>,
    state: Arc<PairState>,
}

/// Health known to every worker's pools of one store.
#[derive(Default)]
struct PairState {
    primary_down: AtomicBool,
    replica_down: AtomicBool,
    /// When the replica was last found missing, so writes retry WAIT only now and then.
    replica_checked: Mutex<Option<Instant>>,
    unreplicated_writes: AtomicU64,
    /// Every worker's pools, for usage metrics.
    pools: Mutex<Vec<(Side, Pool)>>,
}

/// Makes and recycles the connections of a pool as deadpool-redis's manager does, to
/// `redis://` or (over the process's one TLS configuration) `rediss://` servers.
struct Connector {
    server: RedisServer,
    tls: Arc<rustls::ClientConfig>,
    ping_number: std::sync::atomic::AtomicUsize,
}

impl managed::Manager for Connector {
    type Type = MultiplexedConnection;
    type Error = RedisConnectError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisConnectError> {
        // The pool's create timeout bounds it.
        self.server.connect(&self.tls, None, None).await
    }

    async fn recycle(
        &self,
        conn: &mut MultiplexedConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisConnectError> {
        let ping_number = self.ping_number.fetch_add(1, Ordering::Relaxed).to_string();
        let (n,) = redis::Pipeline::with_capacity(2)
            .cmd("UNWATCH")
            .ignore()
            .cmd("PING")
            .arg(&ping_number)
            .query_async::<(String,)>(conn)
            .await
            .map_err(|e| RecycleError::Backend(e.into()))?;
        if n == ping_number {
            Ok(())
        } else {
            Err(RecycleError::message("Invalid PING response"))
        }
    }
}

type Pool = managed::Pool<Connector>;
/// A pooled connection.
type Connection = managed::Object<Connector>;
/// Why no pooled connection could be had.
pub type PoolError = managed::PoolError<RedisConnectError>;

fn pool(server: &RedisServer, tls: &Arc<rustls::ClientConfig>) -> Pool {
    let connector = Connector {
        server: server.clone(),
        tls: tls.clone(),
        ping_number: Default::default(),
    };
    Pool::builder(connector)
        .max_size(POOL_SIZE)
        .wait_timeout(Some(OP_TIMEOUT))
        .create_timeout(Some(OP_TIMEOUT))
        .recycle_timeout(Some(OP_TIMEOUT))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .expect("a runtime and timeouts are given")
}

/// Runs `op` within the operation timeout.
async fn bounded<T, E, F>(op: F) -> Result<T, E>
where
    E: From<Failure>,
    F: Future<Output = Result<T, E>>,
{
    tokio::time::timeout(OP_TIMEOUT, op)
        .await
        .unwrap_or_else(|_| Err(Failure::TimedOut.into()))
}

async fn run<T: redis::FromRedisValue>(pool: &Pool, cmd: &redis::Cmd) -> Result<T, Failure> {
    bounded(async {
        let mut conn = pool.get().await?;
        Ok(cmd.query_async(&mut *conn).await?)
    })
    .await
}

/// The error code the cart scripts answer when a new line would pass the line limit.
const CART_FULL_CODE: &str = "CARTFULL";

/// Why a write did not happen: the store's own refusal, or a failure.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("the cart is full")]
    CartFull,
    #[error(transparent)]
    Failed(#[from] Failure),
}

impl From<redis::RedisError> for WriteError {
    fn from(e: redis::RedisError) -> Self {
        if e.code() == Some(CART_FULL_CODE) {
            WriteError::CartFull
        } else {
            WriteError::Failed(Failure::Redis(e))
        }
    }
}

impl From<PoolError> for WriteError {
    fn from(e: PoolError) -> Self {
        WriteError::Failed(Failure::RedisPool(e))
    }
}

impl RedisPair {
    /// Pools for the primary and replica URLs (no connection is made until first use);
    /// `rediss://` ones trust servers as `tls` says.
    pub fn new(
        store: &'static str,
        primary: &str,
        replica: Option<&str>,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Self, String> {
        let parse =
            |url: &str| RedisServer::parse(url).map_err(|e| format!("'{}': {e}", redact(url)));
        let targets = (parse(primary)?, replica.map(parse).transpose()?);
        Ok(RedisPair {
            store,
            primary: pool(&targets.0, &tls),
            replica: targets.1.as_ref().map(|r| pool(r, &tls)),
            targets: Arc::new(targets),
            tls,
            servers: Arc::new((Server::of(primary), replica.map(Server::of))),
            state: Arc::default(),
        })
    }

    /// Connections of every worker's pools, by side.
    pub fn pool_usage(&self) -> Vec<(&'static str, PoolUsage)> {
        let pools = self.state.pools.lock().unwrap_or_else(|e| e.into_inner());
        [Side::Primary, Side::Replica]
            .into_iter()
            .filter(|side| *side == Side::Primary || self.replica.is_some())
            .map(|side| {
                let usage = pools
                    .iter()
                    .filter(|(s, _)| *s == side)
                    .map(|(_, pool)| pool_usage!(pool.status()))
                    .sum();
                (side.as_str(), usage)
            })
            .collect()
    }

    /// One attempt of `operation` on `side`, within the operation timeout, as a span;
    /// `extra` later (the cart-data-latency fault), as if the server were that slow.
    async fn attempt<T, E>(
        &self,
        operation: &'static str,
        side: Side,
        extra: Duration,
        op: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E>
    where
        E: From<Failure> + std::error::Error + 'static,
    {
        let server = match side {
            Side::Primary => Some(&self.servers.0),
            Side::Replica => self.servers.1.as_ref(),
        };
        let call = store_call(Peer::Redis, operation, self.store, server, side.as_str());
        let result = bounded(async {
            if !extra.is_zero() {
                tokio::time::sleep(extra).await;
            }
            op.await
        })
        .await;
        finish_store_call(call, &result);
        result
    }

    /// The same store with pools of its own, for another worker thread (connections
    /// belong to the runtime that made them), sharing what is known about health.
    pub fn for_worker(&self) -> Self {
        let pair = RedisPair {
            primary: pool(&self.targets.0, &self.tls),
            replica: self.targets.1.as_ref().map(|r| pool(r, &self.tls)),
            ..self.clone()
        };
        let mut pools = self.state.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools.push((Side::Primary, pair.primary.clone()));
        pools.extend(pair.replica.clone().map(|p| (Side::Replica, p)));
        drop(pools);
        pair
    }

    fn unavailable(&self, cause: Failure) -> StoreError {
        StoreError::Unavailable {
            store: self.store,
            cause,
        }
    }

    /// Notes whether the primary answered (`error` is why not), logging each change.
    fn note_primary(&self, error: Option<&Failure>) {
        let up = error.is_none();
        let was_down = self.state.primary_down.swap(!up, Ordering::Relaxed);
        match (was_down, error) {
            (false, Some(error)) => log::error!(
                "msg=\"store primary unreachable\" store={} error={}",
                self.store,
                logfmt::value(&logfmt::chain(error))
            ),
            (true, None) => log::warn!("msg=\"store primary is back\" store={}", self.store),
            _ => {}
        }
    }

    /// A read: from the primary, or from the replica while the primary fails. `op` is
    /// told which (a replica refuses the writes a read may piggyback, like a TTL).
    async fn read<T, F, Fut>(
        &self,
        operation: &'static str,
        extra: Duration,
        op: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(Pool, Side) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let primary = op(self.primary.clone(), Side::Primary);
        match self.attempt(operation, Side::Primary, extra, primary).await {
            Ok(value) => {
                self.note_primary(None);
                Ok(value)
            }
            Err(primary) => {
                self.note_primary(Some(&primary));
                let Some(replica) = &self.replica else {
                    return Err(self.unavailable(primary));
                };
                let replica_op = op(replica.clone(), Side::Replica);
                self.attempt(operation, Side::Replica, extra, replica_op)
                    .await
                    .map_err(|replica| {
                        self.unavailable(Failure::BothSides {
                            primary: Box::new(primary),
                            replica: Box::new(replica),
                        })
                    })
            }
        }
    }

    /// A write on the primary, then (while a replica is configured) WAIT for it.
    async fn write<T, F, Fut>(
        &self,
        operation: &'static str,
        extra: Duration,
        op: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = Result<(T, Connection), redis::RedisError>>,
    {
        let write = async {
            let conn = self.primary.get().await?;
            let (value, mut conn) = op(conn).await?;
            self.replicate(&mut conn).await;
            Ok::<_, WriteError>(value)
        };
        let result = self.attempt(operation, Side::Primary, extra, write).await;
        match result {
            Ok(value) => {
                // The primary answered (a refusal too).
                self.note_primary(None);
                Ok(value)
            }
            Err(WriteError::CartFull) => {
                self.note_primary(None);
                Err(StoreError::CartFull)
            }
            Err(WriteError::Failed(cause)) => {
                self.note_primary(Some(&cause));
                if self.replica.is_some() {
                    Err(StoreError::ReadOnly {
                        store: self.store,
                        cause,
                    })
                } else {
                    Err(self.unavailable(cause))
                }
            }
        }
    }

    /// Waits until the replica has this connection's writes. While the replica is down,
    /// writes go on with the primary alone: counted, and logged once per outage.
    async fn replicate(&self, conn: &mut Connection) {
        if self.replica.is_none() {
            return;
        }
        if self.state.replica_down.load(Ordering::Relaxed) {
            let mut checked = self
                .state
                .replica_checked
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if checked.is_some_and(|at| at.elapsed() < REPLICA_RECHECK) {
                self.state
                    .unreplicated_writes
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
            *checked = Some(Instant::now());
        }
        let acked: Result<i64, _> = redis::cmd("WAIT")
            .arg(1)
            .arg(WAIT_REPLICA_MS)
            .query_async(&mut **conn)
            .await;
        if matches!(acked, Ok(n) if n >= 1) {
            if self.state.replica_down.swap(false, Ordering::Relaxed) {
                log::warn!(
                    "msg=\"store replica is back: writes are replicated again\" store={}",
                    self.store
                );
            }
        } else {
            self.state
                .unreplicated_writes
                .fetch_add(1, Ordering::Relaxed);
            if !self.state.replica_down.swap(true, Ordering::Relaxed) {
                *self
                    .state
                    .replica_checked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                log::warn!(
                    "msg=\"store replica did not confirm a write: acknowledging writes on the primary alone until it is back\" store={}",
                    self.store
                );
            }
        }
    }

    /// Writes acknowledged without the replica, since start.
    pub fn unreplicated_writes(&self) -> u64 {
        self.state.unreplicated_writes.load(Ordering::Relaxed)
    }

    pub async fn health(&self) -> Result<Health, StoreError> {
        let ping = redis::cmd("PING");
        let primary = run::<String>(&self.primary, &ping).await;
        let replica = match &self.replica {
            Some(pool) => Some(run::<String>(pool, &ping).await),
            None => None,
        };
        self.note_primary(primary.as_ref().err());
        match (primary, replica) {
            (Ok(_), None | Some(Ok(_))) => Ok(Health::Up),
            (Ok(_), Some(Err(e))) => Ok(Health::Degraded(format!(
                "replica unreachable ({}): writes are acknowledged by the primary alone",
                logfmt::chain(&e)
            ))),
            (Err(e), Some(Ok(_))) => Ok(Health::Degraded(format!(
                "primary unreachable ({}): reads from the replica, writes refused",
                logfmt::chain(&e)
            ))),
            (Err(e), None) => Err(self.unavailable(e)),
            (Err(primary), Some(Err(replica))) => Err(self.unavailable(Failure::BothSides {
                primary: Box::new(primary),
                replica: Box::new(replica),
            })),
        }
    }
}

/// Sets or removes one line within the line limit, refreshes the TTL, and returns the
/// cart, all in one atomic step.
const SET_LINE: &str = r#"
local key, field, quantity, ttl, max = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
if quantity == 0 then
  redis.call('HDEL', key, field)
else
  if redis.call('HEXISTS', key, field) == 0 and redis.call('HLEN', key) >= max then
    return redis.error_reply('CARTFULL the cart is full') -- CART_FULL_CODE
  end
  redis.call('HSET', key, field, quantity)
end
redis.call('EXPIRE', key, ttl)
return redis.call('HGETALL', key)
"#;

/// Moves a cart's lines into a checkout attempt's order record, in one step. The record
/// is a hash: `status` (pending | paid), `order_id`, `claimed_at` (unix seconds),
/// `receipt`, and `line:<product id>` = quantity. Answers a flat array: status, order id,
/// receipt, then the claimed lines as id, quantity pairs.
const CLAIM: &str = r#"
local cart, order = KEYS[1], KEYS[2]
local order_id, now, stale, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local status = redis.call('HGET', order, 'status')
if status == 'paid' then
  return {'paid', redis.call('HGET', order, 'order_id') or '', redis.call('HGET', order, 'receipt') or ''}
end
if status == 'pending' then
  local held_by = redis.call('HGET', order, 'order_id')
  if now - tonumber(redis.call('HGET', order, 'claimed_at')) < stale then
    return {'pending', held_by, ''}
  end
  redis.call('HSET', order, 'claimed_at', now)
  local taken = {'claimed', held_by, ''}
  local fields = redis.call('HGETALL', order)
  for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 5) == 'line:' then
      taken[#taken + 1] = string.sub(fields[i], 6)
      taken[#taken + 1] = fields[i + 1]
    end
  end
  return taken
end
local lines = redis.call('HGETALL', cart)
if #lines == 0 then
  return {'empty', '', ''}
end
local record = {'status', 'pending', 'order_id', order_id, 'claimed_at', now}
local claimed = {'claimed', order_id, ''}
for i = 1, #lines, 2 do
  record[#record + 1] = 'line:' .. lines[i]
  record[#record + 1] = lines[i + 1]
  claimed[#claimed + 1] = lines[i]
  claimed[#claimed + 1] = lines[i + 1]
end
redis.call('HSET', order, unpack(record))
redis.call('EXPIRE', order, ttl)
redis.call('DEL', cart)
return claimed
"#;

/// Gives a pending order's lines back to the cart (a line the shopper set meanwhile is
/// kept as set) and deletes the record; a paid order is never given back.
const RESTORE: &str = r#"
local cart, order = KEYS[1], KEYS[2]
local status = redis.call('HGET', order, 'status')
if status == 'paid' then
  return 'paid'
end
if not status then
  return 'nothing'
end
local fields = redis.call('HGETALL', order)
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 5) == 'line:' then
    redis.call('HSETNX', cart, string.sub(fields[i], 6), fields[i + 1])
  end
end
redis.call('EXPIRE', cart, ARGV[1])
redis.call('DEL', order)
return 'restored'
"#;

/// cart-data: hash `cart:<sid>` of product id to quantity, with a sliding TTL, and hash
/// `order:<sid>:<attempt>` per checkout attempt (see [`CLAIM`]).
#[derive(Clone)]
pub struct RedisCarts {
    pair: RedisPair,
    ttl_secs: u64,
    scripts: Arc<CartScripts>,
}

struct CartScripts {
    set_line: Script,
    claim: Script,
    restore: Script,
}

fn cart_key(sid: &SessionId) -> String {
    format!("cart:{sid}")
}

fn order_key(sid: &SessionId, key: &AttemptKey) -> String {
    format!("order:{sid}:{key}")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A claim's answer: status, order id, receipt, then id and quantity pairs.
fn parse_claim(reply: Vec<String>) -> Result<Claim, redis::RedisError> {
    let bad = || redis::RedisError::from((redis::ErrorKind::TypeError, "unexpected claim reply"));
    let mut fields = reply.into_iter();
    let (status, order_id, receipt) = match (fields.next(), fields.next(), fields.next()) {
        (Some(s), Some(o), Some(r)) => (s, o, r),
        _ => return Err(bad()),
    };
    Ok(match status.as_str() {
        "paid" => Claim::Paid { receipt },
        "pending" => Claim::Pending { order_id },
        "empty" => Claim::Empty,
        "claimed" => {
            let mut lines = Cart::new();
            while let (Some(id), Some(quantity)) = (fields.next(), fields.next()) {
                lines.insert(id, quantity.parse().map_err(|_| bad())?);
            }
            Claim::Claimed { order_id, lines }
        }
        _ => return Err(bad()),
    })
}

impl RedisCarts {
    pub fn new(pair: RedisPair, ttl: Duration) -> Self {
        RedisCarts {
            pair,
            ttl_secs: ttl.as_secs().max(1),
            scripts: Arc::new(CartScripts {
                set_line: Script::new(SET_LINE),
                claim: Script::new(CLAIM),
                restore: Script::new(RESTORE),
            }),
        }
    }

    pub async fn claim(
        &self,
        sid: &SessionId,
        key: &AttemptKey,
        order_id: &OrderId,
        extra: Duration,
    ) -> Result<Claim, StoreError> {
        let (cart, order) = (cart_key(sid), order_key(sid, key));
        let scripts = self.scripts.clone();
        let order_id = order_id.to_string();
        self.pair
            .write("EVALSHA", extra, |mut conn| async move {
                let reply: Vec<String> = scripts
                    .claim
                    .key(cart)
                    .key(order)
                    .arg(order_id)
                    .arg(unix_now())
                    .arg(CLAIM_STALE.as_secs())
                    .arg(ORDER_TTL.as_secs())
                    .invoke_async(&mut *conn)
                    .await?;
                Ok((parse_claim(reply)?, conn))
            })
            .await
    }

    pub async fn restore(
        &self,
        sid: &SessionId,
        key: &AttemptKey,
        extra: Duration,
    ) -> Result<Restore, StoreError> {
        let (cart, order) = (cart_key(sid), order_key(sid, key));
        let scripts = self.scripts.clone();
        let ttl = self.ttl_secs;
        self.pair
            .write("EVALSHA", extra, |mut conn| async move {
                let reply: String = scripts
                    .restore
                    .key(cart)
                    .key(order)
                    .arg(ttl)
                    .invoke_async(&mut *conn)
                    .await?;
                let restore = match reply.as_str() {
                    "restored" => Restore::Restored,
                    "paid" => Restore::Paid,
                    _ => Restore::Nothing,
                };
                Ok((restore, conn))
            })
            .await
    }

    pub async fn complete(
        &self,
        sid: &SessionId,
        key: &AttemptKey,
        receipt: &str,
        extra: Duration,
    ) -> Result<(), StoreError> {
        let order = order_key(sid, key);
        let receipt = receipt.to_string();
        self.pair
            .write("HSET", extra, |mut conn| async move {
                let _: () = redis::pipe()
                    .atomic()
                    .hset_multiple(&order, &[("status", "paid"), ("receipt", &receipt)])
                    .ignore()
                    .expire(&order, ORDER_TTL.as_secs() as i64)
                    .ignore()
                    .query_async(&mut *conn)
                    .await?;
                Ok(((), conn))
            })
            .await
    }

    pub fn for_worker(&self) -> Self {
        RedisCarts {
            pair: self.pair.for_worker(),
            ..self.clone()
        }
    }

    pub fn pair(&self) -> &RedisPair {
        &self.pair
    }

    pub async fn lines(&self, sid: &SessionId, extra: Duration) -> Result<Cart, StoreError> {
        let key = cart_key(sid);
        let ttl = self.ttl_secs;
        self.pair
            .read("HGETALL", extra, |pool, side| {
                let key = key.clone();
                async move {
                    let mut conn = pool.get().await?;
                    // On the primary, one round trip reads and slides the TTL; a replica
                    // is read-only.
                    let mut pipe = redis::pipe();
                    pipe.hgetall(&key);
                    if side == Side::Primary {
                        pipe.expire(&key, ttl as i64).ignore();
                    }
                    let (cart,): (Cart,) = pipe.query_async(&mut *conn).await?;
                    Ok(cart)
                }
            })
            .await
    }

    pub async fn set(
        &self,
        sid: &SessionId,
        id: &ProductId,
        quantity: Quantity,
        extra: Duration,
    ) -> Result<Cart, StoreError> {
        let key = cart_key(sid);
        let scripts = self.scripts.clone();
        let (field, ttl) = (id.to_string(), self.ttl_secs);
        self.pair
            .write("EVALSHA", extra, |mut conn| async move {
                let cart: Cart = scripts
                    .set_line
                    .key(key)
                    .arg(field)
                    .arg(quantity.get())
                    .arg(ttl)
                    .arg(MAX_CART_LINES)
                    .invoke_async(&mut *conn)
                    .await?;
                Ok((cart, conn))
            })
            .await
    }

    pub async fn clear(&self, sid: &SessionId, extra: Duration) -> Result<(), StoreError> {
        let key = cart_key(sid);
        self.pair
            .write("DEL", extra, |mut conn| async move {
                let _: i64 = conn.del(key).await?;
                Ok(((), conn))
            })
            .await
    }
}

/// session-data: key `session:<sid>` with a sliding TTL.
#[derive(Clone)]
pub struct RedisSessions {
    pair: RedisPair,
    ttl_secs: u64,
}

fn session_key(sid: &SessionId) -> String {
    format!("session:{sid}")
}

impl RedisSessions {
    pub fn new(pair: RedisPair, ttl: Duration) -> Self {
        RedisSessions {
            pair,
            ttl_secs: ttl.as_secs().max(1),
        }
    }

    pub fn for_worker(&self) -> Self {
        RedisSessions {
            pair: self.pair.for_worker(),
            ..self.clone()
        }
    }

    pub fn pair(&self) -> &RedisPair {
        &self.pair
    }

    /// Extends the session; false when it does not exist. While the primary is down a
    /// live session is still recognised (from the replica), without being extended.
    pub async fn touch(&self, sid: &SessionId) -> Result<bool, StoreError> {
        let key = session_key(sid);
        let ttl = self.ttl_secs as i64;
        let extended = self
            .pair
            .write("EXPIRE", Duration::ZERO, |mut conn| {
                let key = key.clone();
                async move {
                    let found: bool = conn.expire(key, ttl).await?;
                    Ok((found, conn))
                }
            })
            .await;
        match extended {
            Err(StoreError::ReadOnly { .. }) => {
                self.pair
                    .read("EXISTS", Duration::ZERO, |pool, _| {
                        let key = key.clone();
                        async move {
                            let mut conn = pool.get().await?;
                            Ok(conn.exists(&key).await?)
                        }
                    })
                    .await
            }
            other => other,
        }
    }

    pub async fn create(&self, sid: &SessionId) -> Result<(), StoreError> {
        let key = session_key(sid);
        let ttl = self.ttl_secs;
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        self.pair
            .write("SET", Duration::ZERO, |mut conn| async move {
                let _: () = conn.set_ex(key, created, ttl).await?;
                Ok(((), conn))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_limit_s_refusal_is_read_as_a_full_cart() {
        let refusal = format!("redis.error_reply('{CART_FULL_CODE} ");
        assert!(SET_LINE.contains(&refusal), "SET_LINE answers another code");
        // As the client reads a script's error reply `CARTFULL the cart is full`.
        let error =
            redis::make_extension_error(CART_FULL_CODE.into(), Some("the cart is full".into()));
        assert!(matches!(WriteError::from(error), WriteError::CartFull));
        let other = redis::RedisError::from((redis::ErrorKind::ResponseError, "ERR"));
        assert!(matches!(WriteError::from(other), WriteError::Failed(_)));
    }
}
