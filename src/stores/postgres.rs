//! product-data on PostgreSQL: the schema, the catalog migration, parameterized queries on
//! pooled connections, and TLS as the URL's `sslmode` says.

mod generated;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_postgres::config::SslMode as WireSslMode;
use tokio_postgres::Row;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{
    finish_store_call, redact, store_call, Batches, Count, Failure, Health, PoolUsage, SearchPage,
    Server, StoreError,
};
use crate::catalog::Product;
use crate::domain::{Money, ProductId};
use crate::telemetry::logfmt;
use crate::telemetry::span::Peer;
use crate::tls::{Roots, Trust, Verify};

/// How long one operation may take in all (pool wait, connect, queries).
pub(super) const OP_TIMEOUT: Duration = Duration::from_secs(3);
const POOL_SIZE: usize = 8;

/// The schema, idempotent. Trigram indexes keep substring search fast as the catalog
/// grows; the display-order index serves "best rated first" with a LIMIT.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS products (
    id          text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name        text NOT NULL,
    category    text,
    price       numeric(12, 2) NOT NULL CHECK (price >= 0),
    rating      double precision NOT NULL CHECK (rating BETWEEN 0 AND 5),
    reviews     integer NOT NULL CHECK (reviews >= 0),
    filename    text NOT NULL,
    description text,
    alcoholic   text,
    temperature text,
    type        text
);
CREATE INDEX IF NOT EXISTS products_display_order ON products (rating DESC, reviews DESC, id);
-- What search reads (see MATCHES), with statistics fine enough (a histogram of 250 rows,
-- not 100) that a term in 0.4% of the rows is not taken for one in 0.01%: that mistake
-- plans a bitmap scan of thousands of rows, sorted, where the display-order index would
-- stop after a few. Finer still costs each search more planning than it saves.
ALTER TABLE products
    ADD COLUMN IF NOT EXISTS name_lc text GENERATED ALWAYS AS (lower(name)) STORED,
    ADD COLUMN IF NOT EXISTS description_lc text GENERATED ALWAYS AS (lower(description)) STORED;
ALTER TABLE products
    ALTER COLUMN name_lc SET STATISTICS 250,
    ALTER COLUMN description_lc SET STATISTICS 250;
CREATE TABLE IF NOT EXISTS catalog_meta (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    products  bigint NOT NULL CHECK (products >= 0),
    generated integer NOT NULL CHECK (generated >= 0)
);
"#;

/// The number of rows in `products`, read without counting them (one row, one column,
/// `bigint`): `migrate` writes it in the transaction that loads the catalog, so it is
/// exact whenever the rows are visible, e.g. the total of an empty search. No row (or no
/// table, `UNDEFINED_TABLE`) means a database migrated before the table existed: count.
/// `catalog_meta.generated` holds how many of them `--generate` made.
pub const PRODUCT_COUNT: &str = "SELECT products FROM catalog_meta";

/// Keeps `catalog_meta` in step with `products`, writing only when it differs.
const COUNT_PRODUCTS: &str = r#"
INSERT INTO catalog_meta (only_row, products, generated)
VALUES (true, (SELECT count(*) FROM products), $1)
ON CONFLICT (only_row) DO UPDATE SET products = EXCLUDED.products, generated = EXCLUDED.generated
WHERE (catalog_meta.products, catalog_meta.generated)
   IS DISTINCT FROM (EXCLUDED.products, EXCLUDED.generated)
"#;

/// Search reads the lowercase copies (see `MATCHES`); the indexes of the original
/// columns, from before those existed, are dropped.
const TRIGRAM_SCHEMA: &str = r#"
DROP INDEX IF EXISTS products_name_trgm;
DROP INDEX IF EXISTS products_description_trgm;
CREATE INDEX IF NOT EXISTS products_name_lc_trgm ON products USING gin (name_lc gin_trgm_ops);
CREATE INDEX IF NOT EXISTS products_description_lc_trgm ON products USING gin (description_lc gin_trgm_ops);
"#;

/// Rows a migration wrote wait in the trigram indexes' pending lists (GIN's fast update),
/// which every indexed search reads whole until a vacuum merges them: after a large load
/// hundreds of pages, 20 ms added to a rare term's search at 1,000,000 products. Merged
/// before the migration commits.
const MERGE_PENDING: &str = "SELECT gin_clean_pending_list('products_name_lc_trgm'::regclass), \
     gin_clean_pending_list('products_description_lc_trgm'::regclass)";

/// Whether search's columns have no statistics yet (they were just added to a loaded
/// catalog), so that plans would rest on default guesses until the catalog next changes.
const UNANALYZED: &str = "SELECT NOT EXISTS (SELECT 1 FROM pg_stats \
     WHERE schemaname = current_schema() AND tablename = 'products' AND attname = 'name_lc')";

/// The product-data-slow fault's wait, in the database: the query that follows on the
/// same connection waits behind it, as behind a slow plan or a lock.
const SLEEP: &str = "SELECT pg_sleep($1)";

const COLUMNS: &str = "id, name, category, price::text, rating, reviews, filename, description, alcoholic, temperature, type";
/// Best rated first, as `Product::display_order` (ids compare bytewise: COLLATE "C").
const ORDER: &str = "ORDER BY rating DESC, reviews DESC, id";

/// A search's filter, `$1` the `%...%` pattern: the stored lowercase copies against the
/// pattern lowercased once (at planning: each search is planned for its pattern), which
/// is what `ILIKE` does, without lowercasing every row it tests (4x cheaper per row).
const MATCHES: &str = "(name_lc LIKE lower($1) OR description_lc LIKE lower($1))";

/// The first `$2` products matching the pattern `$1`, best rated first: a search's page.
fn page_sql() -> String {
    format!("SELECT {COLUMNS} FROM products WHERE {MATCHES} {ORDER} LIMIT $2")
}

/// The products with the ids of `$1`, best rated first (`/documents`, and a search's page
/// once its matches are known).
fn by_ids_sql() -> String {
    format!("SELECT {COLUMNS} FROM products WHERE id = ANY($1) {ORDER}")
}

/// Inserts a product, or updates it only where it differs, so that a second migration
/// with the same catalog changes nothing.
const UPSERT: &str = r#"
INSERT INTO products (id, name, category, price, rating, reviews, filename, description, alcoholic, temperature, type)
VALUES ($1, $2, $3, $4::text::numeric, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, category = EXCLUDED.category, price = EXCLUDED.price,
    rating = EXCLUDED.rating, reviews = EXCLUDED.reviews, filename = EXCLUDED.filename,
    description = EXCLUDED.description, alcoholic = EXCLUDED.alcoholic,
    temperature = EXCLUDED.temperature, type = EXCLUDED.type
WHERE (products.name, products.category, products.price, products.rating, products.reviews,
       products.filename, products.description, products.alcoholic, products.temperature, products.type)
   IS DISTINCT FROM
      (EXCLUDED.name, EXCLUDED.category, EXCLUDED.price, EXCLUDED.rating, EXCLUDED.reviews,
       EXCLUDED.filename, EXCLUDED.description, EXCLUDED.alcoholic, EXCLUDED.temperature, EXCLUDED.type)
"#;

/// Rows of a whole-catalog read per batch (about 150 KB of JSON).
const CATALOG_BATCH: usize = 500;
/// How long a whole-catalog read waits for its reader to take the next batch: a client
/// that stops reading holds a connection no longer than this.
const READER_STALL: Duration = Duration::from_secs(10);
/// Whole-catalog reads at once per worker, so that they never hold all of its connections.
const CATALOG_READS: usize = 2;

/// Serializes concurrent migrations (e.g. two Helm hooks) on one database.
const MIGRATION_LOCK: i64 = 0x6563_6f6d_6d65;

/// A query parameter.
type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// How connections are secured: libpq's `sslmode`, which tokio-postgres knows only in part
/// (it has no `verify-ca` or `verify-full`), so the shop reads it itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// TLS when the server offers it, plain otherwise; no certificate check (libpq's
    /// default, and so the shop's).
    Prefer,
    /// TLS or no connection; no certificate check (the chain, with `sslrootcert`).
    Require,
    /// TLS, the chain checked up to a trusted root, not the host name.
    VerifyCa,
    /// TLS, the chain and that the certificate names the host connected to.
    VerifyFull,
}

impl std::str::FromStr for SslMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(format!(
                    "sslmode '{s}' is not one of disable, prefer, require, verify-ca, verify-full"
                ))
            }
        })
    }
}

/// A server's URL as the pool connects to it: tokio-postgres's configuration (without
/// the TLS parameters it does not know), and the TLS that `sslmode` and `sslrootcert`
/// ask for, over the process's trust.
#[derive(Clone)]
struct Target {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
}

impl Target {
    fn new(url: &str, trust: &Trust) -> Result<Target, String> {
        let at_fault = |reason: String| format!("'{}': {reason}", redact(url));
        let (rest, query) = url.split_once('?').unwrap_or((url, ""));
        let (mut mode, mut root_cert) = (SslMode::Prefer, None);
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => mode = percent_decode(value).parse().map_err(at_fault)?,
                "sslrootcert" => root_cert = Some(percent_decode(value)),
                _ => kept.push(pair),
            }
        }
        let wire = match mode {
            SslMode::Disable => WireSslMode::Disable,
            SslMode::Prefer => WireSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireSslMode::Require,
        };
        let verify = match (mode, &root_cert) {
            (SslMode::VerifyFull, _) => Verify::Full,
            // As libpq: `require` with a root certificate file checks the chain.
            (SslMode::VerifyCa, _) | (SslMode::Require, Some(_)) => Verify::Chain,
            _ => Verify::Nothing,
        };
        // `sslrootcert=PATH` trusts that file's certificates alone, as with libpq;
        // `system` (or none) the process's roots.
        let trust = match root_cert.as_deref() {
            Some(path) if path != "system" => {
                let mut roots = Roots::empty();
                roots
                    .add_pem_file(std::path::Path::new(path))
                    .and_then(|()| Trust::new(roots))
                    .map_err(|e| at_fault(format!("sslrootcert: {}", logfmt::chain(&e))))?
            }
            _ => trust.clone(),
        };
        let tls = trust
            .config(verify, b"postgresql")
            .map_err(|e| at_fault(format!("sslmode: {}", logfmt::chain(&e))))?;
        let url = if kept.is_empty() {
            rest.to_string()
        } else {
            format!("{rest}?{}", kept.join("&"))
        };
        let mut config = config(&url).map_err(at_fault)?;
        config.ssl_mode(wire);
        Ok(Target {
            config,
            tls: MakeRustlsConnect::new((*tls).clone()),
        })
    }
}

/// `%XX` escapes of a URL's query value decoded (a path may hold them).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn config(url: &str) -> Result<tokio_postgres::Config, String> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    config.connect_timeout(OP_TIMEOUT);
    // Plan each search for its own pattern: a generic plan for `ILIKE $1` cannot use the
    // trigram indexes and scans the whole table.
    config.options("-c plan_cache_mode=force_custom_plan");
    if config.get_application_name().is_none() {
        config.application_name("ecommerce");
    }
    Ok(config)
}

#[derive(Clone)]
pub struct PostgresCatalog {
    pool: Pool,
    /// How each worker's pool connects (kept whole: a pool per worker).
    target: Arc<Target>,
    server: Arc<Server>,
    /// Every worker's pool, for usage metrics.
    pools: Arc<Mutex<Vec<Pool>>>,
    /// Leaves to read the whole catalog (see [`CATALOG_READS`]), one set per worker.
    catalog_reads: Arc<Semaphore>,
}

fn unavailable(cause: impl Into<Failure>) -> StoreError {
    StoreError::Unavailable {
        store: "product-data",
        cause: cause.into(),
    }
}

/// A query failure; a missing table or column means `migrate` (of this version) has not
/// run.
fn query_error(e: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    if matches!(
        e.code(),
        Some(&SqlState::UNDEFINED_TABLE | &SqlState::UNDEFINED_COLUMN)
    ) {
        return unavailable(Failure::NotMigrated(e));
    }
    unavailable(Failure::Postgres(e))
}

impl PostgresCatalog {
    /// A pool for `url` (no connection is made until first use), over TLS as its
    /// `sslmode` says, trusting servers as `trust` says.
    pub fn new(url: &str, trust: &Trust) -> Result<Self, String> {
        let target = Arc::new(Target::new(url, trust)?);
        Ok(PostgresCatalog {
            pool: pool(&target),
            target,
            server: Arc::new(Server::of(url)),
            pools: Arc::default(),
            catalog_reads: Arc::new(Semaphore::new(CATALOG_READS)),
        })
    }

    /// The same store with a pool of its own, for another worker thread.
    pub fn for_worker(&self) -> Self {
        let worker = PostgresCatalog {
            pool: pool(&self.target),
            catalog_reads: Arc::new(Semaphore::new(CATALOG_READS)),
            ..self.clone()
        };
        self.pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(worker.pool.clone());
        worker
    }

    /// Connections of every worker's pool.
    pub fn pool_usage(&self) -> PoolUsage {
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools.iter().map(|p| pool_usage!(p.status())).sum()
    }

    /// Runs `op` on a pooled connection within the operation timeout, as a span of
    /// `operation` with its SQL, `extra` later (see [`super::ProductStore`]).
    async fn with_client<T, F, Fut>(
        &self,
        sql: &str,
        extra: Duration,
        op: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(deadpool_postgres::Object) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let operation = sql.split_whitespace().next().map_or("QUERY", |verb| {
            if verb.eq_ignore_ascii_case("select") {
                "SELECT"
            } else {
                "QUERY"
            }
        });
        let mut call = store_call(
            Peer::Postgres,
            operation,
            "products",
            Some(&self.server),
            "primary",
        );
        call.attribute("db.query.text", || sql.to_string().into());
        let result = tokio::time::timeout(OP_TIMEOUT, async {
            let client = self.pool.get().await.map_err(unavailable)?;
            if !extra.is_zero() {
                // No longer than the timeout: a sleep the client gave up on would hold
                // up the connection's next queries after the fault is off.
                let seconds = extra.min(OP_TIMEOUT).as_secs_f64();
                let sleep = client.prepare_cached(SLEEP).await.map_err(query_error)?;
                client
                    .execute(&sleep, &[&seconds])
                    .await
                    .map_err(query_error)?;
            }
            op(client).await
        })
        .await
        .unwrap_or_else(|_| Err(unavailable(Failure::TimedOut)));
        finish_store_call(call, &result);
        result
    }

    async fn query(
        &self,
        sql: &str,
        params: &[Param<'_>],
        extra: Duration,
    ) -> Result<Vec<Row>, StoreError> {
        self.with_client(sql, extra, |client| async move {
            let statement = client.prepare_cached(sql).await.map_err(query_error)?;
            client.query(&statement, params).await.map_err(query_error)
        })
        .await
    }

    pub async fn documents(
        &self,
        ids: &[ProductId],
        extra: Duration,
    ) -> Result<Vec<Product>, StoreError> {
        if ids.is_empty() {
            return self.catalog(extra).await?.try_concat().await;
        }
        let ids: Vec<&str> = ids.iter().map(ProductId::as_str).collect();
        let rows = self.query(&by_ids_sql(), &[&ids], extra).await?;
        rows.iter().map(product).collect()
    }

    /// Every product, best rated first, read from a cursor in batches by a task of its own
    /// that stays one batch ahead of the reader: the process holds a few batches at most,
    /// however large the catalog, and the server reads no further than the reader has come
    /// (a cursor is planned for a fast start: the display-order index, not a sort of every
    /// row). A reader that stops taking batches for [`READER_STALL`] is given up on.
    pub async fn catalog(&self, extra: Duration) -> Result<Batches, StoreError> {
        let leave = tokio::time::timeout(OP_TIMEOUT, self.catalog_reads.clone().acquire_owned())
            .await
            .map_err(|_| unavailable(Failure::TimedOut))?
            .expect("the semaphore is never closed");
        let open = format!(
            "BEGIN READ ONLY; DECLARE catalog NO SCROLL CURSOR FOR SELECT {COLUMNS} FROM products {ORDER}"
        );
        let open = &open;
        let cursor = self
            .with_client(open, extra, |client| async move {
                let cursor = Cursor(Some(client));
                cursor
                    .client()
                    .batch_execute(open)
                    .await
                    .map_err(query_error)?;
                Ok(cursor)
            })
            .await?;
        let (batches, reader) = tokio::sync::mpsc::channel(1);
        tokio::spawn(read_catalog(cursor, leave, batches));
        Ok(
            futures_util::stream::unfold(Some(reader), |reader| async move {
                let mut reader = reader?;
                Some(match reader.recv().await {
                    Some(Ok(batch)) if batch.len() == CATALOG_BATCH => (Ok(batch), Some(reader)),
                    Some(Ok(last)) => (Ok(last), None),
                    Some(Err(e)) => (Err(e), None),
                    // The task sends until the last batch or a failure: it cannot end earlier.
                    None => (Err(unavailable(Failure::TimedOut)), None),
                })
            })
            .boxed(),
        )
    }

    /// What a search reads does not grow with the catalog. First up to one match past the
    /// cap, in whatever order the planner finds them fastest (a sequential scan stopped
    /// early for a common term, the trigram indexes for a rare one), only their ids and
    /// display-order keys: their number is the count. When they are all there, the best
    /// rated of them are the page, read by id; past the cap the page is the display-order
    /// index read until `limit` matches. The empty query's total is `catalog_meta`'s row
    /// count, kept by `migrate`, sent together with its page.
    ///
    /// A count that stops at the page's size (suggestions) is the page itself read one row
    /// longer: one statement.
    pub async fn search(
        &self,
        query: &str,
        limit: usize,
        count: Count,
        extra: Duration,
    ) -> Result<SearchPage, StoreError> {
        let cap = count.cap(limit);
        let limit = limit as i64;
        let past_cap = cap as i64 + 1;
        if query.is_empty() {
            let page_sql = format!("SELECT {COLUMNS} FROM products {ORDER} LIMIT $1");
            let (rows, size) = self
                .page_and(&page_sql, &[&limit], PRODUCT_COUNT, &[], extra)
                .await?;
            let results = rows.iter().map(product).collect::<Result<_, _>>()?;
            if let Some(size) = size {
                return Ok(SearchPage::exact(size.get::<_, i64>(0) as usize, results));
            }
            // No row: `migrate` of this version has not finished. Counting stays bounded.
            let counted = self
                .query(
                    "SELECT count(*) FROM (SELECT 1 FROM products LIMIT $1) AS m",
                    &[&past_cap],
                    extra,
                )
                .await?;
            return Ok(SearchPage::capped(
                counted[0].get::<_, i64>(0) as usize,
                cap,
                results,
            ));
        }
        let pattern = format!("%{}%", escape_like(query));
        if past_cap <= limit + 1 {
            let rows = self
                .query(&page_sql(), &[&pattern, &(limit + 1)], extra)
                .await?;
            let results = rows.iter().take(limit as usize).map(product);
            return Ok(SearchPage::capped(
                rows.len(),
                cap,
                results.collect::<Result<_, _>>()?,
            ));
        }
        let (pattern, limit_rows) = (&pattern, limit as usize);
        let matching_sql =
            format!("SELECT id, rating, reviews FROM products WHERE {MATCHES} LIMIT $2");
        let matching_sql = &matching_sql;
        let (counted, rows) = self
            .with_client(matching_sql, extra, |client| async move {
                let matching = client
                    .prepare_cached(matching_sql)
                    .await
                    .map_err(query_error)?;
                let mut found: Vec<(String, f64, i32)> = client
                    .query(&matching, &[pattern, &past_cap])
                    .await
                    .map_err(query_error)?
                    .iter()
                    .map(|row| (row.get(0), row.get(1), row.get(2)))
                    .collect();
                let counted = found.len();
                let rows = if counted > cap {
                    let page = client
                        .prepare_cached(&page_sql())
                        .await
                        .map_err(query_error)?;
                    client.query(&page, &[pattern, &limit]).await
                } else if counted > 0 {
                    // As ORDER: rating, then reviews, highest first, then the id bytewise.
                    found.sort_by(|a, b| {
                        b.1.total_cmp(&a.1)
                            .then(b.2.cmp(&a.2))
                            .then_with(|| a.0.cmp(&b.0))
                    });
                    let best: Vec<&str> = found
                        .iter()
                        .take(limit_rows)
                        .map(|f| f.0.as_str())
                        .collect();
                    let page = client
                        .prepare_cached(&by_ids_sql())
                        .await
                        .map_err(query_error)?;
                    client.query(&page, &[&best]).await
                } else {
                    Ok(Vec::new())
                };
                Ok::<_, StoreError>((counted, rows.map_err(query_error)?))
            })
            .await?;
        Ok(SearchPage::capped(
            counted,
            cap,
            rows.iter().map(product).collect::<Result<_, _>>()?,
        ))
    }

    /// The rows of `page_sql` and the row (if any) of `other_sql`, both sent at once on one
    /// connection.
    async fn page_and(
        &self,
        page_sql: &str,
        page_params: &[Param<'_>],
        other_sql: &str,
        other_params: &[Param<'_>],
        extra: Duration,
    ) -> Result<(Vec<Row>, Option<Row>), StoreError> {
        self.with_client(page_sql, extra, |client| async move {
            let (page, other) = futures_util::future::try_join(
                client.prepare_cached(page_sql),
                client.prepare_cached(other_sql),
            )
            .await
            .map_err(query_error)?;
            futures_util::future::try_join(
                client.query(&page, page_params),
                client.query_opt(&other, other_params),
            )
            .await
            .map_err(query_error)
        })
        .await
    }

    pub async fn get(
        &self,
        id: &ProductId,
        extra: Duration,
    ) -> Result<Option<Product>, StoreError> {
        let rows = self
            .query(
                &format!("SELECT {COLUMNS} FROM products WHERE id = $1"),
                &[&id.as_str()],
                extra,
            )
            .await?;
        rows.first().map(product).transpose()
    }

    pub async fn health(&self) -> Result<Health, StoreError> {
        self.query("SELECT 1 FROM products LIMIT 1", &[], Duration::ZERO)
            .await?;
        Ok(Health::Up)
    }
}

/// A connection inside a whole-catalog read's transaction. Dropped before [`Cursor::close`]
/// (a failure, a timeout, a reader gone) it is closed, not put back in the pool with the
/// transaction open.
struct Cursor(Option<deadpool_postgres::Object>);

impl Cursor {
    fn client(&self) -> &deadpool_postgres::Object {
        self.0.as_ref().expect("present until closed")
    }

    /// Ends the transaction and puts the connection back in the pool.
    async fn close(mut self) -> Result<(), StoreError> {
        self.client()
            .batch_execute("CLOSE catalog; COMMIT")
            .await
            .map_err(query_error)?;
        self.0.take();
        Ok(())
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// The task behind [`PostgresCatalog::catalog`]: batches fetched (each within the
/// operation timeout) and handed over until the last one, a failure, or a reader that
/// stalled or left; `leave` is held until then.
async fn read_catalog(
    cursor: Cursor,
    leave: OwnedSemaphorePermit,
    batches: mpsc::Sender<Result<Vec<Product>, StoreError>>,
) {
    let fetch = format!("FETCH {CATALOG_BATCH} FROM catalog");
    loop {
        let batch = tokio::time::timeout(OP_TIMEOUT, cursor.client().query(&fetch, &[]))
            .await
            .map_err(|_| unavailable(Failure::TimedOut))
            .and_then(|rows| rows.map_err(query_error))
            .and_then(|rows| rows.iter().map(product).collect::<Result<Vec<_>, _>>());
        let more = matches!(&batch, Ok(b) if b.len() == CATALOG_BATCH);
        let failed = batch.is_err();
        // The reader left or stalled: the connection is closed as `cursor` drops.
        match batches.send_timeout(batch, READER_STALL).await {
            Ok(()) => {}
            Err(mpsc::error::SendTimeoutError::Closed(_)) => break,
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                log::warn!(
                    "msg=\"whole catalog read given up: its reader took no batch for {} s\"",
                    READER_STALL.as_secs()
                );
                break;
            }
        }
        if !more {
            if !failed {
                let _ = tokio::time::timeout(OP_TIMEOUT, cursor.close()).await;
            }
            break;
        }
    }
    drop(leave);
}

/// `%`, `_` and the escape character itself are literal in a search.
fn escape_like(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    for c in query.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn product(row: &Row) -> Result<Product, StoreError> {
    let price: String = row.get(3);
    Ok(Product {
        id: row.get(0),
        name: row.get(1),
        category: row.get(2),
        price: Money::from_decimal_str(&price).map_err(|e| unavailable(Failure::Corrupt(e)))?,
        rating: row.get(4),
        reviews: i64::from(row.get::<_, i32>(5)),
        filename: row.get(6),
        description: row.get(7),
        alcoholic: row.get(8),
        temperature: row.get(9),
        kind: row.get(10),
    })
}

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Rows inserted, changed or (generated ones) deleted.
    pub changed: u64,
    /// Products in the catalog that was loaded, generated ones included.
    pub products: usize,
}

fn pool(target: &Target) -> Pool {
    let manager = Manager::from_config(
        target.config.clone(),
        target.tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .wait_timeout(Some(OP_TIMEOUT))
        .create_timeout(Some(OP_TIMEOUT))
        .recycle_timeout(Some(OP_TIMEOUT))
        .runtime(Runtime::Tokio1)
        .build()
        .expect("a runtime and timeouts are given")
}

/// Creates or upgrades the schema and loads `products`, in one transaction, trusting the
/// system's root certificates alone (see [`migrate_trusting`]).
pub async fn migrate(url: &str, products: &[Product]) -> Result<Migrated, String> {
    let trust = Trust::system().map_err(|e| logfmt::chain(&e))?;
    migrate_trusting(url, products, &trust).await
}

/// Creates or upgrades the schema and loads `products`, in one transaction, over TLS as
/// the URL's `sslmode` says, trusting servers as `trust` says; no generated products
/// (see [`migrate_generating`]).
pub async fn migrate_trusting(
    url: &str,
    products: &[Product],
    trust: &Trust,
) -> Result<Migrated, String> {
    migrate_generating(url, products, 0, trust).await
}

/// As [`migrate_trusting`], and makes the generated products exactly the first `generate`
/// of [`crate::catalog::generated`] (adding the missing ones, deleting those beyond,
/// rewriting only those that differ), in the same transaction.
pub async fn migrate_generating(
    url: &str,
    products: &[Product],
    generate: u32,
    trust: &Trust,
) -> Result<Migrated, String> {
    crate::catalog::generated::check(products, generate).map_err(|e| e.to_string())?;
    let target = Target::new(url, trust)?;
    let (mut client, connection) = target
        .config
        .connect(target.tls)
        .await
        .map_err(|e| format!("cannot connect to {}: {}", redact(url), logfmt::chain(&e)))?;
    let driver = tokio::spawn(connection);
    // pg_trgm is a trusted extension: a database owner may create it. Without it search
    // still works, only without its indexes.
    let trigram = client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        .await;
    if let Err(e) = &trigram {
        log::warn!(
            "msg=\"pg_trgm unavailable: search will not be indexed\" error={}",
            logfmt::value(&logfmt::chain(e))
        );
    }
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| e.to_string())?;
    tx.batch_execute(SCHEMA).await.map_err(|e| e.to_string())?;
    if trigram.is_ok() {
        tx.batch_execute(TRIGRAM_SCHEMA)
            .await
            .map_err(|e| e.to_string())?;
    }
    let upsert = tx.prepare(UPSERT).await.map_err(|e| e.to_string())?;
    let mut changed = 0;
    for p in products {
        let reviews =
            i32::try_from(p.reviews).map_err(|_| format!("{}: too many reviews", p.id))?;
        changed += tx
            .execute(
                &upsert,
                &[
                    &p.id,
                    &p.name,
                    &p.category,
                    &p.price.to_string(),
                    &p.rating,
                    &reviews,
                    &p.filename,
                    &p.description,
                    &p.alcoholic,
                    &p.temperature,
                    &p.kind,
                ],
            )
            .await
            .map_err(|e| format!("{}: {e}", p.id))?;
    }
    changed += generated::load(&tx, generate).await?;
    let generate_count = generate as i32;
    tx.execute(COUNT_PRODUCTS, &[&generate_count])
        .await
        .map_err(|e| format!("catalog_meta: {e}"))?;
    if changed > 0 && trigram.is_ok() {
        tx.batch_execute(MERGE_PENDING)
            .await
            .map_err(|e| format!("merging the trigram indexes' pending rows: {e}"))?;
    }
    let unanalyzed: bool = tx
        .query_one(UNANALYZED, &[])
        .await
        .map_err(|e| format!("reading statistics: {e}"))?
        .get(0);
    if changed > 0 || unanalyzed {
        // Plans of search and the display order rest on the rows' statistics.
        tx.batch_execute("ANALYZE products")
            .await
            .map_err(|e| format!("ANALYZE products: {e}"))?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    drop(client);
    let _ = driver.await;
    Ok(Migrated {
        changed,
        products: products.len() + generate as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Result<Target, String> {
        Target::new(url, &Trust::system().unwrap())
    }

    #[test]
    fn sslmode_is_read_by_the_shop_and_handed_on_as_tokio_postgres_knows_it() {
        let mode = |url| target(url).map(|t| t.config.get_ssl_mode());
        assert_eq!(mode("postgres://u@h/db"), Ok(WireSslMode::Prefer));
        assert_eq!(
            mode("postgres://u@h/db?sslmode=disable"),
            Ok(WireSslMode::Disable)
        );
        for strict in ["require", "verify-ca", "verify-full"] {
            let url = format!("postgres://u@h/db?application_name=x&sslmode={strict}");
            let found = target(&url).unwrap();
            assert_eq!(
                found.config.get_ssl_mode(),
                WireSslMode::Require,
                "{strict}"
            );
            assert_eq!(found.config.get_application_name(), Some("x"));
        }
        assert_eq!(
            "verify-ca".parse::<SslMode>(),
            Ok(SslMode::VerifyCa),
            "libpq's spelling"
        );
    }

    #[test]
    fn an_unknown_sslmode_or_unreadable_root_file_is_named_without_the_password() {
        let err = target("postgres://u:hunter2@h/db?sslmode=verify")
            .err()
            .unwrap();
        assert!(err.contains("sslmode 'verify'"), "{err}");
        assert!(err.contains("verify-full"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = target("postgres://u@h/db?sslmode=verify-ca&sslrootcert=%2Fnonexistent%2Fca.pem")
            .err()
            .unwrap();
        assert!(
            err.contains("sslrootcert") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("100%_a\\b"), "100\\%\\_a\\\\b");
        assert_eq!(escape_like("tea"), "tea");
    }
}
