//! Builds the shop from `Settings`: binds every role's listener, builds stores and shared
//! pieces once, starts each role's server, and stops them all on SIGINT/SIGTERM.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};

use crate::config::{Secret, Settings};
use crate::domain::SessionSigner;
use crate::faults::shared::Control;
use crate::faults::FaultSwitch;
use crate::http::body::CLIENT_REQUEST_TIMEOUT;
use crate::http::client::SERVER_KEEP_ALIVE;
use crate::http::client::{self, Timeouts};
use crate::http::context::{Dependencies, Dependency, Lifecycle, RoleContext};
use crate::http::error::no_route;
use crate::http::health::Endpoints;
use crate::http::{health, observe};
use crate::role::{Role, Store};
use crate::roles;
use crate::stores::{CartStore, ProductStore, SessionStore};
use crate::telemetry::{logfmt, Telemetry};
use crate::tls::{Roots, Trust};

/// Why the shop could not start; each names the option to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{option}: cannot listen on {address} for {role}: {source}")]
    Listen {
        option: &'static str,
        role: Role,
        address: String,
        source: std::io::Error,
    },
    #[error("{option}: {reason}")]
    Config {
        option: &'static str,
        reason: String,
    },
    #[error("cannot start {role}: {source}")]
    Server { role: Role, source: std::io::Error },
}

/// The running shop: one server per role, each already started on the actix runtime.
pub struct Application {
    servers: Vec<Running>,
    telemetry: Arc<Telemetry>,
    /// Follows the fault state while the servers run.
    follower: actix_web::rt::task::JoinHandle<()>,
    lifecycle: Arc<Lifecycle>,
    /// How long to keep serving, not ready, after SIGTERM.
    drain: Duration,
}

struct Running {
    role: Role,
    /// The role's admin listener (operational endpoints), not its main one.
    admin: bool,
    address: SocketAddr,
    handle: ServerHandle,
    task: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

impl Application {
    /// Binds and starts every role of `settings`. Must run inside an actix system.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listeners = bind_all(&settings)?;
        let admin_listeners = bind_admin(&settings)?;
        let addresses: BTreeMap<Role, SocketAddr> = listeners
            .iter()
            .map(|(role, l)| {
                (
                    *role,
                    l.local_addr().expect("bound listener has an address"),
                )
            })
            .collect();
        let wiring = Wiring::resolve(&settings, &addresses);
        let shared = Arc::new(Shared::build(&settings, wiring)?);
        // A process starts with the shop's current faults (one read, a second at most
        // when the state does not answer); then timed faults, scenario steps and changes
        // made elsewhere arrive by the follower's polling.
        if shared.fault_control.is_shared() {
            shared.fault_control.poll_once().await;
        }
        let follower = actix_web::rt::spawn(shared.fault_control.clone().follow());
        let telemetry = shared.telemetry.clone();
        let mut servers = Vec::new();
        let contexts: BTreeMap<Role, web::Data<RoleContext>> = settings
            .roles
            .iter()
            .map(|&role| (role, shared.context(role)))
            .collect();
        let main = listeners.into_iter().map(|(role, l)| (role, l, false));
        let admin = admin_listeners.into_iter().map(|(role, l)| (role, l, true));
        for (role, listener, admin) in main.chain(admin) {
            let address = listener
                .local_addr()
                .expect("bound listener has an address");
            let endpoints = match (admin, settings.admin_listen.contains_key(&role)) {
                (true, _) => Endpoints::Admin,
                (false, true) => Endpoints::HealthOnly,
                (false, false) => Endpoints::All,
            };
            let context = contexts[&role].clone();
            let server = serve(role, listener, context, endpoints, shared.clone())
                .map_err(|source| StartupError::Server { role, source })?;
            let what = if admin { "admin endpoints" } else { "serving" };
            log::info!("msg=\"{what}\" service={role} address={address}");
            // A server starts when polled: spawn each so that all run at once.
            servers.push(Running {
                role,
                admin,
                address,
                handle: server.handle(),
                task: actix_web::rt::spawn(server),
            });
        }
        Ok(Application {
            servers,
            telemetry,
            follower,
            lifecycle: shared.lifecycle.clone(),
            drain: settings.drain,
        })
    }

    /// Where `role` listens (with port 0 resolved).
    pub fn address(&self, role: Role) -> Option<SocketAddr> {
        self.servers
            .iter()
            .find(|s| s.role == role && !s.admin)
            .map(|s| s.address)
    }

    /// Where `role` serves its operational endpoints, when it has an admin listener.
    pub fn admin_address(&self, role: Role) -> Option<SocketAddr> {
        self.servers
            .iter()
            .find(|s| s.role == role && s.admin)
            .map(|s| s.address)
    }

    /// Handles to stop the servers (gracefully or not).
    pub fn handles(&self) -> Vec<ServerHandle> {
        self.servers.iter().map(|s| s.handle.clone()).collect()
    }

    /// Runs until SIGINT or SIGTERM, then drains: answers `/readyz` with 503 and closes
    /// each connection after its next response for the drain time (a second signal cuts
    /// it short), then stops accepting, lets in-flight requests finish (bounded by the
    /// shutdown timeout) and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handles = self.handles();
        let (lifecycle, drain) = (self.lifecycle.clone(), self.drain);
        actix_web::rt::spawn(async move {
            shutdown_signal().await;
            lifecycle.drain();
            if !drain.is_zero() {
                log::info!("msg=\"draining\" seconds={}", drain.as_secs_f64());
                tokio::select! {
                    _ = tokio::time::sleep(drain) => {}
                    _ = shutdown_signal() => log::info!("msg=\"second signal: draining cut short\""),
                }
            }
            log::info!("msg=\"shutting down\"");
            // All at once, so that one shutdown timeout bounds them all.
            futures_util::future::join_all(handles.iter().map(|h| h.stop(true))).await;
        });
        for running in self.servers {
            running
                .task
                .await
                .map_err(|e| std::io::Error::other(format!("{} stopped: {e}", running.role)))??;
        }
        self.follower.abort();
        // The spans of the last requests, so that a rollout leaves no hole in traces.
        self.telemetry.flush(Duration::from_secs(2)).await;
        Ok(())
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn bind_all(settings: &Settings) -> Result<Vec<(Role, TcpListener)>, StartupError> {
    settings
        .roles
        .iter()
        .map(|&role| {
            let mut address = settings
                .listen
                .get(&role)
                .cloned()
                .unwrap_or_else(|| format!("127.0.0.1:{}", role.default_port()));
            if role == Role::ApiGateway && settings.faults.bind_localhost {
                let port = address.rsplit(':').next().unwrap_or("0");
                log::warn!("msg=\"fault bind-localhost: api-gateway binds 127.0.0.1 only\"");
                address = format!("127.0.0.1:{port}");
            }
            bind(&address, settings.reuse_port)
                .map(|l| (role, l))
                .map_err(|source| StartupError::Listen {
                    option: "--listen",
                    role,
                    address,
                    source,
                })
        })
        .collect()
}

/// The admin listeners of the roles that have one (`--admin-listen`).
fn bind_admin(settings: &Settings) -> Result<Vec<(Role, TcpListener)>, StartupError> {
    settings
        .admin_listen
        .iter()
        .filter(|(role, _)| settings.roles.contains(role))
        .map(|(&role, address)| {
            bind(address, settings.reuse_port)
                .map(|l| (role, l))
                .map_err(|source| StartupError::Listen {
                    option: "--admin-listen",
                    role,
                    address: address.clone(),
                    source,
                })
        })
        .collect()
}

/// A listener on the first of `address`'s addresses that binds; with `reuse_port`, one
/// that other processes with the option may share (the kernel spreads new connections
/// over them), as a rolling replacement needs.
fn bind(address: &str, reuse_port: bool) -> std::io::Result<TcpListener> {
    let mut last = std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address");
    for addr in address.to_socket_addrs()? {
        let bound = if reuse_port {
            bind_reusable(addr)
        } else {
            TcpListener::bind(addr)
        };
        match bound {
            Ok(listener) => return Ok(listener),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn bind_reusable(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // As std's bind does on Unix: a restart may bind while old connections linger.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Where each role finds the others: explicit URLs first, then the roles of this
/// process, then the default local ports.
#[derive(Debug, Clone)]
struct Wiring {
    api_gateway: String,
    upstreams: BTreeMap<Role, String>,
}

impl Wiring {
    fn resolve(settings: &Settings, bound: &BTreeMap<Role, SocketAddr>) -> Self {
        let url_of = |role: Role| -> String {
            match bound.get(&role) {
                Some(addr) => format!("http://{}", reachable(*addr)),
                None => format!("http://127.0.0.1:{}", role.default_port()),
            }
        };
        let api_gateway = settings
            .api_gateway_url
            .clone()
            .unwrap_or_else(|| url_of(Role::ApiGateway));
        let upstreams = Role::UPSTREAMS
            .into_iter()
            .map(|role| {
                let url = settings
                    .upstreams
                    .get(&role)
                    .cloned()
                    .unwrap_or_else(|| url_of(role));
                (role, url.trim_end_matches('/').to_string())
            })
            .collect();
        Wiring {
            api_gateway: api_gateway.trim_end_matches('/').to_string(),
            upstreams,
        }
    }
}

/// An address a local client can connect to (a wildcard bind is reached on loopback).
fn reachable(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    addr
}

/// What the roles of one process share, built once.
#[derive(Clone)]
struct Shared {
    wiring: Wiring,
    faults: Arc<FaultSwitch>,
    fault_control: Arc<Control>,
    telemetry: Arc<Telemetry>,
    lifecycle: Arc<Lifecycle>,
    admin_token: Option<Secret>,
    carts: Option<CartStore>,
    sessions: Option<SessionStore>,
    products: Option<ProductStore>,
    signer: SessionSigner,
    timeouts: Timeouts,
    /// How every outgoing https call trusts its peer (built once).
    tls: Arc<rustls::ClientConfig>,
    workers: usize,
    shutdown_timeout: u64,
    content_source: Option<String>,
    payment_delay: crate::config::DelayRange,
}

impl Shared {
    /// A copy for one worker thread of `role`, with connections of its own to the store
    /// the role uses (and none to the others).
    fn for_worker(&self, role: Role) -> Shared {
        Shared {
            carts: self
                .carts
                .as_ref()
                .filter(|_| role.store() == Some(Store::CartData))
                .map(CartStore::for_worker),
            sessions: self
                .sessions
                .as_ref()
                .filter(|_| role.store() == Some(Store::SessionData))
                .map(SessionStore::for_worker),
            products: self
                .products
                .as_ref()
                .filter(|_| role.store() == Some(Store::ProductData))
                .map(ProductStore::for_worker),
            ..self.clone()
        }
    }

    /// The context every listener of `role` shares (metrics, faults, tracer).
    fn context(&self, role: Role) -> web::Data<RoleContext> {
        web::Data::new(RoleContext {
            admin_token: self.admin_token.clone(),
            fault_control: self.fault_control.clone(),
            lifecycle: self.lifecycle.clone(),
            ..RoleContext::new(role, self.faults.clone(), self.telemetry.tracer(role))
        })
    }

    fn build(settings: &Settings, wiring: Wiring) -> Result<Self, StartupError> {
        let has = |role| settings.roles.contains(&role);
        // Only the stores that the roles of this process keep.
        let keeps = |store| settings.roles.iter().any(|r| r.store() == Some(store));
        // One trust for every TLS connection: the stores', then the https clients'.
        let trust = trust(
            settings.ca_file.as_deref(),
            settings.ssl_cert_file.as_deref(),
        )?;
        let carts = keeps(Store::CartData)
            .then(|| cart_store(settings, &trust))
            .transpose()?;
        let sessions = keeps(Store::SessionData)
            .then(|| session_store(settings, &trust))
            .transpose()?;
        let products = keeps(Store::ProductData)
            .then(|| product_store(settings, &trust))
            .transpose()?;
        if settings.session_secret.generated && has(Role::WebGateway) {
            log::warn!(
                "msg=\"no --session-secret given: using a random one; replicas of web-gateway would disagree\""
            );
        }
        for fault in settings.faults.active() {
            log::warn!("msg=\"fault active\" fault={}", logfmt::value(&fault));
        }
        let tls = trust.https();
        let telemetry = Telemetry::start(
            settings.otlp.as_ref(),
            settings.otlp_logs.as_ref(),
            &settings.roles,
            tls.clone(),
        )
        .map_err(|e| StartupError::Config {
            option: "OTEL_EXPORTER_OTLP_ENDPOINT",
            reason: format!("cannot start the span or log exporter: {e}"),
        })?;
        let faults = Arc::new(FaultSwitch::new(settings.faults.clone()));
        let service = settings
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let fault_control = Arc::new(match &settings.fault_state {
            Some(url) => Control::shared(url, faults.clone(), settings.faults.clone(), service)
                .map_err(|reason| StartupError::Config {
                    option: "--fault-state",
                    reason,
                })?
                .trusting(trust.redis()),
            None => Control::local(faults.clone(), settings.faults.clone(), service),
        });
        Ok(Shared {
            wiring,
            faults,
            fault_control,
            telemetry: Arc::new(telemetry),
            lifecycle: Arc::default(),
            admin_token: settings.admin_token.clone(),
            carts,
            sessions,
            products,
            signer: SessionSigner::new(settings.session_secret.expose().as_bytes()),
            timeouts: Timeouts {
                connect: settings.connect_timeout,
                request: settings.request_timeout,
            },
            tls,
            workers: if settings.workers == 0 {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            } else {
                settings.workers
            },
            shutdown_timeout: settings.shutdown_timeout.as_secs().max(1),
            content_source: settings.content_source.clone(),
            payment_delay: settings.payment_delay,
        })
    }
}

fn config_error(option: &'static str) -> impl FnOnce(String) -> StartupError {
    move |reason| StartupError::Config { option, reason }
}

/// What every outgoing TLS connection of a process trusts (stores, OTLP export, https
/// calls): the system's root certificates and those of `SSL_CERT_FILE` and `--ca-file`;
/// a file that cannot be used is named by its option.
pub fn trust(ca_file: Option<&Path>, ssl_cert_file: Option<&Path>) -> Result<Trust, StartupError> {
    let mut roots = Roots::system();
    for (option, path) in [("SSL_CERT_FILE", ssl_cert_file), ("--ca-file", ca_file)] {
        if let Some(path) = path {
            roots.add_pem_file(path).map_err(|e| StartupError::Config {
                option,
                reason: logfmt::chain(&e),
            })?;
        }
    }
    Trust::new(roots).map_err(|e| StartupError::Config {
        option: "--ca-file",
        reason: logfmt::chain(&e),
    })
}

fn cart_store(settings: &Settings, trust: &Trust) -> Result<CartStore, StartupError> {
    CartStore::connect(
        &settings.cart_data,
        settings.cart_data_replica.as_ref(),
        settings.cart_ttl,
        trust,
    )
    .map_err(config_error("--cart-data"))
}

fn session_store(settings: &Settings, trust: &Trust) -> Result<SessionStore, StartupError> {
    SessionStore::connect(
        &settings.session_data,
        settings.session_data_replica.as_ref(),
        settings.session_ttl,
        trust,
    )
    .map_err(config_error("--session-data"))
}

fn product_store(settings: &Settings, trust: &Trust) -> Result<ProductStore, StartupError> {
    ProductStore::connect(&settings.product_data, trust).map_err(config_error("--product-data"))
}

/// Starts a server of one role on `listener`: the role's own routes with the operational
/// endpoints `endpoints` names, or (`Endpoints::Admin`) those endpoints alone, on one
/// worker (probes and scrapes are light). Metrics are shared by the role's workers;
/// clients and store connections are made per worker, on its own runtime.
///
/// Every listener allows a request's head [`CLIENT_REQUEST_TIMEOUT`] to arrive (the
/// body's deadline is kept by `http::body`), and keeps an idle connection open for
/// [`SERVER_KEEP_ALIVE`], longer than any of the shop's callers keep an idle pooled one
/// (`http::client`), so a caller never reuses a connection the server is closing.
fn serve(
    role: Role,
    listener: TcpListener,
    context: web::Data<RoleContext>,
    endpoints: Endpoints,
    shared: Arc<Shared>,
) -> std::io::Result<Server> {
    let admin = endpoints == Endpoints::Admin;
    let workers = if admin { 1 } else { shared.workers };
    let shutdown_timeout = shared.shutdown_timeout;
    let server = HttpServer::new(move || {
        let worker = shared.for_worker(role);
        let app = App::new()
            .wrap(from_fn(observe::observe))
            .wrap(Condition::new(
                role == Role::WebGateway && !admin,
                roles::web_gateway::security_headers(),
            ))
            .app_data(context.clone())
            .app_data(web::Data::new(client::build(worker.timeouts, &worker.tls)))
            .app_data(web::Data::new(Dependencies(dependencies(role, &worker))))
            .configure(|cfg| health::configure(cfg, role, endpoints))
            .default_service(web::to(no_route));
        if admin {
            app
        } else {
            RoleState::build(role, &worker).install(app)
        }
    });
    Ok(server
        .workers(workers)
        .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(SERVER_KEEP_ALIVE)
        .disable_signals()
        .shutdown_timeout(shutdown_timeout)
        .listen(listener)?
        .run())
}

fn dependencies(role: Role, shared: &Shared) -> Vec<Dependency> {
    let stores = match role.store() {
        Some(Store::CartData) => shared.carts.clone().map(Dependency::CartData),
        Some(Store::ProductData) => shared.products.clone().map(Dependency::ProductData),
        Some(Store::SessionData) => shared.sessions.clone().map(Dependency::SessionData),
        None => None,
    };
    let callers = role
        .calls_api_gateway()
        .then(|| Dependency::Service(Role::ApiGateway, shared.wiring.api_gateway.clone()));
    let upstreams = (role == Role::ApiGateway)
        .then(|| shared.wiring.upstreams.clone())
        .into_iter()
        .flatten()
        .map(|(upstream, url)| Dependency::Service(upstream, url));
    stores.into_iter().chain(callers).chain(upstreams).collect()
}

/// The state of one worker's handlers of a role.
enum RoleState {
    WebGateway(web::Data<roles::web_gateway::State>),
    ApiGateway(web::Data<roles::api_gateway::State>),
    Cart(web::Data<roles::cart::State>),
    Checkout(web::Data<roles::checkout::State>),
    Content(web::Data<roles::content::State>),
    Payment(web::Data<roles::payment::State>),
    Product(web::Data<roles::product::State>),
}

impl RoleState {
    fn build(role: Role, shared: &Shared) -> Self {
        let expect = "startup builds the store of every role it starts";
        match role {
            Role::WebGateway => RoleState::WebGateway(web::Data::new(roles::web_gateway::State {
                api_gateway: shared.wiring.api_gateway.clone(),
                sessions: shared.sessions.clone().expect(expect),
                signer: shared.signer.clone(),
            })),
            Role::ApiGateway => RoleState::ApiGateway(web::Data::new(roles::api_gateway::State {
                upstreams: shared.wiring.upstreams.clone(),
            })),
            Role::Cart => RoleState::Cart(web::Data::new(roles::cart::State {
                carts: shared.carts.clone().expect(expect),
            })),
            Role::Checkout => RoleState::Checkout(web::Data::new(roles::checkout::State {
                api_gateway: shared.wiring.api_gateway.clone(),
                pending_wait: shared.timeouts.request / 2,
            })),
            Role::Content => RoleState::Content(web::Data::new(roles::content::State::new(
                shared.content_source.clone(),
            ))),
            Role::Payment => RoleState::Payment(web::Data::new(roles::payment::State {
                delay: shared.payment_delay,
            })),
            Role::Product => RoleState::Product(web::Data::new(roles::product::State {
                products: shared.products.clone().expect(expect),
            })),
        }
    }

    /// Registers the state and routes of the role on `app`.
    fn install<T>(self, app: App<T>) -> App<T>
    where
        T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Error = actix_web::Error,
            InitError = (),
        >,
    {
        match self {
            RoleState::WebGateway(s) => app.app_data(s).configure(roles::web_gateway::configure),
            RoleState::ApiGateway(s) => app.app_data(s).configure(roles::api_gateway::configure),
            RoleState::Cart(s) => app.app_data(s).configure(roles::cart::configure),
            RoleState::Checkout(s) => app.app_data(s).configure(roles::checkout::configure),
            RoleState::Content(s) => app.app_data(s).configure(roles::content::configure),
            RoleState::Payment(s) => app.app_data(s).configure(roles::payment::configure),
            RoleState::Product(s) => app.app_data(s).configure(roles::product::configure),
        }
    }
}
