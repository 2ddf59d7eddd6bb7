//! A Redis replica of the shop's Redis, as the chart deploys one: cart-data and
//! session-data are given it (`--cart-data-replica`, `--session-data-replica`), so that
//! writes wait for it and `ecommerce_store_unreplicated_writes_total` is exposed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::procs::{self, Owned};
use crate::stores::host_port;

/// How long the replica may take to copy the primary and report its link up.
const SYNCED_WITHIN: Duration = Duration::from_secs(30);

/// A `redis://` URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    /// `/0`, or empty.
    pub path: String,
}

impl RedisUrl {
    pub fn parse(url: &str) -> RedisUrl {
        let (host, port) = host_port(url, 6379);
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], rest[at..].to_string()),
            None => (rest, String::new()),
        };
        let userinfo = authority.rsplit_once('@').map(|(info, _)| info);
        let (user, password) = match userinfo.map(|info| info.split_once(':')) {
            Some(Some((user, password))) => (user, Some(password)),
            Some(None) => (userinfo.unwrap_or_default(), None),
            None => ("", None),
        };
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        RedisUrl {
            host,
            port,
            user: some(user),
            password: password.and_then(some),
            path,
        }
    }

    /// The replica's URL: the same database, on 127.0.0.1:`port`, with the password
    /// (the replica asks for the primary's).
    pub fn replica(&self, port: u16) -> String {
        let auth = self
            .password
            .as_ref()
            .map(|p| format!(":{p}@"))
            .unwrap_or_default();
        format!("redis://{auth}127.0.0.1:{port}{}", self.path)
    }
}

/// The arguments of a replica of `primary` on 127.0.0.1:`port` keeping its copy in `dir`.
pub fn arguments(primary: &RedisUrl, port: u16, dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--bind",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.display().to_string(),
        "--replicaof",
        &primary.host,
        &primary.port.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(password) = &primary.password {
        args.extend(["--masterauth".into(), password.clone()]);
        args.extend(["--requirepass".into(), password.clone()]);
    }
    if let Some(user) = primary.user.as_ref().filter(|u| *u != "default") {
        args.extend(["--masteruser".into(), user.clone()]);
    }
    args
}

/// A running replica.
pub struct Replica {
    pub url: String,
    process: Owned,
}

impl Replica {
    /// Starts `redis-server` as a replica of `primary_url` on a free port, and waits
    /// until it has copied the primary.
    pub async fn start(
        server: &Path,
        primary_url: &str,
        dir: &Path,
        log: &Path,
    ) -> Result<Replica, Error> {
        let primary = RedisUrl::parse(primary_url);
        let port = support::ports::free_port();
        std::fs::create_dir_all(dir).map_err(|source| Error::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let file = std::fs::File::create(log).map_err(|source| Error::Dir {
            path: log.to_path_buf(),
            source,
        })?;
        let errors = file.try_clone().map_err(|source| Error::Dir {
            path: log.to_path_buf(),
            source,
        })?;
        let mut command = Command::new(server);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command
            .args(arguments(&primary, port, dir))
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(errors);
        let mut process = Owned::spawn("redis-server (replica)", command)?;
        let deadline = Instant::now() + SYNCED_WITHIN;
        loop {
            let info = replication(port, primary.password.as_deref()).await;
            if info
                .as_deref()
                .is_ok_and(|i| i.contains("master_link_status:up"))
            {
                break;
            }
            if !process.running() || Instant::now() >= deadline {
                let _ = process.stop(Duration::from_secs(5));
                return Err(Error::NotSynced {
                    log: log.to_path_buf(),
                    within: SYNCED_WITHIN,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(Replica {
            url: primary.replica(port),
            process,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn stop(self, within: Duration) -> Result<(), procs::Error> {
        self.process.stop(within).map(|_| ())
    }
}

/// `INFO replication` of the server on 127.0.0.1:`port`, in RESP, within two seconds.
async fn replication(port: u16, password: Option<&str>) -> std::io::Result<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut request = String::new();
        if let Some(password) = password {
            request.push_str(&command(&["AUTH", password]));
        }
        request.push_str(&command(&["INFO", "replication"]));
        request.push_str(&command(&["QUIT"]));
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))?
}

/// One command as a RESP array of bulk strings.
fn command(parts: &[&str]) -> String {
    let mut text = format!("*{}\r\n", parts.len());
    for part in parts {
        text.push_str(&format!("${}\r\n{part}\r\n", part.len()));
    }
    text
}

/// Why no replica runs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write {}", .path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Process(#[from] procs::Error),
    #[error("the replica did not copy the primary within {within:?} (its log: {})", .log.display())]
    NotSynced { log: PathBuf, within: Duration },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_serves_the_primary_s_database_on_loopback() {
        let plain = RedisUrl::parse("redis://127.0.0.1:6379");
        assert_eq!((plain.host.as_str(), plain.port), ("127.0.0.1", 6379));
        assert_eq!(plain.replica(20001), "redis://127.0.0.1:20001");

        let full = RedisUrl::parse("redis://shop:s3cret@cache:6380/2");
        assert_eq!(
            full,
            RedisUrl {
                host: "cache".into(),
                port: 6380,
                user: Some("shop".into()),
                password: Some("s3cret".into()),
                path: "/2".into(),
            }
        );
        assert_eq!(full.replica(20002), "redis://:s3cret@127.0.0.1:20002/2");
        assert_eq!(
            RedisUrl::parse("redis://:pw@h").password.as_deref(),
            Some("pw")
        );
    }

    #[test]
    fn the_replica_follows_the_primary_and_keeps_nothing_on_disk() {
        let primary = RedisUrl::parse("redis://:pw@127.0.0.1:6379/0");
        let args = arguments(&primary, 20003, Path::new("/t/replica")).join(" ");
        assert!(
            args.starts_with(
                "--bind 127.0.0.1 --port 20003 --save  --appendonly no --dir /t/replica"
            ),
            "{args}"
        );
        assert!(args.contains("--replicaof 127.0.0.1 6379"), "{args}");
        assert!(args.contains("--masterauth pw --requirepass pw"), "{args}");
        assert!(!args.contains("--masteruser"), "{args}");
    }

    #[test]
    fn commands_are_resp_arrays() {
        assert_eq!(
            command(&["INFO", "replication"]),
            "*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n"
        );
    }
}
