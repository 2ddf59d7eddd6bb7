//! Real stores made ready for the shop (the topology's `--stores real`, every benchmark):
//! Redis and PostgreSQL answer, and product-data's database exists and holds the catalog
//! (`ecommerce migrate`) before any role starts.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use ecommerce::stores::redact;
use support::stores::DatabaseError;

/// How long one "does anything answer there" may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// How long loading the catalog may take.
const MIGRATE_WITHIN: Duration = Duration::from_secs(120);

/// Where the benchmarks find the real stores.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreUrls {
    /// cart-data and session-data.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// product-data (the database is created when missing, and migrated).
    #[arg(
        long,
        env = "POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/products"
    )]
    pub postgres_url: String,
}

/// Why the real stores are not ready for the shop.
#[derive(Debug, thiserror::Error)]
pub enum StoresError {
    #[error("{what} does not answer at {url} (set {var}, or use --stores memory)")]
    Down {
        what: &'static str,
        var: &'static str,
        url: String,
    },
    #[error("product-data's database (POSTGRES_URL={url}) cannot be used")]
    Database {
        url: String,
        #[source]
        source: DatabaseError,
    },
    #[error("`{} migrate` failed (its output: {})", .binary.display(), .log.display())]
    Migrate {
        binary: PathBuf,
        log: PathBuf,
        #[source]
        failure: MigrateFailure,
    },
}

/// How `ecommerce migrate` failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateFailure {
    #[error("cannot run it")]
    Spawn(#[source] std::io::Error),
    #[error("cannot write its log")]
    Log(#[source] std::io::Error),
    #[error("it exited ({0})")]
    Exited(ExitStatus),
    #[error("not done within {0:?}")]
    TimedOut(Duration),
}

/// Both servers answer, the database exists (created when missing), and the catalog is
/// loaded into it by `binary`; the migration's output goes to `<dir>/migrate.log`, and
/// what happens is said with `name:` first.
pub async fn prepare(
    binary: &Path,
    (redis_url, postgres_url): (&str, &str),
    dir: &Path,
    name: &str,
) -> Result<(), StoresError> {
    let say = |message: String| println!("{name}: {message}");
    for (what, var, url, default_port) in [
        ("Redis", "REDIS_URL", redis_url, 6379),
        ("PostgreSQL", "POSTGRES_URL", postgres_url, 5432),
    ] {
        if !answers(host_port(url, default_port)).await {
            return Err(StoresError::Down {
                what,
                var,
                url: redact(url),
            });
        }
    }
    let created = support::stores::create_database(postgres_url)
        .await
        .map_err(|source| StoresError::Database {
            url: redact(postgres_url),
            source,
        })?;
    if created {
        say(format!("created the database of {}", redact(postgres_url)));
    }
    say(format!(
        "migrating product-data ({} migrate)",
        binary.display()
    ));
    std::fs::create_dir_all(dir).map_err(|e| StoresError::Migrate {
        binary: binary.to_path_buf(),
        log: dir.join("migrate.log"),
        failure: MigrateFailure::Log(e),
    })?;
    migrate(binary, postgres_url, &dir.join("migrate.log"))
        .await
        .map_err(|failure| StoresError::Migrate {
            binary: binary.to_path_buf(),
            log: dir.join("migrate.log"),
            failure,
        })
}

async fn migrate(binary: &Path, url: &str, log: &Path) -> Result<(), MigrateFailure> {
    let output = std::fs::File::create(log).map_err(MigrateFailure::Log)?;
    let errors = output.try_clone().map_err(MigrateFailure::Log)?;
    let mut child = tokio::process::Command::new(binary)
        .args(["migrate", "--product-data", url])
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .kill_on_drop(true)
        .spawn()
        .map_err(MigrateFailure::Spawn)?;
    let status = tokio::time::timeout(MIGRATE_WITHIN, child.wait())
        .await
        .map_err(|_| MigrateFailure::TimedOut(MIGRATE_WITHIN))?
        .map_err(MigrateFailure::Spawn)?;
    if status.success() {
        Ok(())
    } else {
        // What went wrong is in its own words.
        if let Ok(text) = std::fs::read_to_string(log) {
            eprint!("{text}");
        }
        Err(MigrateFailure::Exited(status))
    }
}

/// Whether something accepts TCP connections at `address` (`host:port`, or a pair),
/// within two seconds, off the async runtime's threads.
pub async fn answers(address: impl ToSocketAddrs + Send + 'static) -> bool {
    tokio::task::spawn_blocking(move || answers_blocking(address))
        .await
        .unwrap_or(false)
}

/// [`answers`], for code that may block.
pub fn answers_blocking(address: impl ToSocketAddrs) -> bool {
    let Ok(addresses) = address.to_socket_addrs() else {
        return false;
    };
    addresses
        .into_iter()
        .any(|address| TcpStream::connect_timeout(&address, ANSWER_WITHIN).is_ok())
}

/// The host and port of `scheme://[user[:password]@]host[:port][/...]`, with
/// `default_port` when it names none and 127.0.0.1 when it names no host.
pub fn host_port(url: &str, default_port: u16) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        // [::1]:5432
        match bracketed.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => (bracketed, None),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    let port = port.and_then(|p| p.parse().ok()).unwrap_or(default_port);
    (host.to_string(), port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports_come_out_of_store_urls() {
        let cases = [
            ("redis://127.0.0.1:6379", 6379, ("127.0.0.1", 6379)),
            ("redis://cache", 6379, ("cache", 6379)),
            ("redis://:pw@cache:6380/0", 6379, ("cache", 6380)),
            (
                "postgres://postgres@127.0.0.1:5432/products",
                5432,
                ("127.0.0.1", 5432),
            ),
            (
                "postgres://u:p@ss@db/products?sslmode=disable",
                5432,
                ("db", 5432),
            ),
            ("postgres://[::1]:5433/products", 5432, ("::1", 5433)),
            ("postgres:///products", 5432, ("127.0.0.1", 5432)),
        ];
        for (url, default, (host, port)) in cases {
            assert_eq!(host_port(url, default), (host.to_string(), port), "{url}");
        }
    }

    #[test]
    fn a_server_that_is_down_is_named_with_its_variable_and_no_password() {
        let err = StoresError::Down {
            what: "Redis",
            var: "REDIS_URL",
            url: redact("redis://u:secret@127.0.0.1:1"),
        };
        assert_eq!(
            err.to_string(),
            "Redis does not answer at redis://u:***@127.0.0.1:1 (set REDIS_URL, or use --stores memory)"
        );
    }

    #[test]
    fn a_closed_port_does_not_answer() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(runtime.block_on(answers(("127.0.0.1", port))));
        assert!(runtime.block_on(answers(format!("127.0.0.1:{port}"))));
        drop(listener);
        assert!(!runtime.block_on(answers(("127.0.0.1", port))));
    }
}
