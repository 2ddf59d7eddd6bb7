//! What `cargo xtask topology` is told through its environment, parsed once at the edge,
//! the `Settings` of the roles it starts, and the state file it leaves for later calls.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ecommerce::config::{DelayRange, Settings};
use ecommerce::role::Role;
use ecommerce::stores::StoreUrl;

/// The environment, as `--help` shows it (the variables `scripts/topology.sh` read).
pub const ENVIRONMENT: &str = "\
--stores memory (default): the embedded stores and catalog, nothing else needed.
--stores real: cart-data and session-data on Redis, product-data on PostgreSQL (the
  database is created when missing, then `ecommerce migrate` loads the catalog).

Environment:
  BASE_PORT         web-gateway's port; the others follow in role order    (8080)
                    web-gateway +0, api-gateway +1, cart +2, checkout +3,
                    content +4, payment +5, product +6
  PAYMENT_DELAY_MS  payment's simulated processing time, MIN-MAX     (500-1000)
  REDIS_URL         --stores real: cart-data and session-data (redis://127.0.0.1:6379)
  POSTGRES_URL      --stores real: product-data (postgres://postgres@127.0.0.1:5432/products)
  SESSION_SECRET    web-gateway's cookie key              (random for each start)
  TOPOLOGY_DIR      state: PID files, logs                (target/topology)
  ECOMMERCE_BIN     the binary to run                     (target/release/ecommerce,
                    built with `cargo build --release` when ECOMMERCE_BIN is not set)
  RUST_LOG          the roles' log level                  (info)
  WORKERS           worker threads per role               (the binary's default)
  READY_TIMEOUT     seconds to wait for every /readyz     (20)
  STOP_TIMEOUT      seconds between SIGTERM and SIGKILL   (15)
The roles inherit the rest of the environment (OTEL_EXPORTER_OTLP_ENDPOINT, say).

Logs: $TOPOLOGY_DIR/<role>.log (kept after stop). PIDs: $TOPOLOGY_DIR/pids/<role>.pid.";

/// Where the stores live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stores {
    /// The embedded stores and catalog.
    Memory,
    /// cart-data and session-data on Redis, product-data on PostgreSQL.
    Real,
}

impl Stores {
    pub fn as_str(self) -> &'static str {
        match self {
            Stores::Memory => "memory",
            Stores::Real => "real",
        }
    }

    fn parse(text: &str) -> Option<Stores> {
        [Stores::Memory, Stores::Real]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every command needs: where the state is, how long a stop may take.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    pub dir: PathBuf,
    pub stop_timeout: Duration,
}

/// What starting needs besides.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub base_port: u16,
    pub payment_delay: DelayRange,
    pub redis_url: String,
    pub postgres_url: String,
    pub session_secret: Option<String>,
    /// `None`: build the release binary and run that.
    pub binary: Option<PathBuf>,
    pub rust_log: String,
    /// `None`: the binary's default.
    pub workers: Option<usize>,
    pub ready_timeout: Duration,
}

/// A variable whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var} must be {expected}, not '{value}'")]
pub struct ConfigError {
    pub var: &'static str,
    pub expected: &'static str,
    pub value: String,
}

/// `name`'s value; empty counts as unset (as `${NAME:-default}` has it).
fn var(env: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

fn parse<T>(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    expected: &'static str,
    default: T,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, ConfigError> {
    match var(env, name) {
        None => Ok(default),
        Some(value) => parse(value.trim()).ok_or(ConfigError {
            var: name,
            expected,
            value,
        }),
    }
}

fn seconds(text: &str) -> Option<Duration> {
    let secs: f64 = text.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// A path as given, or taken from `cwd` when relative (where the caller ran the command).
fn path(cwd: &Path, value: String) -> PathBuf {
    let path = PathBuf::from(value);
    if path.is_absolute() {
        path
    } else {
        cwd.join(path)
    }
}

impl Common {
    pub fn from_env(
        root: &Path,
        cwd: &Path,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Common, ConfigError> {
        Ok(Common {
            dir: var(env, "TOPOLOGY_DIR")
                .map(|dir| path(cwd, dir))
                .unwrap_or_else(|| root.join("target").join("topology")),
            stop_timeout: parse(
                env,
                "STOP_TIMEOUT",
                "a number of seconds",
                Duration::from_secs(15),
                seconds,
            )?,
        })
    }

    pub fn pid_dir(&self) -> PathBuf {
        self.dir.join("pids")
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join("topology.env")
    }

    pub fn log(&self, role: Role) -> PathBuf {
        self.dir.join(format!("{role}.log"))
    }
}

/// The highest BASE_PORT whose block of ports (one per role) ends at or below 65535.
fn highest_base_port() -> u16 {
    u16::MAX - (Role::ALL.len() as u16 - 1)
}

pub fn base_port(env: &impl Fn(&str) -> Option<String>) -> Result<u16, ConfigError> {
    parse(
        env,
        "BASE_PORT",
        // The documented range: 65535 less the other roles' ports.
        "a port number (1-65529)",
        8080,
        |text| {
            text.parse()
                .ok()
                .filter(|port| (1..=highest_base_port()).contains(port))
        },
    )
}

impl Launch {
    pub fn from_env(
        cwd: &Path,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Launch, ConfigError> {
        Ok(Launch {
            base_port: base_port(env)?,
            payment_delay: parse(
                env,
                "PAYMENT_DELAY_MS",
                "MIN-MAX milliseconds (e.g. 500-1000, or 0)",
                DelayRange::DEFAULT,
                |text| text.parse().ok(),
            )?,
            redis_url: var(env, "REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            postgres_url: var(env, "POSTGRES_URL")
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/products".into()),
            session_secret: var(env, "SESSION_SECRET"),
            binary: var(env, "ECOMMERCE_BIN").map(|bin| path(cwd, bin)),
            rust_log: var(env, "RUST_LOG").unwrap_or_else(|| "info".into()),
            workers: parse(env, "WORKERS", "a number of threads", None, |text| {
                text.parse().ok().map(Some)
            })?,
            ready_timeout: parse(
                env,
                "READY_TIMEOUT",
                "a number of seconds",
                Duration::from_secs(20),
                seconds,
            )?,
        })
    }

    /// The stores' URLs for `stores`: (cart-data and session-data, product-data).
    fn store_urls(&self, stores: Stores) -> Result<(StoreUrl, StoreUrl), ConfigError> {
        if stores == Stores::Memory {
            return Ok((StoreUrl::Memory, StoreUrl::Memory));
        }
        let redis = match self.redis_url.parse() {
            Ok(url @ StoreUrl::Redis(_)) => url,
            _ => {
                return Err(ConfigError {
                    var: "REDIS_URL",
                    expected: "a redis:// URL",
                    value: ecommerce::stores::redact(&self.redis_url),
                })
            }
        };
        let postgres = match self.postgres_url.parse() {
            Ok(url @ StoreUrl::Postgres(_)) => url,
            _ => {
                return Err(ConfigError {
                    var: "POSTGRES_URL",
                    expected: "a postgres:// URL",
                    value: ecommerce::stores::redact(&self.postgres_url),
                })
            }
        };
        Ok((redis, postgres))
    }
}

/// Every role on 127.0.0.1 at `base_port` plus its offset, wired as in a deployment
/// (web-gateway and checkout call the api-gateway, which forwards to the services) by
/// the tests' own `support::processes::wire`.
pub fn wired(base_port: u16) -> Settings {
    let local = Settings::local(Role::ALL.to_vec(), base_port);
    let urls: BTreeMap<Role, String> = local
        .listen
        .iter()
        .map(|(role, address)| (*role, format!("http://{address}")))
        .collect();
    support::processes::wire(&local, &urls, &BTreeMap::new())
}

/// The settings of a start: [`wired`], with the payment delay, the workers and the stores
/// as told. The session secret stays a generated one, which no command line shows: the
/// real one goes to the processes through the environment (`ECOMMERCE_SESSION_SECRET`),
/// so that `ps` does not show it either.
pub fn settings(launch: &Launch, stores: Stores) -> Result<Settings, ConfigError> {
    let mut settings = wired(launch.base_port);
    settings.payment_delay = launch.payment_delay;
    settings.workers = launch.workers.unwrap_or(0);
    let (redis, postgres) = launch.store_urls(stores)?;
    settings.cart_data = redis.clone();
    settings.session_data = redis;
    settings.product_data = postgres;
    Ok(settings)
}

/// `topology.env`: what a start left for `status` and `stop`, one `KEY=value` a line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub stores: Option<Stores>,
    pub base_port: Option<u16>,
    pub binary: Option<PathBuf>,
    /// When it started, UTC (`2024-05-01T12:00:00Z`).
    pub started: Option<String>,
}

impl State {
    pub fn render(&self) -> String {
        let mut text = String::new();
        let mut line = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                text.push_str(&format!("{key}={value}\n"));
            }
        };
        line("STORES", self.stores.map(|s| s.to_string()));
        line("BASE_PORT", self.base_port.map(|p| p.to_string()));
        line("BIN", self.binary.as_ref().map(|b| b.display().to_string()));
        line("STARTED", self.started.clone());
        text
    }

    /// Lines it does not know are skipped, as are values that do not parse.
    pub fn parse(text: &str) -> State {
        let mut state = State::default();
        for (key, value) in text.lines().filter_map(|l| l.split_once('=')) {
            match key.trim() {
                "STORES" => state.stores = Stores::parse(value.trim()),
                "BASE_PORT" => state.base_port = value.trim().parse().ok(),
                "BIN" => state.binary = Some(PathBuf::from(value)),
                "STARTED" => state.started = Some(value.to_string()),
                _ => {}
            }
        }
        state
    }
}

/// `time` as `YYYY-MM-DDTHH:MM:SSZ` (what `date -u +%FT%TZ` prints).
pub fn utc_timestamp(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = crate::report::civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecommerce::cli::serve_command;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn launch(pairs: &[(&str, &str)]) -> Result<Launch, ConfigError> {
        Launch::from_env(Path::new("/here"), &env(pairs))
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let common = Common::from_env(Path::new("/repo"), Path::new("/here"), &env(&[])).unwrap();
        assert_eq!(common.dir, Path::new("/repo/target/topology"));
        assert_eq!(common.pid_dir(), Path::new("/repo/target/topology/pids"));
        assert_eq!(
            common.log(Role::Cart),
            Path::new("/repo/target/topology/cart.log")
        );
        assert_eq!(common.stop_timeout, Duration::from_secs(15));

        let launch = launch(&[]).unwrap();
        assert_eq!(
            launch,
            Launch {
                base_port: 8080,
                payment_delay: DelayRange::DEFAULT,
                redis_url: "redis://127.0.0.1:6379".into(),
                postgres_url: "postgres://postgres@127.0.0.1:5432/products".into(),
                session_secret: None,
                binary: None,
                rust_log: "info".into(),
                workers: None,
                ready_timeout: Duration::from_secs(20),
            }
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let all_empty: Vec<(&str, &str)> = [
            "BASE_PORT",
            "PAYMENT_DELAY_MS",
            "SESSION_SECRET",
            "ECOMMERCE_BIN",
            "WORKERS",
            "READY_TIMEOUT",
            "RUST_LOG",
        ]
        .map(|name| (name, ""))
        .to_vec();
        assert_eq!(launch(&all_empty).unwrap(), launch(&[]).unwrap());
    }

    #[test]
    fn variables_are_read_and_relative_paths_taken_from_where_it_runs() {
        let launch = launch(&[
            ("BASE_PORT", "18080"),
            ("PAYMENT_DELAY_MS", "0"),
            ("SESSION_SECRET", "s3cret"),
            ("ECOMMERCE_BIN", "build/ecommerce"),
            ("WORKERS", "2"),
            ("READY_TIMEOUT", "2.5"),
            ("RUST_LOG", "warn"),
        ])
        .unwrap();
        assert_eq!(launch.base_port, 18080);
        assert_eq!(
            (launch.payment_delay.min_ms, launch.payment_delay.max_ms),
            (0, 0)
        );
        assert_eq!(launch.session_secret.as_deref(), Some("s3cret"));
        assert_eq!(
            launch.binary.as_deref(),
            Some(Path::new("/here/build/ecommerce"))
        );
        assert_eq!(launch.workers, Some(2));
        assert_eq!(launch.ready_timeout, Duration::from_millis(2500));
        assert_eq!(launch.rust_log, "warn");

        let common = Common::from_env(
            Path::new("/repo"),
            Path::new("/here"),
            &env(&[("TOPOLOGY_DIR", "state"), ("STOP_TIMEOUT", "3")]),
        )
        .unwrap();
        assert_eq!(common.dir, Path::new("/here/state"));
        assert_eq!(common.stop_timeout, Duration::from_secs(3));
        let absolute = Common::from_env(
            Path::new("/repo"),
            Path::new("/here"),
            &env(&[("TOPOLOGY_DIR", "/tmp/t")]),
        )
        .unwrap();
        assert_eq!(absolute.dir, Path::new("/tmp/t"));
    }

    #[test]
    fn a_bad_value_names_its_variable_and_what_it_should_be() {
        let cases = [
            ("BASE_PORT", "0", "a port number (1-65529)"),
            ("BASE_PORT", "65530", "a port number (1-65529)"),
            ("BASE_PORT", "http", "a port number (1-65529)"),
            ("PAYMENT_DELAY_MS", "10-5", "MIN-MAX milliseconds"),
            ("WORKERS", "many", "a number of threads"),
            ("READY_TIMEOUT", "-1", "a number of seconds"),
        ];
        for (name, value, expected) in cases {
            let err = launch(&[(name, value)]).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{name} must be {expected}"))
                    && err.ends_with(&format!("not '{value}'")),
                "{err}"
            );
        }
        let err = Common::from_env(
            Path::new("/r"),
            Path::new("/h"),
            &env(&[("STOP_TIMEOUT", "soon")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "STOP_TIMEOUT must be a number of seconds, not 'soon'"
        );
        assert_eq!(base_port(&env(&[("BASE_PORT", "65529")])), Ok(65529));
    }

    #[test]
    fn every_role_listens_at_its_offset_and_calls_its_peers_there() {
        let settings =
            settings(&launch(&[("BASE_PORT", "9000")]).unwrap(), Stores::Memory).unwrap();

        assert_eq!(settings.roles, Role::ALL);
        for role in Role::ALL {
            assert_eq!(
                settings.listen[&role],
                format!("127.0.0.1:{}", 9000 + role.offset())
            );
        }
        assert_eq!(
            settings.api_gateway_url.as_deref(),
            Some("http://127.0.0.1:9001")
        );
        for upstream in Role::UPSTREAMS {
            assert_eq!(
                settings.upstreams[&upstream],
                format!("http://127.0.0.1:{}", 9000 + upstream.offset())
            );
        }
        let web = serve_command(&settings, Role::WebGateway).args.join(" ");
        assert!(
            web.starts_with("serve --role web-gateway --listen 127.0.0.1:9000 "),
            "{web}"
        );
        assert!(
            web.contains("--api-gateway-url http://127.0.0.1:9001"),
            "{web}"
        );
        let api = serve_command(&settings, Role::ApiGateway).args.join(" ");
        assert!(
            api.contains("--upstream payment=http://127.0.0.1:9005"),
            "{api}"
        );
    }

    #[test]
    fn no_command_line_shows_the_session_secret() {
        let launch = launch(&[("SESSION_SECRET", "s3cret")]).unwrap();
        let settings = settings(&launch, Stores::Memory).unwrap();
        for role in Role::ALL {
            let command = serve_command(&settings, role);
            assert!(
                !command.args.iter().any(|a| a.contains("secret")),
                "{:?}",
                command.args
            );
        }
    }

    #[test]
    fn delay_workers_and_stores_reach_the_command_lines() {
        let launch = launch(&[
            ("PAYMENT_DELAY_MS", "5-7"),
            ("WORKERS", "3"),
            ("REDIS_URL", "redis://127.0.0.1:6390"),
            ("POSTGRES_URL", "postgres://u@127.0.0.1:5433/shop"),
        ])
        .unwrap();
        let memory = settings(&launch, Stores::Memory).unwrap();
        assert_eq!(
            (
                &memory.cart_data,
                &memory.session_data,
                &memory.product_data
            ),
            (&StoreUrl::Memory, &StoreUrl::Memory, &StoreUrl::Memory)
        );
        let real = settings(&launch, Stores::Real).unwrap();
        let payment = serve_command(&real, Role::Payment).args.join(" ");
        assert!(payment.contains("--payment-delay-ms 5-7"), "{payment}");
        assert!(payment.contains("--workers 3"), "{payment}");
        let cart = serve_command(&real, Role::Cart).args.join(" ");
        assert!(
            cart.contains("--cart-data redis://127.0.0.1:6390"),
            "{cart}"
        );
        assert!(
            cart.contains("--session-data redis://127.0.0.1:6390"),
            "{cart}"
        );
        let product = serve_command(&real, Role::Product).args.join(" ");
        assert!(
            product.contains("--product-data postgres://u@127.0.0.1:5433/shop"),
            "{product}"
        );
        // Unset: the binary's default (0, one per CPU).
        let default = settings(
            &super::Launch {
                workers: None,
                ..launch
            },
            Stores::Memory,
        )
        .unwrap();
        assert_eq!(default.workers, 0);
    }

    #[test]
    fn real_stores_need_urls_of_their_kind() {
        let swapped = launch(&[
            ("REDIS_URL", "postgres://u:pw@h/db"),
            ("POSTGRES_URL", "redis://h"),
        ])
        .unwrap();
        let err = settings(&swapped, Stores::Real).unwrap_err();
        assert_eq!(err.var, "REDIS_URL");
        assert!(!err.to_string().contains("pw"), "{err}");
        // Memory stores do not look at them.
        assert!(settings(&swapped, Stores::Memory).is_ok());
        let bad_postgres = launch(&[("POSTGRES_URL", "mysql://h/db")]).unwrap();
        assert_eq!(
            settings(&bad_postgres, Stores::Real).unwrap_err().var,
            "POSTGRES_URL"
        );
    }

    #[test]
    fn the_state_file_reads_back_what_was_written() {
        let state = State {
            stores: Some(Stores::Real),
            base_port: Some(18080),
            binary: Some("/repo/target/release/ecommerce".into()),
            started: Some("2024-05-01T12:00:00Z".into()),
        };
        let text = state.render();
        assert_eq!(
            text,
            "STORES=real\nBASE_PORT=18080\nBIN=/repo/target/release/ecommerce\n\
             STARTED=2024-05-01T12:00:00Z\n"
        );
        assert_eq!(State::parse(&text), state);
        assert_eq!(
            State::parse("STORES=disk\nBASE_PORT=x\nOTHER=1\n"),
            State::default()
        );
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let at = |secs| utc_timestamp(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_714_564_799), "2024-05-01T11:59:59Z");
        assert_eq!(at(4_102_444_800), "2100-01-01T00:00:00Z");
    }
}
