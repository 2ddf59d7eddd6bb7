//! ecommerce: a simulated online shop whose services all live in this one crate.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod domain;
pub mod faults;
pub mod http;
pub mod role;
pub mod roles;
pub mod startup;
pub mod stores;
pub mod telemetry;
pub mod tls;
