//! The shop as the benches run it: its stores made ready, its roles as processes
//! ([`support::processes::Topology`], the tests' way of starting them) or the whole shop
//! in one process, each ready before it is measured; and the few requests that check it.

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ecommerce::cli::{serve_command, ServeCommand};
use ecommerce::config::{DelayRange, Secret, Settings};
use ecommerce::role::Role;
use ecommerce::stores::StoreUrl;
use support::processes::{self, Output, Topology};

use crate::procs::{self, Owned, Registered};

/// How long every role may take to answer 200 on `/readyz` after it started.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// Every role, on consecutive ports from `base_port` (`Settings::local`), carts and
/// sessions on Redis, the catalog on PostgreSQL, no payment delay, one session secret for
/// all: wired as in production (web-gateway → api-gateway → services).
pub fn production(base_port: u16, redis: &str, postgres: &str) -> Result<Settings, Error> {
    let mut settings = one_process(base_port, redis, postgres)?;
    let urls: BTreeMap<Role, String> = settings
        .listen
        .iter()
        .map(|(role, address)| (*role, format!("http://{address}")))
        .collect();
    settings = processes::wire(&settings, &urls, &BTreeMap::new());
    Ok(settings)
}

/// The same shop unwired: what `--role all` in one process at `base_port` serves.
pub fn one_process(base_port: u16, redis: &str, postgres: &str) -> Result<Settings, Error> {
    let store = |url: &str| url.parse::<StoreUrl>().map_err(Error::StoreUrl);
    let mut settings = Settings::local(Role::ALL.to_vec(), base_port);
    settings.cart_data = store(redis)?;
    settings.session_data = store(redis)?;
    settings.product_data = store(postgres)?;
    settings.payment_delay = DelayRange {
        min_ms: 0,
        max_ms: 0,
    };
    // One key for every process, as a deployment has (random, so a run signs its own).
    settings.session_secret = Secret::new(Secret::random().expose().to_string());
    Ok(settings)
}

/// The command of `--role all`: the first role's, serving every role of `settings` from
/// its address (the others on the next ports, in role order, as `Settings::local` has
/// them).
pub fn one_process_command(settings: &Settings) -> ServeCommand {
    let first = settings.roles.first().copied().unwrap_or(Role::WebGateway);
    let mut command = serve_command(settings, first);
    if let Some(i) = command.args.iter().position(|a| a == "--role") {
        command.args[i + 1] = "all".into();
    }
    command
}

/// The shop's roles as processes of one topology, each ready.
pub struct Roles {
    topology: Topology,
    _watch: Vec<Registered>,
}

impl Roles {
    /// Starts every role of `settings` as its own process of `binary` (their logs in
    /// `logs/<prefix><role>.log`, `env` added to theirs), and returns once each answers
    /// 200 on `/readyz`.
    pub async fn start(
        binary: &Path,
        settings: Settings,
        env: &[(String, String)],
        logs: &Path,
        prefix: &str,
        http: &Http,
    ) -> Result<Roles, Error> {
        let mut topology = Topology::new(binary, settings)
            .env("RUST_LOG", "warn")
            .ready_within(READY_WITHIN);
        for (name, value) in env {
            topology = topology.env(name.clone(), value.clone());
        }
        let log_of = |role: Role| Output::File(logs.join(format!("{prefix}{role}.log")));
        let started = topology.start_all(log_of).await;
        let watch = topology
            .processes()
            .iter()
            .map(|p| Registered::new(p.pid()))
            .collect();
        let roles = Roles {
            topology,
            _watch: watch,
        };
        if let Err(e) = started {
            return Err(roles.failed(e.into(), logs, prefix));
        }
        for role in roles.roles() {
            if let Err(e) = http.wait_ready(&roles.address(role)).await {
                return Err(roles.failed(e, logs, prefix));
            }
        }
        Ok(roles)
    }

    fn failed(self, error: Error, logs: &Path, prefix: &str) -> Error {
        let tails = self
            .roles()
            .into_iter()
            .map(|r| {
                let log = logs.join(format!("{prefix}{r}.log"));
                format!("--- {}\n{}", log.display(), procs::tail(&log, 5))
            })
            .collect::<Vec<_>>()
            .join("\n");
        // Dropping the topology kills what it started.
        drop(self);
        Error::Start {
            source: Box::new(error),
            logs: tails,
        }
    }

    pub fn roles(&self) -> Vec<Role> {
        self.topology.processes().iter().map(|p| p.role()).collect()
    }

    /// `host:port` of `role`.
    pub fn address(&self, role: Role) -> String {
        self.topology.settings().listen[&role].clone()
    }

    pub fn url(&self, role: Role, path: &str) -> String {
        format!("http://{}{path}", self.address(role))
    }

    pub fn pid(&self, role: Role) -> u32 {
        self.topology
            .processes()
            .iter()
            .find(|p| p.role() == role)
            .map_or(0, |p| p.pid())
    }

    pub fn pids(&self) -> Vec<u32> {
        self.topology.processes().iter().map(|p| p.pid()).collect()
    }

    /// `Err` naming a role that has exited.
    pub fn check_running(&mut self) -> Result<(), Error> {
        Ok(self.topology.check_running()?)
    }

    /// SIGTERM to all, callers first; SIGKILL to those still running after the drain.
    pub async fn stop(mut self) -> Result<(), Error> {
        self.topology.stop_all().await?;
        Ok(())
    }
}

/// The whole shop in one process (`--role all`), ready.
pub struct OneProcess {
    process: Owned,
    settings: Settings,
}

impl OneProcess {
    pub async fn start(
        binary: &Path,
        settings: Settings,
        log: &Path,
        http: &Http,
    ) -> Result<OneProcess, Error> {
        let command = one_process_command(&settings);
        let file = std::fs::File::create(log).map_err(|source| Error::Log {
            path: log.to_path_buf(),
            source,
        })?;
        let mut cmd = Command::new(binary);
        cmd.args(&command.args)
            .envs(command.env.iter().map(|(k, v)| (*k, v)))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|source| Error::Log {
                path: log.to_path_buf(),
                source,
            })?)
            .stderr(file);
        let mut process = Owned::spawn("ecommerce --role all", cmd)?;
        for address in settings.listen.values() {
            let ready = http.wait_ready(address);
            if let Err(e) = ready.await {
                let running = process.running();
                return Err(Error::Start {
                    source: Box::new(e),
                    logs: format!(
                        "--- {} ({})\n{}",
                        log.display(),
                        if running { "running" } else { "exited" },
                        procs::tail(log, 20)
                    ),
                });
            }
        }
        Ok(OneProcess { process, settings })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn url(&self, role: Role, path: &str) -> String {
        format!("http://{}{path}", self.settings.listen[&role])
    }

    pub fn stop(self) -> Result<(), Error> {
        self.process
            .stop(self.settings.shutdown_timeout + Duration::from_secs(5))?;
        Ok(())
    }
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub set_cookies: Vec<String>,
}

/// HTTP to the shop's roles (awc, so one client per bench and keep-alive connections).
pub struct Http {
    client: awc::Client,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        Http {
            client: awc::Client::builder()
                .timeout(Duration::from_secs(10))
                .disable_redirects()
                .finish(),
        }
    }

    /// `method url`, with a JSON body when one is given (and `content_type` otherwise
    /// given), read whole.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        body: Option<&str>,
        content_type: &str,
    ) -> Result<Answer, Error> {
        let failed = |source: Box<dyn std::error::Error>| Error::Http {
            method: method.to_string(),
            url: url.to_string(),
            source,
        };
        let method_ =
            awc::http::Method::from_bytes(method.as_bytes()).map_err(|e| failed(Box::new(e)))?;
        let request = self.client.request(method_, url);
        let sent = match body {
            Some(body) => {
                request
                    .insert_header(("Content-Type", content_type))
                    .send_body(body.to_string())
                    .await
            }
            None => request.send().await,
        };
        let mut response = sent.map_err(|e| failed(e.to_string().into()))?;
        let bytes = response
            .body()
            .limit(16 * 1024 * 1024)
            .await
            .map_err(|e| failed(Box::new(e)))?;
        let set_cookies = response
            .headers()
            .get_all("set-cookie")
            .filter_map(|v| v.to_str().ok().map(String::from))
            .collect();
        Ok(Answer {
            status: response.status().as_u16(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
            set_cookies,
        })
    }

    pub async fn get(&self, url: &str) -> Result<Answer, Error> {
        self.send("GET", url, None, "").await
    }

    pub async fn json(&self, method: &str, url: &str, body: &str) -> Result<Answer, Error> {
        self.send(method, url, Some(body), "application/json").await
    }

    /// `method url` answers 200 and its body contains `expect`; `what` names the check.
    pub async fn expect(
        &self,
        what: &str,
        method: &str,
        url: &str,
        body: Option<&str>,
        expect: &str,
    ) -> Result<Answer, Error> {
        let answer = match body {
            Some(b) => self.json(method, url, b).await?,
            None => self.send(method, url, None, "").await?,
        };
        if answer.status != 200 || !answer.body.contains(expect) {
            return Err(Error::Check {
                what: what.to_string(),
                detail: format!(
                    "{method} {url}: {} {}",
                    answer.status,
                    answer.body.chars().take(300).collect::<String>()
                ),
            });
        }
        Ok(answer)
    }

    /// A signed session, as a browser gets it: the `session_id` cookie of `GET /` on the
    /// web-gateway at `web`.
    pub async fn session(&self, web: &str) -> Result<String, Error> {
        let answer = self.get(&format!("{web}/")).await?;
        session_cookie(&answer.set_cookies).ok_or_else(|| Error::Check {
            what: "a session".into(),
            detail: format!("GET {web}/ set no session_id cookie ({})", answer.status),
        })
    }

    /// The Prometheus text of `url`.
    pub async fn metrics(&self, url: &str) -> Result<String, Error> {
        let answer = self.get(url).await?;
        if answer.status == 200 {
            Ok(answer.body)
        } else {
            Err(Error::Check {
                what: "metrics".into(),
                detail: format!("GET {url}: {}", answer.status),
            })
        }
    }

    /// Waits until `http://address/readyz` answers 200, within [`READY_WITHIN`].
    pub async fn wait_ready(&self, address: &str) -> Result<(), Error> {
        let url = format!("http://{address}/readyz");
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let last = match self.get(&url).await {
                Ok(a) if a.status == 200 => return Ok(()),
                Ok(a) => format!("{} {}", a.status, a.body),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(Error::NotReady {
                    url,
                    within: READY_WITHIN,
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The value of the `session_id` cookie among `Set-Cookie` headers.
pub fn session_cookie(set_cookies: &[String]) -> Option<String> {
    set_cookies.iter().find_map(|header| {
        let pair = header.split(';').next()?.trim();
        let value = pair.strip_prefix("session_id=")?;
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// The first base port from `from` (in steps of 10) with `count` free ports.
pub fn free_block(from: u16, count: u16) -> Result<u16, Error> {
    let mut base = from;
    while base < 60_000 {
        if (base..base + count).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return Ok(base);
        }
        base += 10;
    }
    Err(Error::NoPorts { from, count })
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    StoreUrl(String),
    #[error("cannot write the log {path}")]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the shop did not start; its logs:\n{logs}")]
    Start {
        #[source]
        source: Box<Error>,
        logs: String,
    },
    #[error("{url} did not answer 200 within {within:?} (last: {last})")]
    NotReady {
        url: String,
        within: Duration,
        last: String,
    },
    #[error("{method} {url} failed")]
    Http {
        method: String,
        url: String,
        #[source]
        source: Box<dyn std::error::Error>,
    },
    #[error("{what}: {detail}")]
    Check { what: String, detail: String },
    #[error("no block of {count} free ports from {from}")]
    NoPorts { from: u16, count: u16 },
    #[error(transparent)]
    Processes(#[from] processes::Error),
    #[error(transparent)]
    Process(#[from] procs::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_is_the_session_id_cookie() {
        let headers = vec![
            "theme=dark; Path=/".to_string(),
            "session_id=abc.def; Path=/; SameSite=Lax".to_string(),
        ];
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc.def"));
        assert_eq!(session_cookie(&["session_id=; Path=/".into()]), None);
        assert_eq!(session_cookie(&[]), None);
    }

    #[test]
    fn the_production_settings_wire_every_role_through_the_api_gateway() {
        let s = production(
            9100,
            "redis://127.0.0.1:6379",
            "postgres://postgres@127.0.0.1:5432/products",
        )
        .unwrap();
        assert_eq!(s.roles, Role::ALL.to_vec());
        assert_eq!(s.listen[&Role::Product], "127.0.0.1:9106");
        assert_eq!(s.api_gateway_url.as_deref(), Some("http://127.0.0.1:9101"));
        assert_eq!(s.upstreams[&Role::Cart], "http://127.0.0.1:9102");
        assert_eq!(s.payment_delay.max_ms, 0);
        assert!(!s.session_secret.generated);
        let cart = serve_command(&s, Role::Cart).args.join(" ");
        assert!(
            cart.contains("--cart-data redis://127.0.0.1:6379"),
            "{cart}"
        );
    }

    #[test]
    fn one_process_serves_every_role_from_the_first_address() {
        let s = one_process(9200, "redis://r:6379", "postgres://p/products").unwrap();
        let args = one_process_command(&s).args;
        let at = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
        assert_eq!(at("--role"), "all");
        assert_eq!(at("--listen"), "127.0.0.1:9200");
        assert_eq!(at("--payment-delay-ms"), "0-0");
        assert!(!args
            .iter()
            .any(|a| a == "--upstream" || a == "--api-gateway-url"));
    }
}
