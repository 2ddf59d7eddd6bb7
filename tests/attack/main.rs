//! The shop under a hostile client's load, one test at a time (each measures latency or
//! counts connections, so they do not share the machine with other tests): slow request
//! bodies against other shoppers' searches, and callers meeting connections their server
//! is closing. Every load is bounded in connections and time, on loopback only.

mod keep_alive;
mod slow_bodies;

/// One test at a time in this binary.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
