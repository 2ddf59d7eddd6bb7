//! The command line: `serve` and `migrate`, each option with an environment twin.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{listen_address, DelayRange, Faults, Secret, Settings};
use crate::role::Role;
use crate::stores::StoreUrl;
use crate::telemetry::settings::{logs_from_env, traces_from_env, EnvError, Otlp};

#[derive(Debug, Parser)]
#[command(
    name = "ecommerce",
    version,
    about = "A simulated online shop: every service in one binary"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Run one or more of the shop's services.
    Serve(ServeArgs),
    /// Create or upgrade the product-data schema and load the catalog (idempotent).
    Migrate(MigrateArgs),
    /// The whole shop's live fault state (`--fault-state`).
    #[command(subcommand)]
    Faults(FaultsCommand),
}

#[derive(Debug, Subcommand)]
pub enum FaultsCommand {
    /// Write the desired fault state: the whole list of faults (what it names is on, the
    /// rest off), when it switches itself off, and the synthetic traffic level. Every
    /// process following the state applies it within 2 s.
    Set(FaultsSetArgs),
}

#[derive(Debug, Args)]
pub struct FaultsSetArgs {
    /// Where the shop's fault state lives: redis://host:port/db (rediss:// over TLS).
    #[arg(long, env = "ECOMMERCE_FAULT_STATE")]
    pub fault_state: String,

    /// PEM certificates (e.g. a private CA) trusted besides the system's roots, for a
    /// rediss:// fault state.
    #[arg(long, env = "ECOMMERCE_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,

    /// The faults to have on, NAME[=VALUE] each (`bind-localhost` is decided at start and
    /// cannot be set here).
    #[arg(env = "ECOMMERCE_FAULTS", value_delimiter = ',')]
    pub faults: Vec<String>,

    /// Switch the faults off again after this long (30s, 10m, 1h30m).
    #[arg(long = "for", env = "ECOMMERCE_FAULTS_FOR", value_name = "DURATION")]
    pub for_: Option<String>,

    /// The synthetic traffic level: 1 the normal load, 0 idle, up to 10.
    #[arg(long, env = "ECOMMERCE_TRAFFIC_LEVEL", default_value_t = 1.0)]
    pub traffic_level: f64,

    /// How long to keep trying while the fault state does not answer, in seconds.
    #[arg(long, env = "ECOMMERCE_FAULT_STATE_WAIT_SECS", default_value_t = 60)]
    pub wait: u64,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// product-data: postgres://user:password@host:port/products
    #[arg(long, env = "ECOMMERCE_PRODUCT_DATA")]
    pub product_data: StoreUrl,

    /// A catalog CSV to load instead of the one built into the binary.
    #[arg(long, env = "ECOMMERCE_CATALOG")]
    pub catalog: Option<std::path::PathBuf>,

    /// PEM certificates (e.g. a private CA) trusted besides the system's roots, as with
    /// `serve`.
    #[arg(long, env = "ECOMMERCE_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,

    /// Also load N synthetic products (ids g0000001..., at most 9999999), the same ones
    /// for the same N; another N adds or deletes generated products to make exactly N.
    #[arg(
        long,
        env = "ECOMMERCE_GENERATE",
        value_name = "N",
        default_value_t = 0
    )]
    pub generate: u32,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Role(s) to run: one of web-gateway, api-gateway, cart, checkout, content, payment,
    /// product; a comma-separated list; or `all`.
    #[arg(long, env = "ECOMMERCE_ROLE", value_parser = parse_roles)]
    pub role: RoleList,

    /// Where the role listens (HOST:PORT). With several roles, the web-gateway's address;
    /// the others take the next ports (port+1 ... port+6). Default 127.0.0.1:<role's port>.
    #[arg(long, env = "ECOMMERCE_LISTEN", value_parser = parse_listen)]
    pub listen: Option<(String, u16)>,

    /// A second listener (HOST:PORT) for /metrics, /readyz, /faults and /healthz; when
    /// set, the main listener serves none of them but /healthz. With several roles, the
    /// first role's address; the others take the next ports, as with --listen.
    #[arg(long, env = "ECOMMERCE_ADMIN_LISTEN", value_parser = parse_listen)]
    pub admin_listen: Option<(String, u16)>,

    /// How web-gateway and checkout reach the api-gateway.
    #[arg(long, env = "ECOMMERCE_API_GATEWAY_URL", value_parser = parse_http_url)]
    pub api_gateway_url: Option<String>,

    /// Where the api-gateway sends a service, as NAME=URL (repeatable). Also from
    /// ECOMMERCE_UPSTREAM_<NAME> (e.g. ECOMMERCE_UPSTREAM_CART).
    #[arg(long = "upstream", value_name = "NAME=URL", value_parser = parse_upstream)]
    pub upstreams: Vec<(Role, String)>,

    /// cart-data: redis://..., rediss://... (TLS) or memory.
    #[arg(long, env = "ECOMMERCE_CART_DATA", default_value = "memory")]
    pub cart_data: StoreUrl,

    /// cart-data's replica, read when the primary is down.
    #[arg(long, env = "ECOMMERCE_CART_DATA_REPLICA")]
    pub cart_data_replica: Option<StoreUrl>,

    /// session-data: redis://..., rediss://... (TLS) or memory.
    #[arg(long, env = "ECOMMERCE_SESSION_DATA", default_value = "memory")]
    pub session_data: StoreUrl,

    /// session-data's replica.
    #[arg(long, env = "ECOMMERCE_SESSION_DATA_REPLICA")]
    pub session_data_replica: Option<StoreUrl>,

    /// product-data: postgres://... (TLS as its sslmode says: disable, prefer, require,
    /// verify-ca, verify-full) or memory (the catalog built into the binary).
    #[arg(long, env = "ECOMMERCE_PRODUCT_DATA", default_value = "memory")]
    pub product_data: StoreUrl,

    /// PEM certificates (e.g. a private CA) that every outgoing TLS connection (stores,
    /// OTLP export, --content-source) trusts besides the system's roots and SSL_CERT_FILE's.
    #[arg(long, env = "ECOMMERCE_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,

    /// HMAC key for session cookies; random per process when absent.
    #[arg(long, env = "ECOMMERCE_SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<String>,

    /// Base URL of an image bucket (http:// or https://, trusted as --ca-file says);
    /// absent: the built-in images.
    #[arg(long, env = "ECOMMERCE_CONTENT_SOURCE", value_parser = parse_http_url)]
    pub content_source: Option<String>,

    /// Simulated payment processing time, MIN-MAX milliseconds.
    #[arg(long, env = "ECOMMERCE_PAYMENT_DELAY_MS", default_value = "500-1000")]
    pub payment_delay_ms: DelayRange,

    /// Switch on a fault scenario, NAME[=VALUE] (repeatable): basic-bug, bind-localhost,
    /// payment-failure=<ratio>, payment-latency=<ms>, cart-data-outage, memory-leak=<role>.
    #[arg(long = "fault", env = "ECOMMERCE_FAULTS", value_delimiter = ',')]
    pub faults: Vec<String>,

    /// Token that allows switching faults at run time (`PUT /faults` with
    /// `Authorization: Bearer <token>`); absent: run-time switching is off.
    #[arg(long, env = "ECOMMERCE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Where the whole shop's live fault state lives (redis://host:port/db, rediss:// over
    /// TLS): this process
    /// follows it (within 2 s) instead of keeping its own faults; absent: its own only.
    #[arg(long, env = "ECOMMERCE_FAULT_STATE", value_parser = parse_fault_state)]
    pub fault_state: Option<String>,

    /// Carts expire this long after their last use.
    #[arg(long, env = "ECOMMERCE_CART_TTL_SECS", default_value_t = 24 * 3600)]
    pub cart_ttl_secs: u64,

    /// Sessions expire this long after the last page load.
    #[arg(long, env = "ECOMMERCE_SESSION_TTL_SECS", default_value_t = 30 * 60)]
    pub session_ttl_secs: u64,

    /// Connect timeout of every outgoing call.
    #[arg(long, env = "ECOMMERCE_CONNECT_TIMEOUT_MS", default_value_t = 2000)]
    pub connect_timeout_ms: u64,

    /// Total timeout of every outgoing call (until the answer's headers).
    #[arg(long, env = "ECOMMERCE_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,

    /// Worker threads per role (0: one per CPU).
    #[arg(long, env = "ECOMMERCE_WORKERS", default_value_t = 0)]
    pub workers: usize,

    /// Seconds in-flight requests may take to finish after SIGTERM.
    #[arg(long, env = "ECOMMERCE_SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,

    /// On SIGTERM, seconds to keep serving with /readyz at 503 (so that endpoints and
    /// load balancers stop sending) before the listeners close.
    #[arg(long, env = "ECOMMERCE_DRAIN_SECS", default_value_t = 0)]
    pub drain_secs: u64,

    /// Bind with SO_REUSEPORT, so that a new process can start beside this one on the
    /// same address and take over (a rolling replacement).
    #[arg(long, env = "ECOMMERCE_REUSE_PORT")]
    pub reuse_port: bool,
}

#[derive(Debug, Clone)]
pub struct RoleList(pub Vec<Role>);

fn parse_roles(s: &str) -> Result<RoleList, String> {
    Role::parse_list(s).map(RoleList).map_err(|e| e.to_string())
}

fn parse_listen(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("'{s}' is not HOST:PORT"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("'{port}' is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("'{s}' has no host"));
    }
    Ok((host.to_string(), port))
}

/// An absolute http(s) URL with a host, kept without a trailing slash.
fn parse_http_url(s: &str) -> Result<String, String> {
    let uri: actix_web::http::Uri = s.parse().map_err(|e| format!("'{s}' is not a URL: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => {
            Ok(s.trim_end_matches('/').to_string())
        }
        _ => Err(format!("'{s}' is not an http:// or https:// URL")),
    }
}

fn parse_upstream(s: &str) -> Result<(Role, String), String> {
    let (name, url) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not NAME=URL"))?;
    let role = Role::upstream(name).ok_or_else(|| {
        format!(
            "'{name}' is not a service the api-gateway forwards to (valid: {})",
            Role::UPSTREAMS.map(Role::as_str).join(", ")
        )
    })?;
    Ok((role, parse_http_url(url)?))
}

/// How to start `ecommerce serve` for one role of `settings` as its own process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeCommand {
    /// The arguments after the executable's name.
    pub args: Vec<String>,
    /// The environment it needs besides (span and log export, which only the `OTEL_*`
    /// variables configure, and `SSL_CERT_FILE`).
    pub env: Vec<(&'static str, String)>,
}

/// The command line that makes a process serve `role` exactly as `settings` say: the
/// inverse of [`ServeArgs::into_settings`], and the one description of how a role
/// process is wired that the tests and the tools share. `settings.listen` must name the
/// role's address; absent URLs (api-gateway, upstreams) keep the binary's defaults.
pub fn serve_command(settings: &Settings, role: Role) -> ServeCommand {
    let mut args: Vec<String> = vec!["serve".into(), "--role".into(), role.as_str().into()];
    let mut option = |name: &str, value: String| args.extend([name.to_string(), value]);
    let store = |url: &StoreUrl| match url {
        StoreUrl::Memory => "memory".to_string(),
        StoreUrl::Redis(u) | StoreUrl::Postgres(u) => u.clone(),
    };
    option("--listen", settings.listen[&role].clone());
    if let Some(address) = settings.admin_listen.get(&role) {
        option("--admin-listen", address.clone());
    }
    if let Some(url) = &settings.api_gateway_url {
        option("--api-gateway-url", url.clone());
    }
    for (upstream, url) in &settings.upstreams {
        option("--upstream", format!("{upstream}={url}"));
    }
    option("--cart-data", store(&settings.cart_data));
    option("--session-data", store(&settings.session_data));
    option("--product-data", store(&settings.product_data));
    if let Some(url) = &settings.cart_data_replica {
        option("--cart-data-replica", store(url));
    }
    if let Some(url) = &settings.session_data_replica {
        option("--session-data-replica", store(url));
    }
    if !settings.session_secret.generated {
        option("--session-secret", settings.session_secret.expose().into());
    }
    if let Some(token) = &settings.admin_token {
        option("--admin-token", token.expose().into());
    }
    if let Some(url) = &settings.fault_state {
        option("--fault-state", url.clone());
    }
    if let Some(source) = &settings.content_source {
        option("--content-source", source.clone());
    }
    if let Some(path) = &settings.ca_file {
        option("--ca-file", path.to_string_lossy().into_owned());
    }
    let delay = settings.payment_delay;
    option(
        "--payment-delay-ms",
        format!("{}-{}", delay.min_ms, delay.max_ms),
    );
    for fault in settings.faults.active() {
        option("--fault", fault);
    }
    option("--cart-ttl-secs", settings.cart_ttl.as_secs().to_string());
    option(
        "--session-ttl-secs",
        settings.session_ttl.as_secs().to_string(),
    );
    option(
        "--connect-timeout-ms",
        settings.connect_timeout.as_millis().to_string(),
    );
    option(
        "--request-timeout-ms",
        settings.request_timeout.as_millis().to_string(),
    );
    option("--workers", settings.workers.to_string());
    option(
        "--shutdown-timeout-secs",
        settings.shutdown_timeout.as_secs().to_string(),
    );
    // Only when set: a command line without it also starts builds that predate it.
    if !settings.drain.is_zero() {
        option("--drain-secs", settings.drain.as_secs().to_string());
    }
    if settings.reuse_port {
        args.push("--reuse-port".into());
    }
    let mut env = Vec::new();
    let compression = |otlp: &Otlp| otlp.compression.as_str().to_string();
    if let Some(otlp) = &settings.otlp {
        env.extend([
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlp.endpoint.clone()),
            (
                "OTEL_BSP_SCHEDULE_DELAY",
                otlp.schedule_delay.as_millis().to_string(),
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", compression(otlp)),
        ]);
    }
    if let Some(otlp) = &settings.otlp_logs {
        env.extend([
            ("OTEL_LOGS_EXPORTER", "otlp".to_string()),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", otlp.endpoint.clone()),
            (
                "OTEL_BLRP_SCHEDULE_DELAY",
                otlp.schedule_delay.as_millis().to_string(),
            ),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", compression(otlp)),
        ]);
    }
    if let Some(path) = &settings.ssl_cert_file {
        env.push(("SSL_CERT_FILE", path.to_string_lossy().into_owned()));
    }
    ServeCommand { args, env }
}

/// Each role's address from one `HOST:PORT`: a single role takes it as it is, several take
/// consecutive ports in role order.
fn addresses(roles: &[Role], host: &str, port: u16) -> BTreeMap<Role, String> {
    if let [role] = roles {
        return BTreeMap::from([(*role, listen_address(host, port, Role::WebGateway))]);
    }
    roles
        .iter()
        .map(|r| (*r, listen_address(host, port, *r)))
        .collect()
}

/// A fault state's URL: `redis://` or `rediss://`.
pub fn parse_fault_state(text: &str) -> Result<String, String> {
    let text = text.trim();
    if (text.starts_with("redis://") || text.starts_with("rediss://"))
        && redis::parse_redis_url(text).is_some()
    {
        Ok(text.to_string())
    } else {
        Err(format!("'{text}' is not a redis://host:port/db URL"))
    }
}

/// Bad configuration: the option to fix and why.
#[derive(Debug, thiserror::Error)]
#[error("{option}: {reason}")]
pub struct ConfigError {
    pub option: String,
    pub reason: String,
}

impl ServeArgs {
    /// Settings from the parsed options; `env` looks up environment variables that clap
    /// cannot map by itself (the per-service upstream twins).
    pub fn into_settings(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let roles = self.role.0;
        let mut settings = Settings::local(roles.clone(), 8080);
        if let Some((host, port)) = &self.listen {
            settings.listen = addresses(&roles, host, *port);
        } else {
            settings.listen = roles
                .iter()
                .map(|r| (*r, format!("127.0.0.1:{}", r.default_port())))
                .collect();
        }
        if let Some((host, port)) = &self.admin_listen {
            settings.admin_listen = addresses(&roles, host, *port);
        }

        for role in Role::UPSTREAMS {
            let var = format!(
                "ECOMMERCE_UPSTREAM_{}",
                role.as_str().to_uppercase().replace('-', "_")
            );
            if let Some(url) = env(&var) {
                let url = parse_http_url(&url).map_err(|reason| ConfigError {
                    option: var.clone(),
                    reason,
                })?;
                settings.upstreams.insert(role, url);
            }
        }
        // The command line wins over the environment.
        settings.upstreams.extend(self.upstreams);

        let faults = Faults::parse(&self.faults).map_err(|reason| ConfigError {
            option: "--fault".into(),
            reason,
        })?;
        let env_error = |e: EnvError| ConfigError {
            option: e.var.into(),
            reason: e.reason,
        };
        settings.otlp = traces_from_env(&env).map_err(env_error)?;
        settings.otlp_logs = logs_from_env(&env).map_err(env_error)?;
        settings.ssl_cert_file = env("SSL_CERT_FILE")
            .filter(|path| !path.trim().is_empty())
            .map(std::path::PathBuf::from);
        settings.ca_file = self.ca_file.filter(|path| !path.as_os_str().is_empty());
        settings.admin_token = self.admin_token.filter(|t| !t.is_empty()).map(Secret::new);
        settings.fault_state = self.fault_state;

        settings.api_gateway_url = self.api_gateway_url;
        settings.cart_data = self.cart_data;
        settings.cart_data_replica = self.cart_data_replica;
        settings.session_data = self.session_data;
        settings.session_data_replica = self.session_data_replica;
        settings.product_data = self.product_data;
        if let Some(secret) = self.session_secret.filter(|s| !s.is_empty()) {
            settings.session_secret = Secret::new(secret);
        }
        settings.content_source = self.content_source;
        settings.payment_delay = self.payment_delay_ms;
        settings.faults = faults;
        settings.cart_ttl = Duration::from_secs(self.cart_ttl_secs.max(1));
        settings.session_ttl = Duration::from_secs(self.session_ttl_secs.max(1));
        settings.connect_timeout = Duration::from_millis(self.connect_timeout_ms.max(1));
        settings.request_timeout = Duration::from_millis(self.request_timeout_ms.max(1));
        settings.workers = self.workers;
        settings.shutdown_timeout = Duration::from_secs(self.shutdown_timeout_secs);
        settings.drain = Duration::from_secs(self.drain_secs);
        settings.reuse_port = self.reuse_port;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::settings::Compression;

    fn settings(args: &[&str]) -> Result<Settings, String> {
        let mut argv = vec!["ecommerce", "serve"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        let Command::Serve(serve) = cli.command else {
            panic!("serve")
        };
        serve.into_settings(|_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn all_roles_take_consecutive_ports_from_listen() {
        let s = settings(&["--role", "all", "--listen", "0.0.0.0:9000"]).unwrap();
        assert_eq!(s.listen[&Role::WebGateway], "0.0.0.0:9000");
        assert_eq!(s.listen[&Role::ApiGateway], "0.0.0.0:9001");
        assert_eq!(s.listen[&Role::Product], "0.0.0.0:9006");
    }

    #[test]
    fn one_role_listens_where_told() {
        let s = settings(&["--role", "cart", "--listen", "0.0.0.0:8080"]).unwrap();
        assert_eq!(s.listen[&Role::Cart], "0.0.0.0:8080");
        let s = settings(&["--role", "cart"]).unwrap();
        assert_eq!(s.listen[&Role::Cart], "127.0.0.1:8082");
    }

    #[test]
    fn admin_listeners_follow_the_roles_ports() {
        let s = settings(&["--role", "cart", "--admin-listen", "0.0.0.0:9090"]).unwrap();
        assert_eq!(s.admin_listen[&Role::Cart], "0.0.0.0:9090");
        let s = settings(&["--role", "all", "--admin-listen", "127.0.0.1:9100"]).unwrap();
        assert_eq!(s.admin_listen[&Role::ApiGateway], "127.0.0.1:9101");
        assert!(settings(&["--role", "cart"])
            .unwrap()
            .admin_listen
            .is_empty());
        let err = settings(&["--role", "cart", "--admin-listen", "9090"]).unwrap_err();
        assert!(err.contains("--admin-listen"), "{err}");
    }

    #[test]
    fn bad_options_name_themselves() {
        let err = settings(&["--role", "basket"]).unwrap_err();
        assert!(err.contains("--role") && err.contains("basket"), "{err}");
        let err = settings(&["--role", "cart", "--api-gateway-url", "ftp://x"]).unwrap_err();
        assert!(err.contains("--api-gateway-url"), "{err}");
        let err = settings(&["--role", "cart", "--upstream", "redis=http://x"]).unwrap_err();
        assert!(err.contains("--upstream"), "{err}");
        let err = settings(&["--role", "cart", "--fault", "meteor"]).unwrap_err();
        assert!(err.contains("--fault"), "{err}");
        let err = settings(&["--role", "cart", "--cart-data", "mysql://x"]).unwrap_err();
        assert!(err.contains("--cart-data"), "{err}");
    }

    /// Settings as a test or a tool would wire one role process.
    fn wired() -> Settings {
        let mut s = Settings::local(Role::ALL.to_vec(), 9000);
        s.admin_listen = BTreeMap::from([(Role::Cart, "127.0.0.1:9990".to_string())]);
        s.api_gateway_url = Some("http://127.0.0.1:9001".into());
        s.upstreams = BTreeMap::from([(Role::Product, "http://127.0.0.1:9006".into())]);
        s.cart_data = "redis://127.0.0.1:6379/0".parse().unwrap();
        s.cart_data_replica = Some("redis://127.0.0.1:6380/0".parse().unwrap());
        s.product_data = "postgres://u@h/products".parse().unwrap();
        s.session_secret = Secret::new("k".into());
        s.admin_token = Some(Secret::new("t".into()));
        s.content_source = Some("http://bucket:9000/images".into());
        s.ca_file = Some("/etc/shop/stores-ca.pem".into());
        s.payment_delay = "5-7".parse().unwrap();
        s.faults =
            Faults::parse(&["payment-failure=0.5".to_string(), "basic-bug".to_string()]).unwrap();
        s.cart_ttl = Duration::from_secs(60);
        s.session_ttl = Duration::from_secs(61);
        s.connect_timeout = Duration::from_millis(300);
        s.request_timeout = Duration::from_millis(4000);
        s.workers = 3;
        s.shutdown_timeout = Duration::from_secs(2);
        s.drain = Duration::from_secs(4);
        s.reuse_port = true;
        s
    }

    #[test]
    fn a_serve_command_gives_back_the_settings_it_was_made_from() {
        let wired = wired();
        let command = serve_command(&wired, Role::Cart);
        let mut argv = vec!["ecommerce".to_string()];
        argv.extend(command.args);
        let Command::Serve(serve) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("serve")
        };
        let back = serve.into_settings(|_| None).unwrap();

        assert_eq!(back.roles, [Role::Cart]);
        assert_eq!(back.listen[&Role::Cart], "127.0.0.1:9002");
        assert_eq!(back.admin_listen, wired.admin_listen);
        assert_eq!(back.api_gateway_url, wired.api_gateway_url);
        assert_eq!(back.upstreams, wired.upstreams);
        assert_eq!(
            (&back.cart_data, &back.cart_data_replica, &back.product_data),
            (
                &wired.cart_data,
                &wired.cart_data_replica,
                &wired.product_data
            )
        );
        assert_eq!(back.session_secret.expose(), "k");
        assert_eq!(
            back.admin_token.map(|t| t.expose().to_string()),
            Some("t".into())
        );
        assert_eq!(back.content_source, wired.content_source);
        assert_eq!(back.ca_file, wired.ca_file);
        assert_eq!(back.payment_delay, wired.payment_delay);
        assert_eq!(back.faults.active(), wired.faults.active());
        assert_eq!(
            (
                back.cart_ttl,
                back.session_ttl,
                back.connect_timeout,
                back.request_timeout
            ),
            (
                wired.cart_ttl,
                wired.session_ttl,
                wired.connect_timeout,
                wired.request_timeout
            )
        );
        assert_eq!(back.workers, 3);
        assert_eq!(back.shutdown_timeout, wired.shutdown_timeout);
        assert_eq!((back.drain, back.reuse_port), (wired.drain, true));
        assert!(command.env.is_empty());
    }

    #[test]
    fn a_serve_command_passes_span_and_log_export_and_the_ca_file_on() {
        let mut wired = wired();
        wired.otlp = Some(Otlp {
            compression: Compression::Gzip,
            ..Otlp::to("https://collector:4318/v1/traces")
        });
        wired.otlp_logs = Some(Otlp::to("https://collector:4318/v1/logs"));
        wired.ssl_cert_file = Some("/etc/shop/ca.pem".into());
        let command = serve_command(&wired, Role::Cart);
        let mut argv = vec!["ecommerce".to_string()];
        argv.extend(command.args);
        let Command::Serve(serve) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("serve")
        };
        let env: BTreeMap<&str, String> = command.env.into_iter().collect();

        let back = serve.into_settings(|var| env.get(var).cloned()).unwrap();

        let traces = back.otlp.expect("span export");
        assert_eq!(traces.endpoint, "https://collector:4318/v1/traces");
        assert_eq!(traces.compression, Compression::Gzip);
        let logs = back.otlp_logs.expect("log export");
        assert_eq!(logs.endpoint, "https://collector:4318/v1/logs");
        assert_eq!(logs.compression, Compression::None);
        assert_eq!(logs.schedule_delay, Duration::from_millis(5000));
        assert_eq!(back.ssl_cert_file, wired.ssl_cert_file);
        assert_eq!(
            back.ca_file, wired.ca_file,
            "--ca-file and SSL_CERT_FILE, both kept"
        );
    }

    #[test]
    fn an_https_content_source_is_taken() {
        let s = settings(&[
            "--role",
            "content",
            "--content-source",
            "https://bucket.example/images/",
        ])
        .unwrap();
        assert_eq!(
            s.content_source.as_deref(),
            Some("https://bucket.example/images")
        );
    }

    #[test]
    fn upstreams_come_from_flags_and_environment() {
        let cli = Cli::try_parse_from([
            "ecommerce",
            "serve",
            "--role",
            "api-gateway",
            "--upstream",
            "cart=http://cart:80/",
        ])
        .unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!("serve")
        };
        let s = serve
            .into_settings(|var| {
                (var == "ECOMMERCE_UPSTREAM_PRODUCT").then(|| "http://product:80".to_string())
            })
            .unwrap();
        assert_eq!(s.upstreams[&Role::Cart], "http://cart:80");
        assert_eq!(s.upstreams[&Role::Product], "http://product:80");
    }
}
