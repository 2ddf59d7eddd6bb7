//! What the shop's tests share (and tools reuse), one module per purpose.
//!
//! Start with [`shop`]: a test calls [`shop::spawn_app`] and talks to the
//! [`shop::TestApp`] it returns.
//!
//! ```text
//! shop       the whole shop for one test (in-process, or one process per role) and
//!            typed requests to it
//! processes  every role of a Settings as its own process of the binary (also for tools:
//!            PID files, processes left running and found again)
//! http       replies read whole, raw HTTP byte for byte, Prometheus samples
//! stub       small HTTP servers a test controls, standing in for upstreams
//! otlp       the one OTLP receiver: decodes the spans and log records the shop exports
//!            (plain or gzipped, over http or https), which a test keeps and a tool
//!            (`cargo xtask otlp-sink`) counts
//! tls        a private CA made per test, and HTTPS servers presenting its certificate
//! stores     real Redis and PostgreSQL: the shared servers, private ones, fresh databases
//! store_tls  private Redis and PostgreSQL servers speaking TLS with a test CA's certificate
//! ports      the one way to pick a free port
//! ```

pub mod http;
pub mod otlp;
pub mod ports;
pub mod processes;
pub mod shop;
pub mod store_tls;
pub mod stores;
pub mod stub;
pub mod tls;
