//! How the process speaks TLS: what it trusts (the system's root certificates and the CA
//! files it is given, in one client configuration built once, on the `ring` provider),
//! what each kind of peer (https, Redis, PostgreSQL) takes of it, and Redis connections
//! over it, which the stores and the fault state share.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

/// Why the TLS configuration could not be built; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificates of {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("a certificate of {} cannot be trusted as a root", path.display())]
    Root {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("no TLS protocol version is available")]
    Protocols(#[source] rustls::Error),
    #[error("no root certificate to check a chain against")]
    Verifier(#[source] rustls::client::VerifierBuilderError),
}

/// Root certificates being gathered for a [`Trust`].
#[derive(Clone)]
pub struct Roots(RootCertStore);

impl Roots {
    /// The system's root certificates. Certificates of the system's store that rustls
    /// cannot use are skipped, as are store locations that cannot be read: a machine
    /// without a store still reaches a private CA's servers.
    pub fn system() -> Roots {
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
        log::debug!("msg=\"system root certificates\" added={added} ignored={ignored}");
        Roots(roots)
    }

    /// No certificate yet (libpq's `sslrootcert`: that file's alone).
    pub fn empty() -> Roots {
        Roots(RootCertStore::empty())
    }

    /// Adds every certificate of the PEM file `path` (e.g. a private CA's).
    pub fn add_pem_file(&mut self, path: &Path) -> Result<(), TlsError> {
        let read = |source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        };
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(read)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(read)?;
        if certificates.is_empty() {
            return Err(TlsError::NoCertificate {
                path: path.to_path_buf(),
            });
        }
        for certificate in certificates {
            self.0.add(certificate).map_err(|source| TlsError::Root {
                path: path.to_path_buf(),
                source,
            })?;
        }
        Ok(())
    }
}

/// The system's root certificates, read once per process (a store is hundreds of files,
/// and a test starts many shops). Read from the system's own certificate folders, so that
/// `SSL_CERT_FILE` (a private CA) adds to them: rustls-native-certs, like OpenSSL, would
/// read that file *instead of* the system store. Where no such folder exists (not a
/// Unix), the platform's store as rustls-native-certs finds it.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let from_folders: Vec<_> = openssl_probe::candidate_cert_dirs()
            .flat_map(|dir| rustls_native_certs::load_certs_from_paths(None, Some(dir)).certs)
            .collect();
        if from_folders.is_empty() {
            rustls_native_certs::load_native_certs().certs
        } else {
            from_folders
        }
    })
}

/// How much of a server's certificate a connection checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// The chain up to a trusted root, and that it names the host connected to.
    Full,
    /// The chain only, whatever host it names (libpq's `verify-ca`).
    Chain,
    /// Nothing: encrypted, not authenticated (libpq's `require`). The handshake's
    /// signatures are still checked against the certificate presented.
    Nothing,
}

/// What every outgoing TLS connection of the process trusts: one client configuration,
/// built once; each kind of peer takes it as it is or with its own protocol name.
#[derive(Clone)]
pub struct Trust {
    roots: Arc<RootCertStore>,
    /// Without ALPN, as Redis connections use it; the others are made from it.
    base: Arc<ClientConfig>,
    https: Arc<ClientConfig>,
}

impl Trust {
    /// The system's roots alone.
    pub fn system() -> Result<Trust, TlsError> {
        Trust::new(Roots::system())
    }

    pub fn new(roots: Roots) -> Result<Trust, TlsError> {
        let roots = Arc::new(roots.0);
        let base = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Protocols)?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        let mut https = base.clone();
        // The shop's clients only ever speak HTTP/1.1, like the plain-http ones.
        https.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Trust {
            roots,
            base: Arc::new(base),
            https: Arc::new(https),
        })
    }

    /// For https calls (services, an image bucket, OTLP export).
    pub fn https(&self) -> Arc<ClientConfig> {
        self.https.clone()
    }

    /// For Redis (`rediss://`): the chain and the host name checked.
    pub fn redis(&self) -> Arc<ClientConfig> {
        self.base.clone()
    }

    /// For a protocol that names itself `alpn` in the handshake, checking as much of the
    /// server's certificate as `verify` says. Made once per store, not per connection.
    pub fn config(&self, verify: Verify, alpn: &[u8]) -> Result<Arc<ClientConfig>, TlsError> {
        let mut config = (*self.base).clone();
        config.alpn_protocols = vec![alpn.to_vec()];
        match verify {
            Verify::Full => {}
            Verify::Chain => {
                let full = WebPkiServerVerifier::builder_with_provider(
                    self.roots.clone(),
                    config.crypto_provider().clone(),
                )
                .build()
                .map_err(TlsError::Verifier)?;
                config
                    .dangerous()
                    .set_certificate_verifier(Arc::new(ChainOnly(full)));
            }
            Verify::Nothing => {
                let provider = config.crypto_provider().clone();
                config
                    .dangerous()
                    .set_certificate_verifier(Arc::new(NoCertificateCheck(provider)));
            }
        }
        if verify != Verify::Full {
            // A session resumed skips the certificate: sessions made under a laxer check
            // must never serve a stricter one, so this configuration keeps its own.
            config.resumption = rustls::client::Resumption::default();
        }
        Ok(Arc::new(config))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Checks the chain as the full check does, and accepts a certificate for another name.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The full check tests the chain before the name: a name error means the chain
        // is good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Accepts any certificate; the handshake must still be signed by its key.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a connection to Redis could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RedisConnectError {
    #[error("cannot connect to {address}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS handshake with {address} failed")]
    Handshake {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to {address} timed out")]
    TimedOut { address: String },
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// A Redis server as its `redis://` or `rediss://` URL names it, parsed once.
#[derive(Debug, Clone)]
pub struct RedisServer {
    /// The server as a plain URL would name it: address, database, credentials.
    client: redis::Client,
    /// `rediss://`: where to connect, and the name its certificate must hold.
    tls: Option<(String, u16, ServerName<'static>)>,
}

impl RedisServer {
    /// The server `url` names; the error says why it does not parse (never the password).
    pub fn parse(url: &str) -> Result<RedisServer, String> {
        // The redis crate's own TLS would build a client configuration per connection
        // from roots of its own: a rediss:// URL is read as the redis:// one it encrypts,
        // and the stream is made here.
        let (plain, tls) = match url.strip_prefix("rediss://") {
            Some(rest) => (format!("redis://{rest}"), true),
            None => (url.to_string(), false),
        };
        let info = plain
            .as_str()
            .into_connection_info()
            .map_err(|e| e.to_string())?;
        let tls = match (&info.addr, tls) {
            (ConnectionAddr::Tcp(host, port), true) => {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(host.to_string())
                    .map_err(|e| format!("'{host}' is not a host name: {e}"))?;
                Some((host.to_string(), *port, name))
            }
            _ => None,
        };
        let client = redis::Client::open(info).map_err(|e| e.to_string())?;
        Ok(RedisServer { client, tls })
    }

    /// Whether connections are encrypted (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A new connection (its driver spawned on the current runtime), over TLS as `tls`
    /// says for `rediss://`; each phase bounded by `connect` when given, each answer by
    /// `response`.
    pub async fn connect(
        &self,
        tls: &Arc<ClientConfig>,
        connect: Option<Duration>,
        response: Option<Duration>,
    ) -> Result<MultiplexedConnection, RedisConnectError> {
        let mut config = AsyncConnectionConfig::new();
        if let Some(timeout) = connect {
            config = config.set_connection_timeout(timeout);
        }
        if let Some(timeout) = response {
            config = config.set_response_timeout(timeout);
        }
        let Some((host, port, name)) = &self.tls else {
            return Ok(self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?);
        };
        let address = format!("{host}:{port}");
        let open = async {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(|source| RedisConnectError::Connect {
                    address: address.clone(),
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            let stream = tokio_rustls::TlsConnector::from(tls.clone())
                .connect(name.clone(), tcp)
                .await
                .map_err(|source| RedisConnectError::Handshake {
                    address: address.clone(),
                    source,
                })?;
            let info = &self.client.get_connection_info().redis;
            let (connection, driver) =
                MultiplexedConnection::new_with_config(info, stream, config).await?;
            // It ends once every handle of the connection is dropped.
            tokio::spawn(driver);
            Ok(connection)
        };
        match connect {
            Some(timeout) => tokio::time::timeout(timeout, open)
                .await
                .unwrap_or(Err(RedisConnectError::TimedOut { address })),
            None => open.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_systems_roots_are_read_from_its_folders_whatever_the_environment_says() {
        // Read from the folders, not from SSL_CERT_FILE: a private CA adds to them.
        assert!(!system_roots().is_empty(), "this machine has a CA store");
    }

    #[test]
    fn a_rediss_url_is_its_redis_url_over_tls_to_the_host_it_names() {
        let server = RedisServer::parse("rediss://:pw@[::1]:6380/2").unwrap();
        let (host, port, name) = server.tls.clone().expect("TLS");
        assert_eq!((host.as_str(), port), ("::1", 6380));
        assert_eq!(name.to_str(), "::1");
        assert_eq!(server.client.get_connection_info().redis.db, 2);
        assert!(!RedisServer::parse("redis://h:1/0").unwrap().is_tls());
        assert!(RedisServer::parse("rediss://").is_err());
    }

    #[test]
    fn a_ca_file_that_holds_no_certificate_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("ecommerce-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();

        let empty = Roots::empty().add_pem_file(&path).unwrap_err();
        let missing = Roots::empty()
            .add_pem_file(&dir.join("missing.pem"))
            .unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);

        assert!(empty.to_string().contains("empty.pem"), "{empty}");
        assert!(matches!(missing, TlsError::Read { .. }), "{missing}");
    }
}
