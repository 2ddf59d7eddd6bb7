//! Black-box tests of the shop over HTTP, one module per area.

mod helpers;

mod smoke;
