//! Redis and PostgreSQL servers of a test's own that speak TLS, presenting a certificate
//! from the test's CA ([`TestCa`]): [`RedisTlsServer`] (TLS only) and [`PgTlsCluster`]
//! (`ssl=on`, with databases that refuse plain connections).
//!
//! They need redis-server and PostgreSQL's programs: under CI (CI=true) a test without them
//! fails, elsewhere it is skipped, loudly (`None`).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio_postgres::NoTls;

use crate::ports::free_port;
use crate::stores::PgCluster;
use crate::tls::{ServerFiles, TestCa};

/// Whether `what` is installed; when not, a test fails under CI and is skipped elsewhere.
fn installed(what: &str, found: bool) -> bool {
    if found {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is not installed (scripts/test.sh installs it)");
    }
    eprintln!("SKIPPED: {what} is not installed; run scripts/test.sh");
    false
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing ever listened on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A redis-server that accepts TLS connections only, on 127.0.0.1, presenting a
/// certificate for `localhost` and `127.0.0.1`; killed when dropped.
pub struct RedisTlsServer {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RedisTlsServer {
    /// `None` (skipped) where redis-server is not installed, outside CI.
    pub fn start(ca: &TestCa) -> Option<RedisTlsServer> {
        let found = Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed("redis-server", found) {
            return None;
        }
        let ServerFiles { cert, key } = ca.server_files(&["localhost", "127.0.0.1"]);
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let path = |p: &Path| p.display().to_string();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", "0", "--save", ""])
            .args(["--appendonly", "no", "--tls-auth-clients", "no"])
            .args(["--tls-port", &port.to_string()])
            .args([
                "--tls-cert-file",
                &path(&cert),
                "--tls-key-file",
                &path(&key),
            ])
            .args(["--tls-ca-cert-file", &path(&ca.ca_file)])
            .args(["--dir", &path(dir.path())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        wait_for_port(port);
        Some(RedisTlsServer {
            port,
            child,
            _dir: dir,
        })
    }

    /// `rediss://<host>:<port>`: `localhost` and `127.0.0.1` are the names its
    /// certificate holds.
    pub fn url(&self, host: &str) -> String {
        format!("rediss://{host}:{}", self.port)
    }
}

impl Drop for RedisTlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL cluster of the test's own ([`PgCluster`]) with `ssl=on`, presenting a
/// certificate for `localhost` and `127.0.0.1`. It still accepts plain connections, but
/// not to the databases [`PgTlsCluster::tls_only_database`] makes.
pub struct PgTlsCluster {
    cluster: PgCluster,
    /// The certificate and key, readable by the server's user alone (as it requires).
    files: PathBuf,
    hba_file: PathBuf,
}

impl PgTlsCluster {
    /// `None` (skipped) where PostgreSQL is not installed, outside CI.
    pub async fn start(ca: &TestCa) -> Option<PgTlsCluster> {
        let found = std::env::var_os("ECOMMERCE_PG_BIN").is_some()
            || Path::new("/usr/lib/postgresql").is_dir();
        if !installed("PostgreSQL (/usr/lib/postgresql/*/bin)", found) {
            return None;
        }
        let cluster = PgCluster::start();
        let files = std::env::temp_dir().join(format!(
            "ecommerce-pgtls-{:016x}",
            rand::thread_rng().gen::<u64>()
        ));
        std::fs::create_dir_all(&files).unwrap();
        let ServerFiles { cert, key } = ca.server_files(&["localhost", "127.0.0.1"]);
        let (cert_to, key_to) = (files.join("server.crt"), files.join("server.key"));
        std::fs::copy(&cert, &cert_to).unwrap();
        std::fs::copy(&key, &key_to).unwrap();
        for (mode, path) in [("700", &files), ("600", &cert_to), ("600", &key_to)] {
            run(Command::new("chown").args(["postgres", &path.display().to_string()]));
            run(Command::new("chmod").args([mode, &path.display().to_string()]));
        }
        let mut pg = PgTlsCluster {
            cluster,
            files,
            hba_file: PathBuf::new(),
        };
        let admin = pg.admin().await;
        for sql in [
            format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert_to.display()),
            format!("ALTER SYSTEM SET ssl_key_file = '{}'", key_to.display()),
            "ALTER SYSTEM SET ssl = on".to_string(),
        ] {
            admin.batch_execute(&sql).await.unwrap();
        }
        let hba: String = admin.query_one("SHOW hba_file", &[]).await.unwrap().get(0);
        pg.hba_file = PathBuf::from(hba);
        pg.reload(&admin).await;
        // New sessions see the reloaded configuration.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ssl: String = pg
                .admin()
                .await
                .query_one("SHOW ssl", &[])
                .await
                .unwrap()
                .get(0);
            if ssl == "on" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "ssl never came on: see the cluster's log"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(pg)
    }

    pub fn port(&self) -> u16 {
        self.cluster.port
    }

    /// `postgres://postgres@<host>:<port>/<database>?<params>`.
    pub fn url(&self, host: &str, database: &str, params: &str) -> String {
        let url = format!("postgres://postgres@{host}:{}/{database}", self.port());
        if params.is_empty() {
            url
        } else {
            format!("{url}?{params}")
        }
    }

    /// A new database that refuses plain connections (the built-in catalog migrated
    /// into it first when `migrated`); its name.
    pub async fn tls_only_database(&self, migrated: bool) -> String {
        let name = format!("ecommerce_tls_{:016x}", rand::thread_rng().gen::<u64>());
        let admin = self.admin().await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        if migrated {
            let products = ecommerce::catalog::parse_csv(ecommerce::catalog::BUILTIN_CSV).unwrap();
            let plain = self.url("127.0.0.1", &name, "sslmode=disable");
            ecommerce::stores::postgres::migrate(&plain, &products)
                .await
                .expect("migration");
        }
        let hba = std::fs::read_to_string(&self.hba_file).unwrap();
        let refuse = format!("hostnossl {name} all 127.0.0.1/32 reject\n");
        std::fs::write(&self.hba_file, refuse + &hba).unwrap();
        self.reload(&admin).await;
        // Applied once a plain connection is refused.
        let plain = self.url("127.0.0.1", &name, "sslmode=disable");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio_postgres::connect(&plain, NoTls).await.is_ok() {
            assert!(
                Instant::now() < deadline,
                "{name} still takes plain connections"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        name
    }

    /// A plain connection to the `postgres` database, its driver spawned.
    async fn admin(&self) -> tokio_postgres::Client {
        let url = self.url("127.0.0.1", "postgres", "sslmode=disable");
        let (client, connection) = tokio_postgres::connect(&url, NoTls)
            .await
            .expect("connect to postgres");
        tokio::spawn(connection);
        client
    }

    async fn reload(&self, admin: &tokio_postgres::Client) {
        admin
            .batch_execute("SELECT pg_reload_conf()")
            .await
            .unwrap();
    }

    /// Connections of the shop's (`application_name` ecommerce) to this cluster that are
    /// encrypted, and all of them.
    pub async fn shop_connections(&self) -> (i64, i64) {
        let row = self
            .admin()
            .await
            .query_one(
                "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a \
                 JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'ecommerce'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }
}

impl Drop for PgTlsCluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.files);
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("command runs");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
}
