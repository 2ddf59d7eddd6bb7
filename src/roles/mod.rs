//! The routes and handlers of each role, one module per role.

pub mod api_gateway;
pub mod cart;
pub mod checkout;
pub mod content;
pub mod payment;
pub mod product;
pub mod web_gateway;
