//! Black-box tests of the shop over HTTP, one module per area. What they share (starting
//! the shop, typed requests, stubs, the OTLP receiver) is the `support` crate (support/).

mod boundary;
mod cart;
mod checkout;
mod common;
mod content;
mod fault_state;
mod faults;
mod gateways;
mod journey;
mod orders;
mod payment;
mod product;
mod readiness;
mod smoke;
mod telemetry;
