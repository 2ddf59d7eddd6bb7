//! Black-box tests of the shop over HTTP, one module per area.

mod helpers;
#[path = "../support/mod.rs"]
mod support;

mod boundary;
mod cart;
mod checkout;
mod common;
mod content;
mod faults;
mod gateways;
mod journey;
mod orders;
mod payment;
mod product;
mod smoke;
mod telemetry;
