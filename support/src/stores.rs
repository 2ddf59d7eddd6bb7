//! Real Redis and PostgreSQL for tests: shared servers, private ones, fresh databases.
//!
//! The shared servers are the ones `scripts/test.sh` provides ([`redis`], [`postgres`]);
//! private ones a test starts and stops itself ([`RedisServer`], [`PgCluster`]); and
//! [`TestDatabase`] is a fresh database for one test. Tools that run the shop on a real
//! PostgreSQL create its database with [`create_database`].

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::ports::free_port;

/// The URL in `var`, when its server answers. Unset or unreachable: a test that needs it
/// fails under CI (CI=true) and is skipped, loudly, elsewhere.
fn server(var: &str, default: &str) -> Option<String> {
    let url = std::env::var(var).unwrap_or_else(|_| default.to_string());
    let hostport = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.rsplit('@').next())
        .map(|hp| hp.split('/').next().unwrap_or(hp).to_string())
        .unwrap_or_default();
    if TcpStream::connect(&hostport).is_ok() {
        return Some(url);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{var}: no server answers at {url}; scripts/test.sh starts one");
    }
    eprintln!("SKIPPED: no server at {url} ({var}); run scripts/test.sh");
    None
}

/// A Redis server tests may use (keys are namespaced by random session ids).
pub fn redis() -> Option<String> {
    server("ECOMMERCE_TEST_REDIS", "redis://127.0.0.1:6379")
}

/// A PostgreSQL server where the tests may create databases.
pub fn postgres() -> Option<String> {
    server(
        "ECOMMERCE_TEST_POSTGRES",
        "postgres://postgres@127.0.0.1:5432",
    )
}

fn wait_for_port(port: u16, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() != up {
        assert!(Instant::now() < deadline, "port {port} never became {up}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh database on `server`, migrated with the built-in catalog; dropped on drop.
pub struct TestDatabase {
    pub url: String,
    server: String,
    name: String,
}

impl TestDatabase {
    pub async fn create(server: &str) -> TestDatabase {
        let name = format!("ecommerce_test_{:016x}", rand::thread_rng().gen::<u64>());
        admin(server, &format!("CREATE DATABASE {name}")).await;
        let url = format!("{server}/{name}");
        let products = ecommerce::catalog::parse_csv(ecommerce::catalog::BUILTIN_CSV).unwrap();
        ecommerce::stores::postgres::migrate(&url, &products)
            .await
            .expect("migration");
        TestDatabase {
            url,
            server: server.to_string(),
            name,
        }
    }
}

impl TestDatabase {
    /// A plain connection to this database, for a test to read or change it directly.
    pub async fn client(&self) -> tokio_postgres::Client {
        client(&self.url).await
    }
}

/// A plain connection to the database `url` names, driven on the current runtime.
pub async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(connection);
    client
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort, on a runtime of its own (Drop cannot await).
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let server = self.server.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(admin(&server, &sql))
        })
        .join();
    }
}

/// Creates the database `url` names on its server when it does not exist yet (what
/// `ecommerce migrate` needs before it can load the catalog); `Ok(true)` when it created
/// it. The name must be a plain identifier (letters, digits, `_`), since SQL cannot take it
/// as a parameter. Bounded: a server that accepts and never answers fails within 10 s.
pub async fn create_database(url: &str) -> Result<bool, DatabaseError> {
    let (server, name, query) = split_database_url(url)?;
    let admin_url = format!("{server}/postgres{query}");
    let work = async {
        let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .map_err(|source| DatabaseError::Server {
                name: name.into(),
                source,
            })?;
        let driver = tokio::spawn(connection);
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(|source| DatabaseError::Server {
                name: name.into(),
                source,
            })?
            .is_some();
        let created = if exists {
            false
        } else {
            match client
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .await
            {
                Ok(()) => true,
                // Created by someone else meanwhile: there it is.
                Err(e)
                    if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) =>
                {
                    false
                }
                Err(source) => {
                    return Err(DatabaseError::Server {
                        name: name.into(),
                        source,
                    })
                }
            }
        };
        drop(client);
        let _ = driver.await;
        Ok(created)
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .map_err(|_| DatabaseError::Timeout { name: name.into() })?
}

/// `postgres://user@host:5432/name?opts` as (`postgres://user@host:5432`, `name`, `?opts`).
fn split_database_url(url: &str) -> Result<(&str, &str, &str), DatabaseError> {
    let (path, query) = match url.find('?') {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    let authority_start = path.find("://").map_or(0, |at| at + 3);
    let (server, name) = match path[authority_start..].rfind('/') {
        Some(at) => (
            &path[..authority_start + at],
            &path[authority_start + at + 1..],
        ),
        None => (path, ""),
    };
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        Ok((server, name, query))
    } else {
        Err(DatabaseError::Name(name.into()))
    }
}

/// Why [`create_database`] could not make sure the database exists.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("the URL must name a plain database (letters, digits, _), not '{0}'")]
    Name(String),
    #[error("cannot create database {name}")]
    Server {
        name: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("PostgreSQL did not answer within 10 s (creating database {name})")]
    Timeout { name: String },
}

/// Runs one statement on the server's `postgres` database.
async fn admin(server: &str, sql: &str) {
    let (client, connection) =
        tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect to postgres");
    let driver = tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    drop(client);
    let _ = driver.await;
}

/// How the chart runs a Redis primary with persistence: an append-only file flushed once a
/// second, so a crash may lose the last second of writes and nothing older.
pub const CHART_PERSISTENCE: &[&str] = &["--appendonly", "yes", "--appendfsync", "everysec"];

/// No persistence at all: a restart starts empty.
pub const NO_PERSISTENCE: &[&str] = &["--appendonly", "no"];

/// A redis-server process of the test's own, on a free port, optionally a replica.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    replica_of: Option<u16>,
    /// Given after the defaults (a later directive wins), and again on a restart.
    extra: Vec<String>,
}

impl RedisServer {
    /// A primary that keeps an append-only file, fsynced on every write, so a restart
    /// keeps its data.
    pub fn primary() -> RedisServer {
        Self::primary_with(&[])
    }

    /// A primary started with `args` after the defaults (which they override), e.g.
    /// [`CHART_PERSISTENCE`] or [`NO_PERSISTENCE`]; a restart uses them again.
    pub fn primary_with(args: &[&str]) -> RedisServer {
        let extra = args.iter().map(|a| a.to_string()).collect();
        Self::start(free_port(), None, tempfile::tempdir().unwrap(), extra)
    }

    /// A primary on a given port (e.g. one a role was told about before it existed).
    pub fn primary_on(port: u16) -> RedisServer {
        Self::start(port, None, tempfile::tempdir().unwrap(), Vec::new())
    }

    pub fn replica_of(primary: &RedisServer) -> RedisServer {
        let replica = Self::start(
            free_port(),
            Some(primary.port),
            tempfile::tempdir().unwrap(),
            Vec::new(),
        );
        replica.wait_synced();
        replica
    }

    fn start(
        port: u16,
        replica_of: Option<u16>,
        dir: tempfile::TempDir,
        extra: Vec<String>,
    ) -> RedisServer {
        let mut args: Vec<String> = [
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            // A replica's full sync starts at once (by default a primary waits 5 s for
            // more replicas to serve with the same transfer).
            "--repl-diskless-sync-delay",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["--port".into(), port.to_string()]);
        args.extend(["--dir".into(), dir.path().display().to_string()]);
        if let Some(primary) = replica_of {
            args.extend([
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary.to_string(),
            ]);
        }
        args.extend(extra.iter().cloned());
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test.sh installs it)");
        wait_for_port(port, true);
        RedisServer {
            port,
            child: Some(child),
            dir,
            replica_of,
            extra,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        wait_for_port(self.port, false);
    }

    /// Starts it again on the same port and data folder.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let again = Self::start(self.port, self.replica_of, dir, self.extra.clone());
        *self = again;
    }

    /// Blocks until this replica reports its link to the primary up.
    pub fn wait_synced(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "info", "replication"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_default();
            if info.contains("master_link_status:up") {
                return;
            }
            assert!(Instant::now() < deadline, "replica never synced: {info}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A PostgreSQL cluster of the test's own (initdb in a temporary folder, run as the
/// `postgres` user since PostgreSQL refuses root), on a free port.
pub struct PgCluster {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    running: bool,
}

impl PgCluster {
    pub fn start() -> PgCluster {
        let bin = PathBuf::from(std::env::var("ECOMMERCE_PG_BIN").unwrap_or_else(|_| {
            let mut bins: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
                .expect("PostgreSQL is installed (scripts/test.sh installs it)")
                .flatten()
                .map(|e| e.path().join("bin"))
                .collect();
            bins.sort();
            bins.pop().unwrap().display().to_string()
        }));
        let dir = std::env::temp_dir().join(format!(
            "ecommerce-pg-{:016x}",
            rand::thread_rng().gen::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        as_postgres(
            Command::new("chown").args(["postgres", &dir.display().to_string()]),
            false,
        );
        let port = free_port();
        let cluster = PgCluster {
            port,
            dir,
            bin,
            running: false,
        };
        cluster.pg(&["initdb", "-D", ".", "-U", "postgres", "-A", "trust"]);
        let mut cluster = cluster;
        cluster.resume();
        cluster
    }

    fn pg(&self, args: &[&str]) {
        let tool = self.bin.join(args[0]);
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"])
            .arg(tool)
            .args(&args[1..])
            .current_dir(&self.dir);
        as_postgres(&mut cmd, true);
    }

    pub fn server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        self.pg(&["pg_ctl", "-D", ".", "-m", "immediate", "-w", "stop"]);
        self.running = false;
        wait_for_port(self.port, false);
    }

    pub fn resume(&mut self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        self.pg(&["pg_ctl", "-D", ".", "-w", "-l", "log", "-o", &opts, "start"]);
        self.running = true;
        wait_for_port(self.port, true);
    }
}

fn as_postgres(cmd: &mut Command, check: bool) {
    let out = cmd.output().expect("command runs");
    if check && !out.status.success() {
        panic!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let tool = self.bin.join("pg_ctl");
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(tool)
                .args(["-D", ".", "-m", "immediate", "-w", "stop"])
                .current_dir(&self.dir)
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_splits_into_server_name_and_options() {
        let split = |url| split_database_url(url).map_err(|e| e.to_string());
        assert_eq!(
            split("postgres://postgres@127.0.0.1:5432/products"),
            Ok(("postgres://postgres@127.0.0.1:5432", "products", ""))
        );
        assert_eq!(
            split("postgresql://u:p@db/shop_2?sslmode=disable"),
            Ok(("postgresql://u:p@db", "shop_2", "?sslmode=disable"))
        );
        for bad in [
            "postgres://h/",
            "postgres://h",
            "postgres://h/a-b",
            "postgres://h/1a",
            "postgres://h/a\"b",
        ] {
            let err = split(bad).unwrap_err();
            assert!(err.contains("plain database"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_missing_database_is_created_once() {
        let Some(server) = postgres() else { return };
        let name = format!("ecommerce_create_{:016x}", rand::thread_rng().gen::<u64>());
        let url = format!("{server}/{name}");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();

        let first = runtime.block_on(create_database(&url)).unwrap();
        let again = runtime.block_on(create_database(&url)).unwrap();
        runtime.block_on(admin(
            &server,
            &format!("DROP DATABASE {name} WITH (FORCE)"),
        ));

        assert!(first, "created");
        assert!(!again, "found, not created again");
    }
}
