//! What every role shares on the HTTP side: errors, bodies, the upstream client and
//! proxy, the request middleware, health and admin endpoints and the embedded files.

pub mod admin;
pub mod assets;
pub mod body;
pub mod client;
pub mod context;
pub mod error;
pub mod fault_control;
pub mod health;
pub mod observe;
pub mod proxy;

pub use error::ApiError;
