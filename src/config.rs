//! Settings: everything a role needs to start, built from the CLI (or directly by tests).

use std::collections::BTreeMap;
use std::time::Duration;

pub use crate::domain::{DelayRange, Secret};
pub use crate::faults::Faults;
use crate::role::Role;
use crate::stores::StoreUrl;

/// Everything the shop's roles are configured with. Only the CLI reads the environment;
/// tests build this directly.
#[derive(Debug, Clone)]
pub struct Settings {
    pub roles: Vec<Role>,
    /// Where each role listens (`HOST:PORT`; port 0 picks a free one).
    pub listen: BTreeMap<Role, String>,
    /// Where each role serves its operational endpoints (`/metrics`, `/readyz`,
    /// `/faults`, `/healthz`) apart from the shop; empty: on the main listener.
    pub admin_listen: BTreeMap<Role, String>,
    /// How web-gateway and checkout reach the api-gateway; `None` wires it automatically
    /// (to the api-gateway of this process, else the default local port).
    pub api_gateway_url: Option<String>,
    /// Where the api-gateway sends each service; absent ones are wired like the above.
    pub upstreams: BTreeMap<Role, String>,
    pub cart_data: StoreUrl,
    pub cart_data_replica: Option<StoreUrl>,
    pub session_data: StoreUrl,
    pub session_data_replica: Option<StoreUrl>,
    pub product_data: StoreUrl,
    pub session_secret: Secret,
    pub content_source: Option<String>,
    pub payment_delay: DelayRange,
    pub faults: Faults,
    /// Allows `PUT /faults`; `None` keeps the faults as started.
    pub admin_token: Option<Secret>,
    /// Where the whole shop's live fault state lives (`redis://...`); `None`: this
    /// process's own faults only.
    pub fault_state: Option<String>,
    /// Where spans are exported (from the standard `OTEL_*` variables); `None`: nowhere.
    pub otlp: Option<crate::telemetry::settings::Otlp>,
    /// Where log lines are exported as OTLP log records (`OTEL_LOGS_EXPORTER=otlp`);
    /// `None`: stderr only.
    pub otlp_logs: Option<crate::telemetry::settings::Otlp>,
    /// A PEM file of CA certificates that every outgoing TLS connection (stores, OTLP
    /// export, https calls) trusts besides the system's (`--ca-file`).
    pub ca_file: Option<std::path::PathBuf>,
    /// Another such file, from the environment's `SSL_CERT_FILE`; trusted as well.
    pub ssl_cert_file: Option<std::path::PathBuf>,
    pub cart_ttl: Duration,
    pub session_ttl: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Worker threads per role; 0 means one per CPU.
    pub workers: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// After SIGTERM, how long to keep serving with `/readyz` at 503 (so that load
    /// balancers stop sending) before the listeners close.
    pub drain: Duration,
    /// Bind with `SO_REUSEPORT`, so that a new process can start beside this one on the
    /// same address (a rolling replacement).
    pub reuse_port: bool,
}

impl Settings {
    /// Defaults of a local run of `roles`, every role on 127.0.0.1 at `base_port` plus
    /// its offset (or on a free port each when `base_port` is 0).
    pub fn local(roles: Vec<Role>, base_port: u16) -> Self {
        let listen = roles
            .iter()
            .map(|r| (*r, listen_address("127.0.0.1", base_port, *r)))
            .collect();
        Settings {
            roles,
            listen,
            admin_listen: BTreeMap::new(),
            api_gateway_url: None,
            upstreams: BTreeMap::new(),
            cart_data: StoreUrl::Memory,
            cart_data_replica: None,
            session_data: StoreUrl::Memory,
            session_data_replica: None,
            product_data: StoreUrl::Memory,
            session_secret: Secret::random(),
            content_source: None,
            payment_delay: DelayRange::DEFAULT,
            faults: Faults::default(),
            admin_token: None,
            fault_state: None,
            otlp: None,
            otlp_logs: None,
            ca_file: None,
            ssl_cert_file: None,
            cart_ttl: Duration::from_secs(24 * 3600),
            session_ttl: Duration::from_secs(30 * 60),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            workers: 0,
            shutdown_timeout: Duration::from_secs(10),
            drain: Duration::ZERO,
            reuse_port: false,
        }
    }
}

/// `host:port` of `role` when the roles of one process share a base port.
pub fn listen_address(host: &str, base_port: u16, role: Role) -> String {
    let port = if base_port == 0 {
        0
    } else {
        base_port.saturating_add(role.offset())
    };
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_settings_put_roles_on_consecutive_ports() {
        let s = Settings::local(Role::ALL.to_vec(), 9000);
        assert_eq!(s.listen[&Role::WebGateway], "127.0.0.1:9000");
        assert_eq!(s.listen[&Role::Product], "127.0.0.1:9006");
        let s = Settings::local(vec![Role::Cart], 0);
        assert_eq!(s.listen[&Role::Cart], "127.0.0.1:0");
        assert_eq!(listen_address("::1", 8080, Role::Cart), "[::1]:8082");
    }
}
