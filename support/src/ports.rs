//! Ports for servers that a test or tool starts itself: [`free_port`].

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

const LOW: u32 = 20_000;
const RANGE: u32 = 12_000;

/// A port for a role process, a store server, or a dead upstream, that nothing else in
/// this run is given. Ports come from 20000-31999, below the kernel's ephemeral range, so
/// no server binding port 0 and no outgoing connection takes one between now and the
/// server's own bind; each is handed out once per run, from a random start so that
/// concurrent runs rarely meet, and skipped when something listens there already.
///
/// A server that binds its listener itself, at once, should bind port 0 instead.
pub fn free_port() -> u16 {
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let next = NEXT.get_or_init(|| AtomicU32::new(rand::random::<u32>() % RANGE));
    for _ in 0..RANGE {
        let port = (LOW + next.fetch_add(1, Ordering::Relaxed) % RANGE) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + RANGE)
}
