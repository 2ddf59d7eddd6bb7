//! What every role shares on the HTTP side: errors, the upstream client and proxy,
//! observability middleware, health endpoints and the embedded files.

pub mod admin;
pub mod assets;
pub mod body;
pub mod client;
pub mod context;
pub mod error;
pub mod health;
pub mod metrics;
pub mod observe;
pub mod proxy;
pub mod trace;

pub use error::ApiError;
