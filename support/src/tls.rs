//! TLS for tests: a private CA made on the spot ([`TestCa`]), whose certificate file the
//! shop is told to trust (`SSL_CERT_FILE`, `--ca-file`), HTTPS servers ([`TlsStub`])
//! presenting a certificate it signed for 127.0.0.1 and localhost, and certificate and key
//! files it signed for other servers ([`TestCa::server_files`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority of one test, and a server certificate it signed.
pub struct TestCa {
    /// The CA's certificate in PEM, in a file of its own: what `SSL_CERT_FILE` names.
    pub ca_file: PathBuf,
    server: rustls::ServerConfig,
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
    /// How many server files were made, for their names.
    made: AtomicUsize,
    /// Removed with the CA.
    dir: tempfile::TempDir,
}

/// A server's certificate (signed by a [`TestCa`]) and private key, in PEM files.
#[derive(Debug, Clone)]
pub struct ServerFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// A fresh CA (no other test or machine trusts it) and a server certificate for
    /// `127.0.0.1` and `localhost`.
    pub fn new() -> TestCa {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "ecommerce test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).expect("a self-signed CA");

        let server_key = KeyPair::generate().expect("a server key");
        let mut server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("server parameters");
        server
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let server_cert = server
            .signed_by(&server_key, &ca_cert, &ca_key)
            .expect("a server certificate signed by the CA");

        let dir = tempfile::tempdir().expect("a directory for the CA");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).expect("the CA's certificate written");
        let chain: Vec<CertificateDer<'static>> = vec![server_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the server certificate and key");
        TestCa {
            ca_file,
            server,
            ca_cert,
            ca_key,
            made: AtomicUsize::new(0),
            dir,
        }
    }

    /// A certificate the CA signs for `names` (host names, or IP addresses such as
    /// `127.0.0.1`), and its key, as files in the CA's folder (removed with it).
    pub fn server_files(&self, names: &[&str]) -> ServerFiles {
        let key = KeyPair::generate().expect("a server key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("server parameters");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .expect("a server certificate signed by the CA");
        let n = self.made.fetch_add(1, Ordering::Relaxed);
        let files = ServerFiles {
            cert: self.dir.path().join(format!("server-{n}.pem")),
            key: self.dir.path().join(format!("server-{n}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).expect("the certificate written");
        std::fs::write(&files.key, key.serialize_pem()).expect("the key written");
        files
    }

    /// What a server presenting the CA-signed certificate is configured with.
    pub fn server_config(&self) -> rustls::ServerConfig {
        self.server.clone()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// A small HTTPS server the test controls, like [`crate::stub::Stub`] over TLS; it stops
/// when dropped.
pub struct TlsStub {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    handle: actix_web::dev::ServerHandle,
}

impl TlsStub {
    /// Serves the routes `configure` adds on a free port, in the caller's actix runtime,
    /// presenting the certificate of `tls`.
    pub fn start<F>(tls: rustls::ServerConfig, configure: F) -> TlsStub
    where
        F: Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let server =
            actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .listen_rustls_0_23(listener, tls)
                .unwrap()
                .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        TlsStub { url, handle }
    }
}

impl Drop for TlsStub {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}
